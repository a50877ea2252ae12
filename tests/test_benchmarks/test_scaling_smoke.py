"""Smoke run of benchmarks/scaling.py --quick: it runs end to end on tiny models and writes
the results JSON (rows of every configuration, ratios to the stock detector, goals) + PNG."""
import json
import os.path as osp

import pytest

from conftest import PYTHON, REPO, run_tool

MODES = ['full', 'partitioned', 'partitioned_box']


@pytest.mark.slow
def test_scaling_quick_writes_every_row(tmp_path):
    out = str(tmp_path / 'scaling.json')
    run_tool([PYTHON, osp.join(REPO, 'benchmarks', 'scaling.py'), '--quick', '--out', out],
             timeout=300)
    with open(out) as f:
        res = json.load(f)
    assert res['machine']['cores'] >= 1 and 'VmHWM' in res['memory_method']
    expected = [(1, 'stock'), (1, 'full')] + [(2, m) for m in MODES]
    for arch in ('retinanet', 'rtmdet_tiny'):
        rows = [r for r in res['heads'] if r['arch'] == arch]
        assert [(r['heads'], r['mode']) for r in rows] == expected
        assert rows[0]['train_ratio'] == 1.0 and rows[0]['infer_ratio'] == 1.0
        assert rows[0]['train_mem_ratio'] == 1.0
        for r in rows:
            assert r['train_s'] > 0 and r['infer_s'] > 0 and r['train_mib'] > 0
            assert r['train_ratio'] == pytest.approx(r['train_s'] / rows[0]['train_s'])
    assert [(r['method'], r['tasks'], r['trunk_per_head']) for r in res['surgery']] == [
        ('equal', 3, False), ('pcgrad', 3, False), ('pcgrad', 3, True)]
    assert res['surgery'][0]['time_ratio'] == 1.0
    assert [g['goal'] for g in res['goals']][:2] == [
        'retinanet full 2 heads infer <= 1.25x', 'retinanet full 2 heads train <= 1.2x']
    partitioned = [g for g in res['goals'] if 'partitioned' in g['goal']]
    assert len(partitioned) == 8 and all(g['met'] == (g['measured'] <= float(
        g['goal'].split('<= ')[1].rstrip('x'))) for g in partitioned)
    with open(str(tmp_path / 'scaling.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
