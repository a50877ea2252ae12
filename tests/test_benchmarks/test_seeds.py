"""Seed helpers of benchmarks/common.py: mean ± sample std over seeds, per-seed values kept,
"no difference" inside 2 std (paired or larger std), per-section stamps in the results JSON."""
import json

import pytest

from conftest import load_tool


def _load(name):
    return load_tool(f'benchmarks/{name}.py')


common = _load('common')


def test_mean_std_is_the_sample_std_and_keeps_values():
    assert common.mean_std([1, 2, 3]) == dict(mean=2.0, std=1.0, n=3, values=[1.0, 2.0, 3.0])
    # ddof=1: sqrt(((50-52)^2 + (52-52)^2 + (54-52)^2) / 2) = 2
    assert common.mean_std([50.0, 54.0, 52.0])['std'] == 2.0
    assert common.mean_std([7.5]) == dict(mean=7.5, std=None, n=1, values=[7.5])
    with pytest.raises(ValueError, match='at least one'):
        common.mean_std([])


def test_fmt_pm():
    assert common.fmt_pm(common.mean_std([50.0, 54.0, 52.0])) == '52.0 ± 2.0'
    assert common.fmt_pm(common.mean_std([1, 2]), digits=2) == '1.50 ± 0.71'
    assert common.fmt_pm(common.mean_std([3])) == '3.0'
    with pytest.raises(TypeError, match='expects a stat'):
        common.fmt_pm(3.0)


def test_aggregate_nested_rows_keeps_labels():
    per_seed = [dict(a=dict(mAP=10, name='x'), b=[1.0, 4.0]),
                dict(a=dict(mAP=14, name='x'), b=[3.0, 4.0])]
    out = common.aggregate(per_seed)
    assert out['a']['name'] == 'x'
    assert out['a']['mAP'] == dict(mean=12.0, std=2.8284, n=2, values=[10.0, 14.0])
    assert out['b'][1] == dict(mean=4.0, std=0.0, n=2, values=[4.0, 4.0])
    with pytest.raises(ValueError, match='differs between seeds'):
        common.aggregate([dict(name='x'), dict(name='y')])
    with pytest.raises(ValueError, match='different keys'):
        common.aggregate([dict(a=1), dict(b=1)])


def test_run_seeds_calls_back_after_every_seed():
    seen = []
    res = common.run_seeds(lambda s: dict(m=dict(ap=10.0 * s)), [1, 2, 3],
                           on_seed=lambda r: seen.append(list(r['seeds'])))
    assert seen == [[1], [1, 2], [1, 2, 3]]
    assert res['per_seed'] == [dict(m=dict(ap=10.0)), dict(m=dict(ap=20.0)),
                               dict(m=dict(ap=30.0))]
    assert res['stats']['m']['ap'] == dict(mean=20.0, std=10.0, n=3, values=[10.0, 20.0, 30.0])
    for bad in ([], [0, 0], [0, 1.5]):
        with pytest.raises(ValueError, match='distinct ints'):
            common.run_seeds(lambda s: 1.0, bad)


def test_compare_paired_and_larger_std():
    a = common.mean_std([50.0, 52.0, 54.0])  # std 2
    b = common.mean_std([51.0, 53.5, 55.5])  # per-seed differences 1, 1.5, 1.5: std 0.2887
    paired = common.compare(a, b)
    assert paired == dict(diff=1.3333, noise=0.5774, basis='paired', verdict='higher')
    loose = common.compare(a, b, paired=False)  # larger std 2.2546 -> noise 4.5092
    assert loose == dict(diff=1.3333, noise=4.5092, basis='larger std', verdict='no difference')
    assert common.compare(b, a)['verdict'] == 'lower'
    one = common.compare(common.mean_std([1.0]), common.mean_std([2.0]))
    assert one['verdict'] == 'one seed: untested' and one['diff'] == 1.0
    with pytest.raises(ValueError, match='same seeds'):
        common.compare(a, common.mean_std([1.0, 2.0]))


def test_print_table_shows_mean_pm_std(capsys):
    common.print_table('t', [dict(method='m', ap=common.mean_std([1.0, 3.0]))], ['method', 'ap'])
    assert capsys.readouterr().out.splitlines()[-1].split() == ['m', '2.0', '±', '1.4']
    common.print_table('t', [dict(method='r', v=common.mean_std([0.61, 0.68]))], ['method', 'v'])
    assert capsys.readouterr().out.splitlines()[-1].split() == ['r', '0.645', '±', '0.050']


