import copy
import itertools
import math
import time
from unittest import mock

import numpy as np
import pytest
from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.registry import DATA_SAMPLERS, DATASETS, init_default_scope
from scipy.stats import chisquare

from mtl_plugin.datasets.group_balanced import GroupBalancedDataset
from mtl_plugin.datasets.samplers import (GroupBatchSampler, InfiniteWeightedGroupSampler,
                                          WeightedGroupSampler)

NAMES = dict(a=0, b=1, c=5)


class FakeDataset:
    """Only ``group_ids`` and annotations; ``__getitem__`` must never be needed."""

    def __init__(self, group_ids, names=NAMES):
        self.group_ids = np.asarray(group_ids, dtype=np.int64)
        self.metainfo = dict(group_name_to_id=dict(names or {}))

    def __len__(self):
        return len(self.group_ids)

    def __getitem__(self, idx):
        raise AssertionError('samplers must not load samples')

    def get_data_info(self, idx):
        # every third sample is portrait
        return dict(group_id=int(self.group_ids[idx]), width=5 if idx % 3 == 0 else 10,
                    height=8)


def sizes(a, b, c):
    return FakeDataset([0] * a + [1] * b + [5] * c)


def ranks(rank, world_size):
    """Fake a rank for our samplers and mmengine's."""
    return mock.patch.multiple('mtl_plugin.datasets.samplers', get_dist_info=lambda: (
        rank, world_size)), mock.patch('mmengine.dataset.sampler.get_dist_info',
                                       return_value=(rank, world_size))


def on_rank(rank, world_size, build):
    p1, p2 = ranks(rank, world_size)
    with p1, p2:
        return build()


def group_counts(ds, indices):
    return np.array([np.sum(ds.group_ids[indices] == g) for g in (0, 1, 5)])


# ---------------------------------------------------------------- statistics
def test_weights_give_the_expected_group_frequencies_and_uniform_members():
    ds = sizes(300, 100, 600)
    n = 200_000
    s = WeightedGroupSampler(ds, group_weights={'b': 3.0, 5: 0.5}, num_samples=n, seed=0)
    assert s.group_weights == {0: 1.0, 1: 3.0, 5: 0.5} and s.group_ratios is None
    idx = np.array(list(s))
    assert len(idx) == len(s) == n
    observed = group_counts(ds, idx)
    # n_g * w_g = 300, 300, 300
    assert chisquare(observed, n * np.array([1, 1, 1]) / 3).pvalue > 1e-3
    assert chisquare(observed, n * np.array([.3, .1, .6])).pvalue < 1e-12  # the test has power
    members = np.bincount(idx[ds.group_ids[idx] == 1] - 300, minlength=100)
    assert chisquare(members).pvalue > 1e-3
    assert s.group_shares() == pytest.approx({0: 1 / 3, 1: 1 / 3, 5: 1 / 3})


def test_ratios_give_the_expected_group_frequencies():
    ds = sizes(300, 100, 600)
    n = 200_000
    s = WeightedGroupSampler(ds, group_ratios={'a': 7, 'b': 2, 'c': 1}, num_samples=n, seed=1)
    assert s.group_ratios == pytest.approx({0: .7, 1: .2, 5: .1}) and s.group_weights is None
    observed = group_counts(ds, np.array(list(s)))
    assert chisquare(observed, n * np.array([.7, .2, .1])).pvalue > 1e-3


def test_weighted_permutation_without_replacement():
    ds = sizes(30, 10, 60)
    s = WeightedGroupSampler(ds, group_weights={1: 20.0}, replacement=False, seed=0)
    assert sorted(s) == list(range(100))
    # Efraimidis-Spirakis: the first item is from group g with prob n_g w_g / sum
    first = []
    for seed in range(600):
        s.seed = seed
        first.append(next(iter(s)))
    observed = group_counts(ds, np.array(first))
    assert chisquare(observed, 600 * np.array([30, 200, 60]) / 290).pvalue > 1e-3


