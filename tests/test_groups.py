"""The one group core (mtl_plugin.groups) and every component that reads group keys with it.

The cross-component tests feed the same typo (``'animl'`` for group ``'animal'``) to each
group-keyed setting and expect the same error core, before the first iteration (or on
the first loss call, before any update), and check that ``'1'`` and ``1`` mean the same
group everywhere.
"""
import copy
import logging
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.dataset import DefaultSampler
from mmengine.registry import DATASETS, init_default_scope

from mtl_plugin.datasets.group_balanced import GroupBalancedDataset
from mtl_plugin.datasets.samplers import GroupBatchSampler, WeightedGroupSampler
from mtl_plugin.datasets.transforms import GroupBasedAugmentation, check_pipeline_groups
from mtl_plugin.engine.hooks.curriculum import CurriculumLearningHook
from mtl_plugin.evaluation import GroupedMetric
from mtl_plugin.groups import (DEFAULT, GroupKeyed, Groups, UnknownGroupError,
                               check_group_name, normalize_group_key, positive_weight)
from mtl_plugin.models.losses import (GroupWeightedFocalHeatmapLoss,
                                      GroupWeightedKeypointMSELoss, GroupWeightedLoss,
                                      clear_group_context, group_context)

GROUPS = Groups(['person', 'animal'], [0, 1])
CORE = re.escape("unknown group 'animl'") + '.*' + re.escape("known groups: 'person'=0, "
                                                           "'animal'=1")


@pytest.fixture(autouse=True)
def _no_context_leak():
    clear_group_context()
    yield
    clear_group_context()


class TwoGroups:
    """A dataset that knows its groups from ``group_ids`` and metainfo only."""

    def __init__(self, n_person=30, n_animal=10):
        self.group_ids = np.array([0] * n_person + [1] * n_animal, dtype=np.int64)
        self.metainfo = dict(group_name_to_id=GROUPS.to_dict())

    def __len__(self):
        return len(self.group_ids)

    def __getitem__(self, idx):
        return dict(group_id=int(self.group_ids[idx]))


# ---------------------------------------------------------------------- groups.py
def test_groups_lookups_exact():
    g = Groups(['person', 'animal'], [0, 7])
    assert g.to_dict() == {'person': 0, 'animal': 7} and len(g) == 2
    assert list(g) == ['person', 'animal'] and g.known() == "'person'=0, 'animal'=7"
    assert g.resolve(7, 'w', 'X') == g.resolve('7', 'w', 'X') == g.resolve(np.int64(7), 'w',
                                                                            'X') == 7
    assert g.resolve('animal', 'w', 'X') == 7 and g.resolve(' 7 ', 'w', 'X') == 7
    assert g.index_of(7) == g.index_of('7') == g.index_of('animal') == 1
    assert g.index_of(0) == 0 and g.id_of('person') == 0 and g.name_of(7) == 'animal'
    assert g == Groups.from_dict({'person': 0, 'animal': 7}) and hash(g) == hash(
        Groups(['person', 'animal'], [0, 7]))
    assert g != Groups(['person', 'animal'])
    assert Groups.from_metainfo(dict(group_name_to_id={'a': 3})).to_dict() == {'a': 3}
    assert Groups.from_metainfo({}) is None and Groups.from_metainfo(None) is None
    assert repr(g) == "Groups('person'=0, 'animal'=7)"


def test_groups_resolve_errors():
    with pytest.raises(UnknownGroupError) as err:
        GROUPS.resolve('animl', 'group_weights', 'Owner')
    assert str(err.value) == ("Owner: unknown group 'animl' in group_weights; known groups: "
                              "'person'=0, 'animal'=1; did you mean 'animal'?")
    assert isinstance(err.value, KeyError)
    with pytest.raises(UnknownGroupError, match=r"unknown group 3 in w; known groups: "
                                                r"'person'=0, 'animal'=1$"):
        GROUPS.resolve(3, 'w', 'O')
    with pytest.raises(UnknownGroupError, match=r"unknown group '3'"):
        GROUPS.resolve('3', 'w', 'O')
    with pytest.raises(ValueError, match='duplicate group names'):
        Groups(['a', 'a'])
    with pytest.raises(ValueError, match='duplicate group ids'):
        Groups(['a', 'b'], [1, 1])
    with pytest.raises(ValueError, match='at least one'):
        Groups([])
    with pytest.raises(TypeError, match='MultiSourceDataset'):
        Groups.from_dataset([1, 2], 'Owner')
    assert Groups.from_dataset(TwoGroups(), 'Owner') == GROUPS


