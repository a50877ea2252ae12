"""Every config in configs/ parses and its model (and evaluator) builds."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope, MODELS

from conftest import REPO

CONFIGS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p and '_parts_' not in p)


def test_there_are_configs():
    assert len(CONFIGS) >= 8


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, REPO))
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports.imports == ['mtl_plugin']
    if cfg.model.type == 'GroupRoutedEnsemble':  # members' checkpoints come from training
        for member in cfg.model.models.values():
            member.checkpoint = None
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    if 'MultiHead' in cfg.model.type:
        assert {'type': 'HeadIsolationHook'} in cfg.custom_hooks
        assert cfg.find_unused_parameters is True