def test_save_sections_keeps_other_sections(tmp_path):
    path = str(tmp_path / 'r.json')
    with open(path, 'w') as f:
        json.dump(dict(speed=dict(date='2026-11-24', results=[1])), f)
    common.save_sections(path, dict(accuracy=dict(looks={})))
    with open(path) as f:
        res = json.load(f)
    assert res['speed'] == dict(date='2026-11-24', results=[1])
    assert res['accuracy']['looks'] == {} and res['accuracy']['machine']['cores'] >= 1


def test_versus_compares_every_row_with_the_reference():
    stats = common.aggregate([dict(base=dict(ap=10.0), a=dict(ap=14.0), b=dict(ap=10.5)),
                              dict(base=dict(ap=12.0), a=dict(ap=16.5), b=dict(ap=11.0))])
    out = common.versus(stats, 'base', ['ap', 'missing'])
    assert list(out) == ['a', 'b'] and list(out['a']) == ['ap']
    # a - base: 4, 4.5 (std 0.3536, noise 0.7071); b - base: 0.5, -1 (std 1.0607)
    assert out['a']['ap'] == dict(diff=4.25, noise=0.7071, basis='paired', verdict='higher')
    assert out['b']['ap'] == dict(diff=-0.25, noise=2.1213, basis='paired',
                                  verdict='no difference')
    with pytest.raises(KeyError, match="'baseline' is not in the table"):
        common.versus(stats, 'baseline', ['ap'])


def test_print_seed_table_marks_verdicts(capsys):
    stats = common.aggregate([dict(base=dict(ap=10.0), a=dict(ap=14.0), b=dict(ap=10.5)),
                              dict(base=dict(ap=12.0), a=dict(ap=16.5), b=dict(ap=11.0))])
    common.print_seed_table('t', stats, ['ap'], ref='base', key='scheme')
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "t; (=) inside 2 std of 'base'"
    assert [line.split() for line in lines[3:]] == [
        ['base', '11.0', '±', '1.4'], ['a', '15.2', '±', '1.8', '(+)'],
        ['b', '10.8', '±', '0.4', '(=)']]
    fractions = common.aggregate([dict(p=dict(m=0.2551)), dict(p=dict(m=0.2571))])
    common.print_seed_table('f', fractions, ['m'], digits=3)
    assert capsys.readouterr().out.splitlines()[-1].split() == ['p', '0.256', '±', '0.001']


def test_stats_by_row_and_paired_stats_with_missing_seeds():
    per_seed = {'0': dict(a=dict(ap=10.0), b=dict(ap=11.0)), '1': dict(a=dict(ap=12.0)),
                '2': dict(a=dict(ap=14.0), b=dict(ap=14.0))}
    stats = common.stats_by_row(per_seed)
    assert stats['a'] == dict(ap=dict(mean=12.0, std=2.0, n=3, values=[10.0, 12.0, 14.0]),
                              seeds=[0, 1, 2])
    assert stats['b']['seeds'] == [0, 2] and stats['b']['ap']['n'] == 2
    a, b = common.paired_stats(per_seed, 'a', 'b', 'ap')
    assert a['values'] == [10.0, 14.0] and b['values'] == [11.0, 14.0]
    assert common.paired_stats(per_seed, 'a', 'c', 'ap') is None
    assert list(common.stats_by_row(per_seed, rows=['b', 'c'])) == ['b']


def test_replace_rows_keeps_other_rows_and_recomputes_stats(tmp_path):
    common = load_tool('benchmarks/common.py')
    old = common.run_seeds(lambda s: dict(baseline=dict(ap=10.0 + s), aux=dict(ap=1.0 + s)),
                           [0, 1])
    path = tmp_path / 'old.json'
    path.write_text(json.dumps(old))
    new = common.run_seeds(lambda s: dict(aux=dict(ap=20.0 + 2 * s), extra=dict(ap=5.0)),
                           [0, 1])
    res = common.replace_rows(str(path), new)
    assert res['seeds'] == [0, 1]
    assert [list(p) for p in res['per_seed']] == [['baseline', 'aux', 'extra']] * 2
    assert res['stats']['baseline']['ap']['values'] == [10.0, 11.0]
    assert res['stats']['aux']['ap'] == dict(mean=21.0, std=1.4142, n=2, values=[20.0, 22.0])
    other = common.run_seeds(lambda s: dict(aux=dict(ap=1.0)), [0, 2])
    with pytest.raises(ValueError, match=r'has seeds \[0, 1\]'):
        common.replace_rows(str(path), other)