def test_normalize_group_key_and_names():
    assert normalize_group_key(1, 'w', 'O') == 1 and normalize_group_key('1', 'w', 'O') == 1
    assert normalize_group_key(np.int32(4), 'w', 'O') == 4
    assert normalize_group_key('animal', 'w', 'O') == 'animal'
    assert normalize_group_key('default', 'w', 'O', allow_default=True) == DEFAULT
    with pytest.raises(ValueError, match="does not take a 'default' key"):
        normalize_group_key('default', 'w', 'O')
    with pytest.raises(ValueError, match='negative group id'):
        normalize_group_key(-1, 'w', 'O')
    with pytest.raises(ValueError, match='empty group name'):
        normalize_group_key('', 'w', 'O')
    for bad in (True, 1.5, None):
        with pytest.raises(TypeError, match=rf'O: w key {re.escape(repr(bad))} .*keys must be '
                                            'group ids'):
            normalize_group_key(bad, 'w', 'O')
    assert check_group_name('animal', 'ds') == 'animal'
    with pytest.raises(ValueError, match='all digits.*"group12"'):
        check_group_name('12', 'datasets[1]')
    with pytest.raises(ValueError, match="'default' is reserved"):
        check_group_name('default', 'datasets[0]')
    with pytest.raises(ValueError, match='has no group_name'):
        check_group_name(None, 'datasets[0]')


def test_positive_weight_and_group_keyed():
    assert positive_weight(2, 'w[1]', 'O') == 2.0 and positive_weight(np.float32(.5), 'w',
                                                                       'O') == 0.5
    for bad, err in ((0, ValueError), (-1, ValueError), (float('nan'), ValueError),
                     (float('inf'), ValueError), ('2', TypeError), (True, TypeError)):
        with pytest.raises(err, match='w'):
            positive_weight(bad, 'w', 'O')
    keyed = GroupKeyed({'1': 2.0, 'person': 3, 'default': 0.5}, 'w', 'O', positive_weight,
                       allow_default=True)
    assert keyed.as_dict() == {1: 2.0, 'person': 3.0, 'default': 0.5} and len(keyed) == 3
    assert keyed.bind(GROUPS) == ({1: 2.0, 0: 3.0}, 0.5)
    assert keyed.bind(GROUPS) is not None and keyed._bound[0] is GROUPS  # cached
    assert GroupKeyed(None, 'w', 'O').bind(GROUPS) == ({}, None) and not GroupKeyed(None, 'w',
                                                                                    'O')
    with pytest.raises(ValueError, match="lists group 1 twice"):
        GroupKeyed({1: 1.0, '1': 2.0}, 'w', 'O')
    with pytest.raises(ValueError, match=r"group 'animal' \(id 1\) is listed twice in w"):
        GroupKeyed({1: 1.0, 'animal': 2.0}, 'w', 'O').bind(GROUPS)
    with pytest.raises(TypeError, match='must be a dict'):
        GroupKeyed([1], 'w', 'O')
    with pytest.raises(UnknownGroupError, match=CORE):
        GroupKeyed({'animl': 1.0}, 'w', 'O').bind(GROUPS)


# ---------------------------------------------------------------------- data side
def det_dataset(root, aug=None):
    init_default_scope('mmdet')
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True)] + (
        [aug] if aug else [])
    return DATASETS.build(dict(type='MultiSourceDataset', datasets=[
        dict(type='CocoDataset', group_name=name, data_root=root,
             ann_file=f'annotations/{name}_train.json', data_prefix=dict(img=f'images/{name}/'),
             metainfo=dict(classes=classes), pipeline=copy.deepcopy(pipeline))
        for name, classes in (('person', ('person', )), ('animal', ('cat', 'bird')))]))


