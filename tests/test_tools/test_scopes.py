"""Every registered mtl_plugin module is reachable from mmdet, mmpose and mmengine scopes."""
import mmdet.registry
import mmengine.registry
import mmpose.registry
import pytest
from mmengine.registry import DefaultScope

import mtl_plugin  # noqa: F401

SCOPES = dict(mmdet=mmdet.registry, mmpose=mmpose.registry, mmengine=mmengine.registry)
KINDS = ['DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'METRICS', 'EVALUATOR', 'HOOKS',
         'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS']


def _ours():
    for kind in KINDS:
        root = getattr(mmengine.registry, kind)
        for name, obj in root.module_dict.items():
            if getattr(obj, '__module__', '').startswith('mtl_plugin'):
                yield kind, name, obj


def test_plugin_registers_something_of_each_expected_kind():
    kinds = {k for k, _, _ in _ours()}
    assert {'DATASETS', 'METRICS', 'EVALUATOR'} <= kinds


@pytest.mark.parametrize('scope', list(SCOPES))
def test_every_module_is_found_from_each_scope(scope):
    for kind, name, obj in _ours():
        # exactly what build_from_cfg does: switch to the scope's registry (or stay at the
        # root when the scope has none of this kind, e.g. mmpose has no EVALUATOR)
        root = getattr(mmengine.registry, kind)
        with root.switch_scope_and_registry(scope) as registry:
            if hasattr(SCOPES[scope], kind):
                assert registry is getattr(SCOPES[scope], kind)
            assert registry.get(name) is obj, f'{name} not found in {scope}::{kind}'


@pytest.mark.parametrize('scope', list(SCOPES))
def test_build_from_each_scope(scope, synthetic_root):
    reg = SCOPES[scope]
    with DefaultScope.overwrite_default_scope(scope):
        source = dict(group_name='person', dataset=[dict(inputs=i) for i in range(3)]) \
            if scope == 'mmengine' else dict(
                type='CocoDataset', group_name='person', data_root=synthetic_root,
                ann_file='annotations/person_val.json', data_prefix=dict(img='images/person/'),
                pipeline=[], **(dict(metainfo=dict(classes=('person', )))
                                if scope == 'mmdet' else dict(data_mode='topdown')))
        ds = reg.DATASETS.build(dict(type='MultiSourceDataset', datasets=[source]))
        assert len(ds.group_ids) == len(ds) > 0
        metric = reg.METRICS.build(dict(type='GroupedMetric', metrics=dict(
            person=dict(type='mmdet.CocoMetric', ann_file=None))))
        assert type(metric).__name__ == 'GroupedMetric'
        evaluator = mmengine.registry.EVALUATOR.build(dict(type='GroupedMetric', metrics=dict(
            person=dict(type='mmdet.CocoMetric', ann_file=None))))
        assert type(evaluator.metrics[0]).__name__ == 'GroupedMetric'
