"""The seed paths of the accuracy benchmarks (multi_head, mtl, group_boost, data_tools) with
stub studies: per-seed values kept, mean ± std, verdicts against the reference, results JSON
(multi_head: the speed section of an earlier file kept). No training."""
import json
from types import SimpleNamespace

import pytest

from conftest import load_tool


def _load(name):
    return load_tool(f'benchmarks/{name}.py')


def _with(args, **kw):
    return SimpleNamespace(**{**vars(args), **kw})


def test_mtl_ablation_rows_and_seeds(capsys):
    mtl = _load('mtl')
    table = dict(columns=['person/coco/bbox_mAP', 'mean/accuracy'], runs={
        'mtl-baseline_retinanet_x': dict(metrics={'person/coco/bbox_mAP': 0.4041, 'time': 1.0}),
        'mtl-pcgrad_hier-cls_y': dict(metrics={'mean/accuracy': 88.541666})})
    assert mtl.ablation_rows(table) == {'mtl-baseline': {'person/coco/bbox_mAP': 40.41},
                                        'mtl-pcgrad': {'mean/accuracy': 88.54}}
    per_seed = {0: dict(baseline=[30.0, 50.0], grl=[20.0, 60.0]),
                1: dict(baseline=[32.0, 52.0], grl=[21.0, 61.0]),
                2: dict(baseline=[34.0, 51.0], grl=[22.0, 62.0])}

    def study(seed):
        return {f'mtl-{k}': dict(animal=v[0], person=v[1]) for k, v in per_seed[seed].items()}

    res = mtl.family_over_seeds('detector', study, [0, 1, 2])
    assert res['stats']['mtl-grl']['animal'] == dict(mean=21.0, std=1.0, n=3,
                                                      values=[20.0, 21.0, 22.0])
    # grl - baseline, animal: -10, -11, -12 (noise 2); person: 10, 9, 11 (noise 2)
    assert res['vs_baseline']['mtl-grl']['animal']['verdict'] == 'lower'
    assert res['vs_baseline']['mtl-grl']['person'] == dict(
        diff=10.0, noise=2.0, basis='paired', verdict='higher')
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines[-2:]] == [
        ['mtl-baseline', '32.0', '±', '2.0', '51.0', '±', '1.0'],
        ['mtl-grl', '21.0', '±', '1.0', '(-)', '61.0', '±', '1.0', '(+)']]


def test_group_boost_study_and_report(tmp_path, monkeypatch):
    gb = _load('group_boost')
    aps = {('baseline', 0): 10.0, ('baseline', 1): 14.0, ('curriculum', 0): 11.0,
           ('curriculum', 1): 14.5}

    def fake_run(name, root, work, iters, seed):
        ap = aps[name, seed]
        return dict(animal=ap, person=50.0 + seed, mean=(ap + 50.0 + seed) / 2, iters=iters,
                    epochs=3, train_s=1.0, scheme=name, seed=seed)

    monkeypatch.setattr(gb, 'run_scheme', fake_run)
    args = SimpleNamespace(schemes=['baseline', 'curriculum'], iters=30, seeds=[0, 1],
                           out=str(tmp_path / 'gb.json'))
    res = gb.run_seeds(lambda seed: gb.study_seed(args, 'root', 'work', seed), args.seeds)
    gb.report(args, {}, res, 0.0, final=True)
    with open(args.out) as f:
        out = json.load(f)
    assert out['complete'] and out['seeds'] == [0, 1]
    assert out['per_seed'][1]['curriculum']['animal'] == 14.5
    assert out['stats']['curriculum']['animal'] == dict(mean=12.75, std=2.4749, n=2,
                                                         values=[11.0, 14.5])
    # curriculum - baseline, animal: 1.0, 0.5 (std 0.3536); person: 0, 0 (std 0)
    assert out['vs_baseline']['curriculum']['animal'] == dict(
        diff=0.75, noise=0.7071, basis='paired', verdict='higher')
    assert out['vs_baseline']['curriculum']['person']['verdict'] == 'no difference'
    assert sorted(out['vs_baseline']['curriculum']) == ['animal', 'mean', 'person']


def test_data_tools_retrain_over_seeds():
    dt = _load('data_tools')
    maps = {0: (0.18, 0.17), 1: (0.20, 0.18), 2: (0.19, 0.19)}

    def study(seed):
        p, c = maps[seed]
        return dict(partial=dict(person=p, animal=p, mean=p),
                    consolidated=dict(person=c, animal=c, mean=c))

    res = dt.retrain_over_seeds(study, [0, 1, 2])
    assert res['stats']['partial']['mean'] == dict(mean=0.19, std=0.01, n=3,
                                                   values=[0.18, 0.2, 0.19])
    # consolidated - partial: -0.01, -0.02, 0.0 (std 0.01, noise 0.02): no difference
    assert res['consolidated_vs_partial']['mean'] == dict(
        diff=-0.01, noise=0.02, basis='paired', verdict='no difference')