def test_samplers_and_balancing_same_error_and_same_key():
    ds = TwoGroups()
    for build in (lambda kw: WeightedGroupSampler(ds, seed=0, **kw),
                  lambda kw: GroupBatchSampler(DefaultSampler(ds, seed=0), 4, **kw)):
        with pytest.raises(UnknownGroupError, match=CORE):
            build(dict(group_weights={'animl': 2.0}))
        with pytest.raises(UnknownGroupError, match=CORE):
            build(dict(group_ratios={'person': 1.0, 'animl': 1.0}))
        draws = {}
        for name, weights in (('str', {'1': 3.0}), ('int', {1: 3.0}), ('name', {'animal': 3}),
                              ('none', {})):
            s = build(dict(group_weights=weights))
            draws[name] = list(s)
            if name != 'none':
                assert s.group_weights == {0: 1.0, 1: 3.0}
        assert draws['str'] == draws['int'] == draws['name'] != draws['none']
    with pytest.raises(UnknownGroupError, match=CORE):
        GroupBalancedDataset(ds, oversample={'animl': 2.0})
    with pytest.raises(UnknownGroupError, match=CORE):
        GroupBalancedDataset(ds, undersample={'animl': 0.5})
    idx = [GroupBalancedDataset(ds, oversample=o, seed=3).indices.tolist()
           for o in ({'1': 2.5}, {1: 2.5}, {})]
    assert idx[0] == idx[1] != idx[2]


def test_sampler_curriculum_typo_and_digit_key():
    ds = TwoGroups()
    sampler = WeightedGroupSampler(ds, seed=0)

    def run(param):
        hook = CurriculumLearningHook([dict(param=param, milestones=[1], values=[2.0, 4.0])])
        runner = SimpleNamespace(
            model=torch.nn.Linear(1, 1), train_loop=None, epoch=0, iter=0, max_epochs=2,
            max_iters=10, logger=logging.getLogger('test_groups'),
            train_dataloader=SimpleNamespace(sampler=sampler, dataset=ds, num_workers=0))
        hook.before_train(runner)
        return sampler.group_weights

    with pytest.raises(UnknownGroupError, match=CORE):
        run('sampler.group_weights.animl')
    assert sampler.group_weights == {0: 1.0, 1: 1.0}  # nothing was written
    assert run('sampler.group_weights.1') == {0: 1.0, 1: 2.0}
    sampler.set_group_weights({})
    assert run('sampler.group_weights.animal') == {0: 1.0, 1: 2.0}
    # a loss keyed '1' (normalised to 1) and a loss that does not list the group yet
    loss = GroupWeightedKeypointMSELoss(group_id_weight={'1': 1.0})
    assert loss.group_id_weight == {1: 1.0}
    for weights, param in (({'1': 1.0}, 'model.group_id_weight.1'),
                           ({}, 'model.group_id_weight.animal')):
        loss = GroupWeightedKeypointMSELoss(group_id_weight=weights)
        hook = CurriculumLearningHook([dict(param=param, milestones=[1], values=[2.0, 4.0])])
        runner = SimpleNamespace(
            model=loss, train_loop=None, epoch=1, iter=0, max_epochs=2, max_iters=10,
            logger=logging.getLogger('test_groups'),
            train_dataloader=SimpleNamespace(sampler=sampler, dataset=ds, num_workers=0))
        hook.before_train(runner)
        assert loss.group_id_weight == {1: 4.0}
    with pytest.raises(UnknownGroupError, match=CORE):
        hook = CurriculumLearningHook([dict(param='model.group_id_weight.animl',
                                            milestones=[1], values=[2.0, 4.0])])
        hook.before_train(runner)