def test_ratios_without_replacement_take_exact_counts():
    ds = sizes(30, 30, 60)
    s = WeightedGroupSampler(ds, group_ratios={0: 1, 1: 1, 5: 2}, replacement=False,
                             num_samples=50, seed=3)
    idx = list(s)
    assert len(set(idx)) == len(idx) == 50
    assert group_counts(ds, idx).tolist() == [13, 12, 25]  # largest remainder of 12.5/12.5/25
    with pytest.raises(ValueError, match=r"'b' \(id 1\).*need 40.*has 30"):
        WeightedGroupSampler(ds, group_ratios={0: 1, 1: 4, 5: 5}, replacement=False,
                             num_samples=100, seed=0)


# ---------------------------------------------------------------- distribution
@pytest.mark.parametrize('world_size', [1, 2, 3])
@pytest.mark.parametrize('kw', [dict(group_weights={1: 4.0}),
                                dict(group_ratios={0: 1, 1: 1, 5: 1}, num_samples=30)])
def test_shards_without_replacement_are_disjoint_and_complete(world_size, kw):
    ds = sizes(12, 12, 36)
    shards = [on_rank(r, world_size, lambda: WeightedGroupSampler(
        ds, replacement=False, seed=4, **kw)) for r in range(world_size)]
    lists = [list(s) for s in shards]
    assert [len(x) for x in lists] == [len(s) for s in shards] == \
        [kw.get('num_samples', 60) // world_size] * world_size
    union = sum(lists, [])
    assert len(set(union)) == len(union)
    whole = list(on_rank(0, 1, lambda: WeightedGroupSampler(ds, replacement=False, seed=4, **kw)))
    assert sorted(union) == sorted(whole)
    for r, x in enumerate(lists):  # rank-strided slices of one global stream
        assert x == whole[r::world_size]


def test_round_up_pads_with_the_start_and_round_up_false_does_not():
    ds = sizes(10, 10, 11)  # 31 samples
    whole = list(WeightedGroupSampler(ds, replacement=False, seed=2))
    padded = [list(on_rank(r, 3, lambda: WeightedGroupSampler(ds, replacement=False, seed=2)))
              for r in range(3)]
    assert [len(x) for x in padded] == [11, 11, 11]
    assert sorted(sum(padded, [])) == sorted(whole + whole[:2])
    exact = [on_rank(r, 3, lambda: WeightedGroupSampler(ds, replacement=False, seed=2,
                                                        round_up=False)) for r in range(3)]
    assert [len(s) for s in exact] == [11, 10, 10]
    lists = [list(s) for s in exact]
    assert [len(x) for x in lists] == [11, 10, 10]
    assert sorted(sum(lists, [])) == list(range(31))


def test_determinism_epochs_and_resume():
    ds = sizes(30, 10, 60)

    def make(**kw):
        return WeightedGroupSampler(ds, group_weights={'c': 2.0}, seed=7, **kw)

    s = make()
    epoch0 = list(s)
    assert list(make()) == epoch0
    s.set_epoch(1)
    epoch1 = list(s)
    assert epoch1 != epoch0
    assert list(WeightedGroupSampler(ds, group_weights={'c': 2.0}, seed=8)) == epoch1  # seed+epoch
    resumed = make()
    resumed.set_epoch(1)
    assert list(resumed)[40:] == epoch1[40:]
    assert list(make(replacement=False)) == list(make(replacement=False))


def test_set_group_weights_and_ratios():
    ds = sizes(300, 100, 600)
    s = WeightedGroupSampler(ds, num_samples=60_000, seed=0)
    before = list(s)
    new = dict(s.group_weights)
    new[1] = 9.0  # as CurriculumLearningHook does: an updated copy of the dict
    s.set_group_weights(new)
    assert s.group_weights == {0: 1.0, 1: 9.0, 5: 1.0}
    after = np.array(list(s))
    assert list(after) != before
    assert chisquare(group_counts(ds, after), 60_000 * np.array([3, 9, 6]) / 18).pvalue > 1e-3
    with pytest.raises(ValueError, match=r"group_weights\[1\].*but got -1"):
        s.set_group_weights({1: -1})
    assert s.group_weights[1] == 9.0  # a rejected update keeps the old weights
    s.set_group_ratios({'a': 1, 'b': 1, 'c': 2})
    assert s.group_weights is None and s.group_ratios == {0: .25, 1: .25, 5: .5}


def test_infinite_sampler_chains_chunks_and_strides_ranks():
    ds = sizes(10, 10, 20)
    chunks = sum((list(WeightedGroupSampler(ds, group_weights={1: 3.0}, seed=5 + k))
                  for k in range(3)), [])
    inf = InfiniteWeightedGroupSampler(ds, group_weights={1: 3.0}, seed=5)
    assert len(inf) == 40
    assert list(itertools.islice(iter(inf), 100)) == chunks[:100]
    inf.set_epoch(3)  # a no-op, as in mmengine; a second iter() continues the stream
    assert list(itertools.islice(iter(inf), 20)) == chunks[100:120]
    for r in range(2):
        shard = on_rank(r, 2, lambda: InfiniteWeightedGroupSampler(
            ds, group_weights={1: 3.0}, seed=5))
        assert list(itertools.islice(iter(shard), 50)) == chunks[r:100:2]


# ---------------------------------------------------------------- GroupBatchSampler
def batches_of(batch_sampler, epochs=1):
    out = []
    for e in range(epochs):
        batch_sampler.set_epoch(e)
        out.append(list(batch_sampler))
    return out


@pytest.mark.parametrize('drop_last', [False, True])
@pytest.mark.parametrize('batch_size', [4, 7])
def test_group_batches_are_single_group_and_len_is_exact(drop_last, batch_size):
    ds = sizes(30, 10, 60)
    bs = GroupBatchSampler(DefaultSampler(ds, seed=0), batch_size, drop_last=drop_last)
    for batches in batches_of(bs, 3):
        assert len(batches) == len(bs) == (100 // batch_size if drop_last
                                           else math.ceil(100 / batch_size))
        assert all(len(set(ds.group_ids[b].tolist())) == 1 for b in batches)
        sizes_ = [len(b) for b in batches]
        assert sizes_[:-1] == [batch_size] * (len(batches) - 1)
        assert sum(sizes_) == (len(batches) * batch_size if drop_last else 100)


def test_group_batches_use_every_sample_once_when_groups_fit():
    ds = sizes(32, 0, 64)
    bs = GroupBatchSampler(DefaultSampler(ds, seed=1), 8)
    batches = list(bs)
    assert sorted(sum(batches, [])) == list(range(96))
    assert bs.last_stats == dict(batches=12, recycled=0, skipped=0, dropped=0)
    with pytest.raises(ValueError, match="group 'b' in group_weights has zero samples"):
        GroupBatchSampler(DefaultSampler(ds, seed=1), 8, group_weights={'b': 2})


def test_aspect_ratio_grouping_keeps_batches_pure():
    ds = sizes(30, 30, 60)
    bs = GroupBatchSampler(DefaultSampler(ds, seed=0), 4, aspect_ratio_grouping=True)
    for batch in list(bs):
        infos = [ds.get_data_info(i) for i in batch]
        assert len({i['group_id'] for i in infos}) == 1
        assert len({i['width'] < i['height'] for i in infos}) == 1


def test_batch_group_frequencies_follow_weights_and_ratios():
    ds = sizes(30, 10, 60)
    # default: the wrapped sampler's shares (here weights 1 -> group sizes) times the weights
    bs = GroupBatchSampler(WeightedGroupSampler(ds, seed=0), 5, group_weights={1: 4.0})
    shares = np.array([30, 40, 60]) / 130
    for batches in batches_of(bs, 5):
        got = group_counts(ds, [b[0] for b in batches])
        assert np.all(np.abs(got - len(batches) * shares) < 1), got
    bs = GroupBatchSampler(DefaultSampler(ds, seed=0), 5, group_ratios={'a': 1, 'b': 1, 'c': 2})
    assert bs.group_shares() == {0: .25, 1: .25, 5: .5}
    got = group_counts(ds, [b[0] for b in list(bs)])
    assert got.tolist() == [5, 5, 10]
    # group 1 is scheduled 5 times (25 indices) but has 10 samples: the rest is recycled
    assert bs.last_stats['recycled'] >= 15


def test_same_group_across_ranks():
    ds = sizes(30, 10, 60)

    def groups(rank, same):
        bs = on_rank(rank, 3, lambda: GroupBatchSampler(DefaultSampler(ds, seed=0), 4,
                                                        same_group_across_ranks=same))
        batches = list(bs)
        assert all(len(set(ds.group_ids[b].tolist())) == 1 for b in batches)
        return [int(ds.group_ids[b[0]]) for b in batches], sum(batches, [])

    same = [groups(r, True) for r in range(3)]
    assert same[0][0] == same[1][0] == same[2][0]
    assert set(same[0][1]).isdisjoint(same[1][1])  # ranks still read their own shards
    apart = [groups(r, False)[0] for r in range(3)]
    assert not apart[0] == apart[1] == apart[2]


def test_group_batch_sampler_epochs_determinism_and_infinite():
    ds = sizes(30, 10, 60)
    sampler = DefaultSampler(ds, seed=0)
    bs = GroupBatchSampler(sampler, 4)
    assert bs.seed == 0  # inherited from the wrapped sampler
    e0, e1 = batches_of(bs, 2)
    assert sampler.epoch == 1 and e0 != e1
    assert batches_of(GroupBatchSampler(DefaultSampler(ds, seed=0), 4), 2) == [e0, e1]
    sampler.set_epoch(0)  # what mmengine's DistSamplerSeedHook does
    assert list(bs) == e0
    inf = GroupBatchSampler(InfiniteSampler(ds, seed=0), 4, group_ratios={0: 1, 1: 1, 5: 1})
    batches = list(itertools.islice(iter(inf), 3 * len(inf)))
    assert len(batches) == 75 and all(len(b) == 4 for b in batches)
    assert all(len(set(ds.group_ids[b].tolist())) == 1 for b in batches)
    for block in range(3):  # blocks of len(inf) == 25 batches: 25 / 3 each, rounded
        got = group_counts(ds, [b[0] for b in batches[25 * block:25 * (block + 1)]])
        assert sorted(got.tolist()) == [8, 8, 9]


def test_registered_and_built_like_the_runner():
    init_default_scope('mmdet')
    from mmdet.registry import DATA_SAMPLERS as DET_SAMPLERS
    ds = sizes(8, 8, 8)
    sampler = DET_SAMPLERS.build(dict(type='WeightedGroupSampler', group_weights={'b': 2.0}),
                                 default_args=dict(dataset=ds, seed=0))
    bs = DATA_SAMPLERS.build(dict(type='GroupBatchSampler', same_group_across_ranks=True),
                             default_args=dict(sampler=sampler, batch_size=4))
    assert isinstance(bs, GroupBatchSampler) and len(list(bs)) == len(bs) == 6
    assert isinstance(DATA_SAMPLERS.build(dict(type='InfiniteWeightedGroupSampler', dataset=ds,
                                               seed=0)), InfiniteWeightedGroupSampler)


class IndexDataset(FakeDataset):
    def __getitem__(self, idx):
        return idx


def test_runner_builds_the_dataloader_and_epochs_reach_the_batch_sampler():
    from mmengine.runner import Runner
    ds = IndexDataset([0] * 10 + [1] * 30)
    loader = Runner.build_dataloader(dict(
        batch_size=4, num_workers=0, dataset=ds, collate_fn=dict(type='default_collate'),
        sampler=dict(type='WeightedGroupSampler', group_weights={'a': 3.0}),
        batch_sampler=dict(type='GroupBatchSampler', same_group_across_ranks=True)), seed=0)
    assert isinstance(loader.batch_sampler, GroupBatchSampler) and len(loader) == 10
    epoch0 = [b.tolist() for b in loader]
    assert len(epoch0) == 10 and all(len(set(ds.group_ids[b])) == 1 for b in epoch0)
    loader.batch_sampler.sampler.set_epoch(1)  # mmengine's DistSamplerSeedHook, batch_sampler
    assert [b.tolist() for b in loader] != epoch0
    assert loader.batch_sampler.epoch == 1


# ---------------------------------------------------------------- GroupBalancedDataset
def test_group_balanced_integer_and_fractional_factors():
    ds = FakeDataset([0] * 40 + [1] * 1000)
    gb = GroupBalancedDataset(ds, oversample={'a': 3})
    assert np.bincount(gb.indices).tolist() == [3] * 40 + [1] * 1000
    gb = GroupBalancedDataset(ds, oversample={1: 2.5}, seed=3)
    counts = np.bincount(gb.indices, minlength=1040)
    assert set(counts[40:].tolist()) == {2, 3} and counts[:40].tolist() == [1] * 40
    assert abs(counts[40:].sum() - 2500) < 4 * math.sqrt(1000 * .25)
    again = GroupBalancedDataset(ds, oversample={1: 2.5}, seed=3)
    assert np.array_equal(again.indices, gb.indices)
    assert not np.array_equal(GroupBalancedDataset(ds, oversample={1: 2.5}, seed=4).indices,
                              gb.indices)
    assert np.array_equal(gb.group_ids, ds.group_ids[gb.indices])
    assert [gb.get_data_info(i)['group_id'] for i in range(len(gb))] == gb.group_ids.tolist()


def test_group_balanced_undersample_keeps_rounded_fraction():
    ds = FakeDataset([0] * 31 + [1] * 10 + [5] * 3)
    gb = GroupBalancedDataset(ds, undersample={0: 0.5, 'b': 0.25, 5: 0.1}, seed=0)
    # floor(f * n + 0.5), at least 1: 15.5 -> 16, 2.5 -> 3, 0.3 -> 1
    assert np.bincount(gb.group_ids).tolist() == [16, 3, 0, 0, 0, 1]
    assert len(set(gb.indices.tolist())) == len(gb) == 20
    other = GroupBalancedDataset(ds, undersample={0: 0.5}, seed=1)
    assert not np.array_equal(other.indices[:16], gb.indices[:16])
    assert WeightedGroupSampler(gb, group_weights={'c': 2.0}, seed=0).group_weights[5] == 2.0


def test_group_balanced_from_config_delegates(synthetic_root):
    init_default_scope('mmdet')
    src = [dict(type='CocoDataset', group_name=n, data_root=synthetic_root,
                ann_file=f'annotations/{n}_train.json', data_prefix=dict(img=f'images/{n}/'),
                metainfo=dict(classes=c), pipeline=[dict(type='LoadAnnotations', with_bbox=True)])
           for n, c in (('person', ('person', )), ('animal', ('cat', 'bird')))]
    gb = DATASETS.build(dict(type='GroupBalancedDataset', oversample={'animal': 2},
                             dataset=dict(type='MultiSourceDataset', datasets=src)))
    assert len(gb) == 48 and gb.group_ids.tolist() == [0] * 16 + [1] * 32
    assert gb.metainfo['group_name_to_id'] == dict(person=0, animal=1)
    assert gb.get_data_info(20)['group_name'] == 'animal'
    assert gb[47]['group_name'] == 'animal' and gb[0]['group_id'] == 0


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize('kw, err, match', [
    (dict(group_weights={'dog': 2.0}), KeyError, r"unknown group 'dog'.*'a'=0, 'b'=1.*'c'=5"),
    (dict(group_weights={3: 2.0}), KeyError, r'unknown group 3.*known groups'),
    (dict(group_weights={1: 0.0}), ValueError, r'group_weights\[1\].*> 0.*but got 0.0'),
    (dict(group_weights={1: -2}), ValueError, r'group_weights\[1\].*but got -2'),
    (dict(group_weights={'b': float('nan')}), ValueError, r"group_weights\['b'\].*nan"),
    (dict(group_weights={'b': float('inf')}), ValueError, r"group_weights\['b'\].*inf"),
    (dict(group_weights={True: 1.0}), TypeError, r'keys must be group ids.*True'),
    (dict(group_weights={1: 2.0, 'b': 3.0}), ValueError, r"'b' \(id 1\) is listed twice"),
    (dict(group_weights={1: 2.0}, group_ratios={1: 1.0}), ValueError, r'not both'),
    (dict(group_ratios={'a': 1, 'c': 1}), ValueError, r"group_ratios must list every group.*'b'"),
    (dict(group_weights={'empty': 2.0}), ValueError, r"'empty' in group_weights has zero samp"),
    (dict(replacement=False, num_samples=101), ValueError, r'num_samples=101'),
    (dict(num_samples=0), ValueError, r'num_samples must be an int > 0, but got 0'),
    (dict(seed='x'), TypeError, r"seed must be an int or None, but got 'x'"),
])
def test_sampler_errors_name_the_culprit(kw, err, match):
    ds = FakeDataset([0] * 30 + [1] * 10 + [5] * 60, dict(NAMES, empty=9))
    with pytest.raises(err, match=match):
        WeightedGroupSampler(ds, **dict(dict(seed=0), **kw))


def test_dataset_without_group_ids_is_rejected():
    with pytest.raises(TypeError, match=r'list has none: wrap it in.*MultiSourceDataset'):
        WeightedGroupSampler(list(range(5)), seed=0)
    with pytest.raises(TypeError, match=r'GroupBalancedDataset.*MultiSourceDataset'):
        GroupBalancedDataset(list(range(4)))
    with pytest.raises(TypeError, match=r'GroupBatchSampler.*MultiSourceDataset'):
        GroupBatchSampler(DefaultSampler(list(range(5)), seed=0), 2)
    with pytest.raises(ValueError, match=r'batch_size must be an int > 0, but got 0'):
        GroupBatchSampler(DefaultSampler(sizes(2, 2, 2), seed=0), 0)
    with pytest.raises(ValueError, match=r'max_buffer must be an int >= batch_size \(4\)'):
        GroupBatchSampler(DefaultSampler(sizes(2, 2, 2), seed=0), 4, max_buffer=2)


@pytest.mark.parametrize('kw, err, match', [
    (dict(oversample={'dog': 2}), KeyError, r"unknown group 'dog'"),
    (dict(oversample={1: 0}), ValueError, r'oversample\[1\] must be a finite number > 0'),
    (dict(oversample={1: float('nan')}), ValueError, r'oversample\[1\].*nan'),
    (dict(oversample={1: float('inf')}), ValueError, r'oversample\[1\].*inf'),
    (dict(undersample={'a': 1.5}), ValueError, r"undersample\['a'\].*<= 1, but got 1.5"),
    (dict(undersample={'a': 0.5}, oversample={0: 2}), ValueError, r"'a' \(id 0\) is in both"),
    (dict(oversample=[1, 2]), TypeError, r'oversample must be a dict'),
])
def test_group_balanced_errors(kw, err, match):
    with pytest.raises(err, match=match):
        GroupBalancedDataset(sizes(4, 4, 4), **kw)


# ---------------------------------------------------------------- speed
def test_two_million_samples_are_sampled_vectorised():
    ds = FakeDataset(np.repeat(np.arange(4), 500_000), names=None)
    start = time.perf_counter()
    s = WeightedGroupSampler(ds, group_weights={2: 3.0}, seed=0)
    n = sum(1 for _ in s)
    elapsed = time.perf_counter() - start
    print(f'WeightedGroupSampler: 2M samples, build + one epoch in {elapsed:.2f} s')
    assert n == 2_000_000 and elapsed < 5
    start = time.perf_counter()
    assert len(list(WeightedGroupSampler(ds, group_weights={2: 3.0}, replacement=False,
                                         seed=0))) == 2_000_000
    print(f'without replacement: {time.perf_counter() - start:.2f} s')
    assert copy.deepcopy(s).group_weights == s.group_weights
