"""Every config in configs/ parses and its model (and evaluator) builds; the layout rules hold.

Layout rules (configs/_base_/{models,datasets,schedules,runtime}/ hold the shared pieces):
at most two levels of plugin ``_base_`` inheritance (``mmdet::`` / ``mmpose::`` stock bases
not counted), ``HeadIsolationHook`` listed once (configs/_base_/runtime/multihead_runtime.py)
and inherited by every multi-head config, and no functions in config files.
"""
import ast
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope, MODELS

from conftest import REPO

CONFIG_ROOT = osp.join(REPO, 'configs')
ALL_FILES = sorted(glob.glob(osp.join(CONFIG_ROOT, '**', '*.py'), recursive=True))
CONFIGS = [p for p in ALL_FILES if '_base_' not in osp.relpath(p, CONFIG_ROOT).split(osp.sep)]
# models that route samples to one head per dataset and need HeadIsolationHook
MULTI_HEAD_TYPES = ('MultiHeadDetector', 'MultiHeadPoseEstimator', 'HierarchicalClassifier')
MAX_BASE_LEVELS = 2


def _rel(path):
    return osp.relpath(path, REPO)


def _plugin_bases(path):
    """The plugin (non-``pkg::``) files a config names in ``_base_``, as absolute paths."""
    tree = ast.parse(open(path, encoding='utf-8').read(), path)
    bases = []
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == '_base_'):
            value = ast.literal_eval(node.value)
            bases = [value] if isinstance(value, str) else list(value)
    return [osp.normpath(osp.join(osp.dirname(path), b)) for b in bases if '::' not in b]


def _base_levels(path, seen=()):
    """Length of the longest chain of plugin ``_base_`` files above ``path``."""
    assert path not in seen, f'inheritance cycle through {_rel(path)}'
    bases = _plugin_bases(path)
    for base in bases:
        assert osp.isfile(base), f'{_rel(path)}: missing base {_rel(base)}'
    return max((1 + _base_levels(b, seen + (path, )) for b in bases), default=0)


def test_there_are_configs():
    assert len(CONFIGS) >= 8
    for part in ('models', 'datasets', 'schedules', 'runtime'):
        assert glob.glob(osp.join(CONFIG_ROOT, '_base_', part, '*.py')), part


@pytest.mark.slow
@pytest.mark.parametrize('path', CONFIGS, ids=_rel)
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports.imports == ['mtl_plugin']
    if cfg.model.type == 'GroupRoutedEnsemble':  # members' checkpoints come from training
        for member in cfg.model.models.values():
            member.checkpoint = None
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    hooks = [h.type for h in cfg.get('custom_hooks', [])]
    if 'MultiHead' in cfg.model.type or cfg.model.type in MULTI_HEAD_TYPES:
        assert hooks.count('HeadIsolationHook') == 1, hooks
        assert cfg.find_unused_parameters is True
    else:
        assert 'HeadIsolationHook' not in hooks


@pytest.mark.parametrize('path', CONFIGS, ids=_rel)
def test_the_test_pipeline_is_where_inferencers_read_it(path):
    """mmdet's DetInferencer / inference_detector and mmpose's MMPoseInferencer build their
    pipeline from ``test_dataloader.dataset.pipeline``: a MultiSourceDataset whose
    pipeline sits only on its sources would fail there (found with the focal pose config)."""
    cfg = Config.fromfile(path)
    loader = cfg.get('test_dataloader')
    if not loader or cfg.model.type in ('GroupRoutedEnsemble', 'HierarchicalClassifier'):
        return  # no mmdet / mmpose inferencer takes these
    pipeline = loader.dataset.get('pipeline')
    assert pipeline and isinstance(pipeline, (list, tuple)), _rel(path)
    if cfg.default_scope == 'mmpose':  # MMPoseInferencer also reads these two
        from mmpose.registry import DATASETS
        assert cfg.get('data_mode') == 'topdown', _rel(path)
        assert DATASETS.get(cfg.get('dataset_type')) is not None, _rel(path)


@pytest.mark.parametrize('path', ALL_FILES, ids=_rel)
def test_at_most_two_base_levels(path):
    levels = _base_levels(path)
    assert levels <= MAX_BASE_LEVELS, f'{_rel(path)}: {levels} levels of plugin _base_'
    if path not in CONFIGS:  # a shared piece inherits at most one more level
        assert levels <= MAX_BASE_LEVELS - 1, f'{_rel(path)}: {levels} levels of plugin _base_'


def _stock_packages(path):
    """The packages of the stock (``pkg::``) bases a config names in ``_base_``."""
    tree = ast.parse(open(path, encoding='utf-8').read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', None) == '_base_':
            value = ast.literal_eval(node.value)
            return {b.split('::')[0] for b in ([value] if isinstance(value, str) else value)
                    if '::' in b}
    return set()


def test_head_isolation_hook_listed_once():
    """Listed in multihead_runtime.py only, except by a config whose stock base sets
    custom_hooks (mmpose's runtime: SyncBuffersHook), which cannot inherit
    multihead_runtime.py next to it (MMEngine forbids a key in two bases): it extends the
    stock base's list instead."""
    listing = [_rel(p) for p in ALL_FILES if 'HeadIsolationHook' in open(p).read()]
    assert listing[0] == 'configs/_base_/runtime/multihead_runtime.py'
    for rel in listing[1:]:
        packages = _stock_packages(osp.join(REPO, rel))
        hooks = Config.fromfile(osp.join(REPO, rel)).custom_hooks
        assert packages and any(h.get('_scope_') in packages for h in hooks), rel
        assert [h.type for h in hooks].count('HeadIsolationHook') == 1, rel


@pytest.mark.parametrize('path', ALL_FILES, ids=_rel)
def test_no_functions_in_configs(path):
    source = open(path, encoding='utf-8').read()
    assert 'def ' not in source
    functions = [n for n in ast.walk(ast.parse(source, path))
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]
    assert not functions, f'{_rel(path)} defines functions at lines {[n.lineno for n in functions]}'