@pytest.mark.slow
def test_group_augmentation_same_error_and_same_key(synthetic_root):
    tag = dict(type='RandomFlip', prob=1.0)
    for transforms in ({'animl': [tag]}, {'animl': [tag], 'default': []}):
        aug = GroupBasedAugmentation(transforms)
        with pytest.raises(UnknownGroupError, match=CORE):
            aug.check_groups(GROUPS)
        with pytest.raises(UnknownGroupError, match=CORE):  # at build, before any sample
            det_dataset(synthetic_root, dict(type='GroupBasedAugmentation',
                                             transforms=transforms))
    with pytest.raises(ValueError, match="key 1 appears twice"):
        GroupBasedAugmentation({1: [], '1': []})
    with pytest.raises(ValueError, match=r"transforms\[1\] and transforms\['animal'\] both "
                                         r"name group 'animal'"):
        GroupBasedAugmentation({1: [], 'animal': []}).check_groups(GROUPS)
    picked = {}
    for key in ('1', 1, 'animal'):
        aug = GroupBasedAugmentation({key: [lambda r: dict(r, tag='strong')],
                                      'default': [lambda r: dict(r, tag='weak')]})
        check_pipeline_groups(SimpleNamespace(transforms=[SimpleNamespace(transforms=[aug])]),
                              GROUPS)
        picked[key] = [aug(dict(group_id=g, group_name=n))['tag']
                       for g, n in ((0, 'person'), (1, 'animal'))]
    assert picked == {'1': ['weak', 'strong'], 1: ['weak', 'strong'],
                      'animal': ['weak', 'strong']}
    ds = det_dataset(synthetic_root, dict(type='GroupBasedAugmentation', transforms={
        '1': [dict(type='RandomFlip', prob=1.0)], 'default': [dict(type='RandomFlip',
                                                                   prob=0.0)]}))
    assert [ds[i]['flip'] for i in (0, len(ds) - 1)] == [False, True]


# ---------------------------------------------------------------------- losses
def _det_loss(weights):
    return GroupWeightedLoss(dict(type='mmdet.L1Loss'), weights, normalize=False)


LOSSES = dict(
    det=(_det_loss, lambda: (torch.rand(6, 4), torch.rand(6, 4))),
    mse=(lambda w: GroupWeightedKeypointMSELoss(group_id_weight=w, normalize=False),
         lambda: (torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4))),
    focal=(lambda w: GroupWeightedFocalHeatmapLoss(group_id_weight=w, normalize=False),
           lambda: (torch.rand(2, 3, 4, 4).clamp(.05, .95), torch.rand(2, 3, 4, 4))),
)


@pytest.mark.parametrize('kind', sorted(LOSSES))
def test_losses_same_error_and_same_key(kind):
    build, data = LOSSES[kind]
    torch.manual_seed(0)
    pred, target = data()
    pred.requires_grad_(True)
    typo = build({'animl': 2.0})  # parsed at construction: no groups known yet
    with group_context(group_ids=[0, 1], group_names=['person', 'animal'], groups=GROUPS):
        with pytest.raises(UnknownGroupError, match=CORE):
            typo(pred, target)  # the first call, before any backward / update
        assert pred.grad is None
        values = {name: build(w)(pred, target).item() for name, w in (
            ('str', {'1': 2.0}), ('int', {1: 2.0}), ('name', {'animal': 2.0}), ('none', {}))}
    assert values['str'] == values['int'] == values['name'] != values['none']
    # the groups come from the samples' metainfo['groups'], as MultiSourceDataset sets it
    from mmengine.structures import BaseDataElement
    samples = [BaseDataElement(metainfo=dict(group_id=g, group_name=n, groups=GROUPS.to_dict()))
               for g, n in ((0, 'person'), (1, 'animal'))]
    with group_context(samples) as ctx:
        assert ctx.groups == GROUPS
        with pytest.raises(UnknownGroupError, match=CORE):
            typo(pred, target)
        assert build({'1': 2.0})(pred, target).item() == values['int']


# ---------------------------------------------------------------------- evaluation
def test_grouped_metric_same_error_and_same_key(synthetic_root):
    init_default_scope('mmdet')
    meta = det_dataset(synthetic_root).metainfo
    metric = GroupedMetric(metrics={'person': dict(type='mmdet.CocoMetric', ann_file=None),
                                    'animl': dict(type='mmdet.CocoMetric', ann_file=None)})
    with pytest.raises(UnknownGroupError, match=CORE):
        metric.dataset_meta = meta
    for key in ('1', 1, 'animal'):  # (every group needs a metric: person's is named)
        metric = GroupedMetric(metrics={key: dict(type='mmdet.CocoMetric', ann_file=None),
                                        'person': dict(type='mmdet.CocoMetric', ann_file=None)})
        metric.dataset_meta = meta
        assert list(metric.metrics) == ['animal', 'person']
        assert metric.metrics['animal'][0].dataset_meta['classes'] == ('cat', 'bird')
    with pytest.raises(ValueError, match='twice'):
        GroupedMetric(metrics={1: dict(type='mmdet.CocoMetric', ann_file=None),
                               '1': dict(type='mmdet.CocoMetric', ann_file=None)})