OLD = dict(machine=dict(cores=2), date='2026-11-24', settings=dict(iters=600),
           speed=[dict(arch='retinanet', train_ratio_vs_single=1.03)],
           accuracy=dict(shifted=dict(multi_head=dict(bbox_mAP=53.1)),
                         shared=dict(multi_head=dict(bbox_mAP=63.8))))


def test_multi_head_seeds_keep_speed_and_old_looks(tmp_path, monkeypatch):
    mh = _load('multi_head')
    out = str(tmp_path / 'mh.json')
    with open(out, 'w') as f:
        json.dump(OLD, f)
    maps = {0: (50.0, 49.0), 1: (52.0, 52.5), 2: (54.0, 53.0)}

    def fake_accuracy(look, root, iters, seed, work, methods):
        full, part = maps[seed]
        rows = dict(multi_head=dict(bbox_mAP=full, person_precision=full),
                    partitioned=dict(bbox_mAP=part, person_precision=part - 2))
        return {m: rows[m] for m in methods}

    monkeypatch.setattr(mh, 'make_data', lambda look, n, work: 'root')
    monkeypatch.setattr(mh, 'bench_accuracy', fake_accuracy)
    args = SimpleNamespace(seeds=[0, 2], iters=600, num_train=400, looks=['shifted'],
                           methods=['multi_head', 'partitioned'], out=out, merge=False)
    mh.run_accuracy(args)
    # a second part (seed 1, one method) merged in; a third with another budget refused
    args = _with(args, seeds=[1], methods=['partitioned'], merge=True)
    mh.run_accuracy(args)
    with open(out) as f:
        assert json.load(f)['accuracy']['looks']['shifted']['stats']['multi_head']['seeds'] == [
            0, 2]
    args = _with(args, methods=['multi_head'])
    mh.run_accuracy(args)
    with pytest.raises(ValueError, match='iters_total_per_method=600 but got --iters 300'):
        mh.run_accuracy(_with(args, iters=300))
    with open(out) as f:
        res = json.load(f)
    assert res['speed']['date'] == '2026-11-24' and res['speed']['results'] == OLD['speed']
    assert res['accuracy']['settings']['iters_total_per_method'] == 600
    shared = res['accuracy']['looks']['shared']
    assert shared['seeds'] == [0] and 'one seed' in shared['note']
    assert shared['stats']['multi_head']['bbox_mAP'] == dict(mean=63.8, std=None, n=1,
                                                             values=[63.8])
    shifted = res['accuracy']['looks']['shifted']
    assert shifted['seeds'] == [0, 1, 2] and list(shifted['per_seed']) == ['0', '1', '2']
    assert shifted['stats']['multi_head']['seeds'] == [0, 1, 2]
    assert shifted['stats']['partitioned']['bbox_mAP']['values'] == [49.0, 52.5, 53.0]
    # part - full, mAP: -1, 0.5, -1 (mean -0.5, std 0.866, noise 1.7321)
    verdict = shifted['partition_vs_full']['bbox_mAP']
    assert (verdict['diff'], verdict['noise'], verdict['verdict'], verdict['within_margin']) == (
        -0.5, 1.7321, 'no difference', True)
    assert verdict['larger_std']['basis'] == 'larger std'
    person = shifted['partition_vs_full']['person_precision']  # -3, -1.5, -3
    assert (person['diff'], person['verdict'], person['within_margin']) == (-2.5, 'lower', False)


def test_multi_head_partitioned_row_builds_a_partitioned_model():
    mh = _load('multi_head')
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = mh.method_cfg('partitioned')
    assert cfg['partition_heads'] == dict(share_box=False)
    model = mh.build(cfg)
    assert model.partition is not None and model.partition.owner_name == 'animal'
    own_last = mh.build(mh.method_cfg('partitioned_own_last'))  # 2 convs: the first shared
    assert own_last.partition.shared_convs == mh.LIGHT['convs'] - 1 == 1
    assert 'heads.person.cls_convs.1.conv.weight' in own_last.state_dict()
    with pytest.raises(KeyError, match="unknown method 'union'"):
        mh.method_cfg('union')
    rows = {'0': dict(multi_head=dict(bbox_mAP=50.0), partitioned_own_last=dict(bbox_mAP=49.5)),
            '1': dict(multi_head=dict(bbox_mAP=52.0), partitioned_own_last=dict(bbox_mAP=52.5))}
    res = mh.summarise(rows)  # a verdict per partitioned variant present
    assert res['own_last_vs_full']['bbox_mAP']['diff'] == 0.0
    assert res['own_last_vs_full']['bbox_mAP']['within_margin'] is True
    assert res['partition_vs_full'] == {}  # no partitioned rows: no pairs


