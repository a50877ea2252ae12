"""tools/ablate.py: reading finished work dirs into one table (exact values), errors."""
import csv
import json
import os
import os.path as osp

import pytest

from conftest import PYTHON, REPO, run_tool
from mtl_plugin.analysis.ablation import AblationError, metric_columns, read_run

TOOL = osp.join(REPO, 'tools', 'ablate.py')


def _fake_run(root, name, evals, stamp='20260101_000000'):
    """A work dir whose scalars.json has training lines and the given validation lines."""
    vis = osp.join(root, name, stamp, 'vis_data')
    os.makedirs(vis)
    with open(osp.join(vis, 'scalars.json'), 'w') as f:
        for step, (p, a) in enumerate(evals, 1):
            f.write(json.dumps(dict(lr=1e-3, loss=1.0 / step, iter=step * 4, epoch=step,
                                    step=step * 4)) + '\n')
            f.write(json.dumps({'person/coco/bbox_mAP': p, 'animal/coco/bbox_mAP': a,
                                'mean/coco/bbox_mAP': round((p + a) / 2, 4), 'data_time': 0.1,
                                'time': 0.2, 'step': step}) + '\n')
    return osp.join(root, name)


@pytest.fixture
def runs(tmp_path):
    root = str(tmp_path / 'work')
    _fake_run(root, 'base', [(0.1, 0.2), (0.3, 0.4), (0.2, 0.1)])
    _fake_run(root, 'grl', [(0.5, 0.1), (0.4, 0.3)])
    cfgs = []
    for name in ('base', 'grl'):
        path = tmp_path / f'{name}.py'
        path.write_text('x = 1\n')
        cfgs.append(str(path))
    return root, cfgs


def test_read_run_best_and_last(runs):
    root, _ = runs
    best = read_run(osp.join(root, 'base'))
    assert best['monitor'] == 'mean/coco/bbox_mAP'
    assert best['step'] == 2 and best['num_evals'] == 3
    assert best['metrics']['person/coco/bbox_mAP'] == 0.3
    last = read_run(osp.join(root, 'base'), rule='last')
    assert last['step'] == 3 and last['metrics']['animal/coco/bbox_mAP'] == 0.1
    assert metric_columns({'b': best}, 'mean/coco/bbox_mAP') == [
        'animal/coco/bbox_mAP', 'person/coco/bbox_mAP', 'mean/coco/bbox_mAP']


@pytest.mark.slow
def test_cli_writes_table(runs, tmp_path):
    root, cfgs = runs
    out = tmp_path / 'out'
    proc = run_tool([PYTHON, TOOL, *cfgs, '--work-root', root, '--out-dir', str(out)])
    assert '| grl | 0.3000 | 0.4000 | 0.3500 |' in proc.stdout
    assert '| base | 0.4000 | 0.3000 | 0.3500 |' in proc.stdout
    with open(out / 'ablation.csv') as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['run', 'animal/coco/bbox_mAP', 'person/coco/bbox_mAP',
                       'mean/coco/bbox_mAP']
    assert rows[2] == ['grl', '0.3', '0.4', '0.35']
    assert (out / 'ablation.png').read_bytes()[:4] == b'\x89PNG'
    assert json.loads((out / 'ablation.json').read_text())['runs']['base']['step'] == 2


@pytest.mark.slow
def test_errors(runs, tmp_path):
    root, cfgs = runs
    with pytest.raises(AblationError, match='does not exist'):
        read_run(str(tmp_path / 'nope'))
    with pytest.raises(AblationError, match='monitored key'):
        read_run(osp.join(root, 'base'), monitor='mean/accuracy')
    import subprocess
    proc = subprocess.run([PYTHON, TOOL, str(tmp_path / 'missing.py'), '--work-root', root],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"ablate.py: error: config {str(tmp_path / 'missing.py')!r} does not exist"]
    assert 'usage' in run_tool([PYTHON, TOOL, '--help']).stdout
