"""Smoke run of benchmarks/scaling.py --quick: it runs end to end on tiny models and writes
the results JSON (rows of every configuration, ratios to the stock detector, goals) + PNG;
then ``--only-surgery`` re-measures the surgery part into the same file, keeping the rest."""
import json
import os.path as osp

import pytest

from conftest import PYTHON, REPO, run_tool

MODES = ['full', 'partitioned', 'partitioned_box', 'partitioned_own_last']


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
    assert len(partitioned) == 12 and all(g['met'] == (g['measured'] <= float(
        g['goal'].split('<= ')[1].rstrip('x'))) for g in partitioned)
    with open(str(tmp_path / 'scaling.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    # the surgery part alone, merged: heads rows and goals kept, surgery replaced
    run_tool([PYTHON, osp.join(REPO, 'benchmarks', 'scaling.py'), '--quick', '--only-surgery',
              '--clock', 'cpu', '--out', out], timeout=300)
    with open(out) as f:
        merged = json.load(f)
    assert merged['heads'] == res['heads'] and merged['settings'] == res['settings']
    assert merged['surgery_settings']['clock'] == 'cpu' and merged['settings']['clock'] == 'wall'
    assert merged['surgery_settings']['machine']['cores'] >= 1
    assert [(r['method'], r['tasks'], r['trunk_per_head']) for r in merged['surgery']] == [
        ('equal', 3, False), ('pcgrad', 3, False), ('pcgrad', 3, True)]
    assert merged['surgery'] != res['surgery']  # measured again (other times)
    heads_goals = [g for g in res['goals'] if not g['goal'].startswith('pcgrad')]
    assert merged['goals'][:len(heads_goals)] == heads_goals
    assert [g['goal'] for g in merged['goals'][len(heads_goals):]] == [
        f'pcgrad 3 tasks trunk_per_head={p} {k} <= {v}x' for p in (False, True)
        for k, v in (('time_ratio', 1.8), ('mem_ratio', 2.0))]
    # merged inference alone (RetinaNet): its inference columns replaced, the rest kept
    run_tool([PYTHON, osp.join(REPO, 'benchmarks', 'scaling.py'), '--quick', '--only-infer',
              '--archs', 'retinanet', '--out', out], timeout=300)
    with open(out) as f:
        infer = json.load(f)
    assert infer['surgery'] == merged['surgery'] and infer['infer_settings']['archs'] == [
        'retinanet']
    for old, new in zip(merged['heads'], infer['heads']):
        assert {k: v for k, v in old.items() if not k.startswith('infer')} == \
            {k: v for k, v in new.items() if not k.startswith('infer')}
        assert (old['infer_s'] == new['infer_s']) == (old['arch'] == 'rtmdet_tiny'), old
    assert infer['heads'][0]['infer_ratio'] == 1.0