def test_multi_head_merge_reads_a_seed_list_layout(tmp_path, monkeypatch):
    mh = _load('multi_head')
    out = str(tmp_path / 'mh.json')
    row = dict(bbox_mAP=50.0)
    with open(out, 'w') as f:  # the layout of run_seeds: per_seed a list in seed order
        json.dump(dict(accuracy=dict(settings=dict(iters_total_per_method=600), looks=dict(
            shifted=dict(seeds=[3], per_seed=[dict(multi_head=row, partitioned=row)])))), f)
    monkeypatch.setattr(mh, 'make_data', lambda look, n, work: 'root')
    monkeypatch.setattr(mh, 'bench_accuracy', lambda look, root, iters, seed, work, methods: {
        m: dict(bbox_mAP=40.0 + seed) for m in methods})
    mh.run_accuracy(SimpleNamespace(seeds=[1, 3], iters=600, num_train=400, looks=['shifted'],
                                    methods=['partitioned'], out=out, merge=True))
    with open(out) as f:
        shifted = json.load(f)['accuracy']['looks']['shifted']
    # seed 3 was measured already: kept, not rerun (it would give 43.0)
    assert shifted['per_seed'] == {'1': dict(partitioned=dict(bbox_mAP=41.0)),
                                   '3': dict(multi_head=row, partitioned=row)}
    assert shifted['stats']['partitioned']['bbox_mAP']['values'] == [41.0, 50.0]
    assert shifted['partition_vs_full']['bbox_mAP']['n'] == 1


def test_mtl_unseen_look_is_neither_training_look(tmp_path):
    """The unseen-look files: both sources' val splits, same classes, drawn in a look whose
    background is far from each training look's (the images' median colour shows it)."""
    import cv2
    import numpy as np
    from mtl_plugin.synthetic import DEFAULT_SOURCES
    mtl = _load('mtl')
    root = str(tmp_path / 'look')
    mtl._unseen_look_data(root, num_val=2)
    for source, classes in (('person', ['person']), ('animal', ['cat', 'bird'])):
        with open(f'{root}/annotations/{source}_val.json') as f:
            coco = json.load(f)
        assert [c['name'] for c in coco['categories']] == classes
        assert len(coco['images']) == 2
        img = cv2.imread(f'{root}/images/{source}/{coco["images"][0]["file_name"]}')
        median = np.median(img.reshape(-1, 3), axis=0)
        assert np.abs(median - mtl.UNSEEN_LOOK['background']).max() < 30  # colour jitter
        for seen in DEFAULT_SOURCES:
            assert np.abs(median - seen.background).max() > 60


def test_group_boost_combine_equals_one_run(tmp_path, monkeypatch, capsys):
    """Seeds run in separate processes (one per core) and merged with ``--combine`` give
    the same JSON numbers as one run over both seeds; parts run with other settings or
    holding the same seed twice are refused."""
    gb = _load('group_boost')
    aps = {('baseline', 0): 10.0, ('baseline', 1): 14.0, ('baseline', 2): 12.0,
           ('curriculum', 0): 11.0, ('curriculum', 1): 14.5, ('curriculum', 2): 16.0}

    def fake_run(name, root, work, iters, seed):
        return dict(animal=aps[name, seed], person=50.0 + seed, mean=1.0, iters=iters,
                    epochs=3, train_s=1.0, scheme=name, seed=seed)

    monkeypatch.setattr(gb, 'run_scheme', fake_run)
    base = dict(schemes=['baseline', 'curriculum'], iters=30, num_train=8, rare_train=2,
                num_val=2, rare_scale=[0.12, 0.25], combine=None)

    def run(seeds, out):
        args = SimpleNamespace(**base, seeds=seeds, out=str(tmp_path / out))
        res = gb.run_seeds(lambda seed: gb.study_seed(args, 'root', 'work', seed), seeds)
        gb.report(args, {'counts': 1}, res, 0.0, final=True)
        with open(args.out) as f:
            return json.load(f)

    whole = run([0, 1, 2], 'whole.json')
    run([2], 'b.json')
    run([0, 1], 'a.json')
    monkeypatch.setattr('sys.argv', ['group_boost.py', '--out', str(tmp_path / 'c.json'),
                                     '--combine', str(tmp_path / 'b.json'),
                                     str(tmp_path / 'a.json')])
    gb.main()
    with open(tmp_path / 'c.json') as f:
        combined = json.load(f)
    for key in ('seeds', 'per_seed', 'stats', 'vs_baseline', 'complete'):
        assert combined[key] == whole[key], key
    assert combined['settings']['data'] == {'counts': 1}
    assert combined['stats']['curriculum']['animal']['values'] == [11.0, 14.5, 16.0]
    # the same seed twice
    monkeypatch.setattr('sys.argv', ['group_boost.py', '--out', str(tmp_path / 'd.json'),
                                     '--combine', str(tmp_path / 'a.json'),
                                     str(tmp_path / 'whole.json')])
    with pytest.raises(ValueError, match='seed 0 is in two files'):
        gb.main()
    # other settings
    base['iters'] = 31
    run([2], 'e.json')
    monkeypatch.setattr('sys.argv', ['group_boost.py', '--combine', str(tmp_path / 'a.json'),
                                     str(tmp_path / 'e.json')])
    capsys.readouterr()
    with pytest.raises(SystemExit):
        gb.main()
    assert "e.json ran with other settings than" in capsys.readouterr().err


def test_multi_head_combine_equals_one_run(tmp_path, monkeypatch):
    """multi_head.py --combine: seeds run as separate processes merge into what one run over
    all of them writes; a seed twice or another budget is refused."""
    mh = _load('multi_head')
    monkeypatch.setattr(mh, 'make_data', lambda look, n, work: 'root')
    monkeypatch.setattr(mh, 'bench_accuracy', lambda look, root, iters, seed, work, methods: {
        m: dict(bbox_mAP=40.0 + seed + (m == 'partitioned')) for m in methods})

    def run(seeds, out, iters=1200):
        mh.run_accuracy(SimpleNamespace(seeds=seeds, iters=iters, num_train=400,
                                        looks=['shifted'], out=str(tmp_path / out),
                                        methods=['multi_head', 'partitioned'], merge=False))
        return str(tmp_path / out)

    whole = json.load(open(run([0, 1, 2], 'whole.json')))['accuracy']['looks']
    parts = [run([2], 'b.json'), run([0, 1], 'a.json')]
    mh.combine_accuracy(parts, str(tmp_path / 'c.json'))
    combined = json.load(open(tmp_path / 'c.json'))['accuracy']
    assert combined['looks'] == whole
    assert combined['looks']['shifted']['partition_vs_full']['bbox_mAP']['diff'] == 1.0
    assert combined['settings']['combined'] == parts
    with pytest.raises(ValueError, match='seed 0 of look .shifted. is in two files'):
        mh.combine_accuracy([parts[1], str(tmp_path / 'whole.json')], str(tmp_path / 'd.json'))
    other = run([3], 'e.json', iters=600)
    with pytest.raises(ValueError, match=r"e.json ran with other settings .*"
                                         r"\['iters_total_per_method'\]"):
        mh.combine_accuracy([parts[0], other], str(tmp_path / 'd.json'))


def test_consolidation_loop_combine_equals_one_run(tmp_path, monkeypatch, capsys):
    """consolidation_loop.py --combine: per-seed parts merge into the same stats and goals
    as one run over every seed; parts with other settings are refused."""
    cl = _load('consolidation_loop')
    models = ('teacher', 'round1', 'multi_head', 'full_labels')

    def fake_seed(root, work, seed, args):
        pr = dict(precision=0.8 + seed / 100, recall=0.75, pseudo=10.0 + seed, hidden=12.0)
        return dict(models={m: dict(mAP=40.0 + i * 5 + seed, person=50.0, cat=40.0 + seed,
                                    bird=45.0) for i, m in enumerate(models)},
                    pseudo=dict(round1=dict(cat=pr, bird=pr, person=pr)))

    monkeypatch.setattr(cl, 'one_seed', fake_seed)
    monkeypatch.setattr(cl, 'generate', lambda root, n, shared: None)

    def run(seeds, out, epochs=4):
        monkeypatch.setattr('sys.argv', ['consolidation_loop.py', '--seeds', *map(str, seeds),
                                         '--rounds', '1', '--epochs', str(epochs), '--work',
                                         str(tmp_path / 'w'), '--out', str(tmp_path / out)])
        cl.main()
        return str(tmp_path / out)

    whole = json.load(open(run([0, 1, 2], 'whole.json')))
    parts = [run([2], 'b.json'), run([0, 1], 'a.json')]
    monkeypatch.setattr('sys.argv', ['consolidation_loop.py', '--out', str(tmp_path / 'c.json'),
                                     '--combine', *parts])
    cl.main()
    combined = json.load(open(tmp_path / 'c.json'))
    for key in ('seeds', 'per_seed', 'models', 'pseudo', 'goals'):
        assert combined[key] == whole[key], key
    assert combined['models']['round1']['cat']['values'] == [40.0, 41.0, 42.0]
    assert combined['goals']['gap_to_full_labels'] == 10.0
    other = run([3], 'e.json', epochs=5)
    monkeypatch.setattr('sys.argv', ['consolidation_loop.py', '--combine', parts[0], other])
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cl.main()
    assert "e.json ran with other settings than" in capsys.readouterr().err
