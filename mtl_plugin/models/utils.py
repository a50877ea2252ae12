"""Small helpers shared by the model modules."""
from typing import Mapping

from mmengine.registry import MODELS
from torch import nn


def build_with_mmdet_fallback(cfg: Mapping) -> nn.Module:
    """Build ``cfg`` through the root ``MODELS`` (current default scope first).

    An unprefixed type not found there (e.g. no ``default_scope='mmdet'`` is set) is looked
    up in MMDetection's registry, so ``dict(type='FocalLoss')`` works from any scope.

    Args:
        cfg (Mapping): Module config with a ``type``.

    Returns:
        nn.Module: The built module.
    """
    try:
        return MODELS.build(cfg)
    except KeyError:
        loss_type = cfg.get('type')
        if not isinstance(loss_type, str) or '.' in loss_type:
            raise
        from mmdet.registry import MODELS as MMDET_MODELS
        if MMDET_MODELS.get(loss_type) is None:
            raise
        # ``MMDET_MODELS.build`` would switch back to the current default scope (e.g.
        # 'mmengine') and miss the type again; the scope prefix forces mmdet's registry
        return MODELS.build({**cfg, 'type': f'mmdet.{loss_type}'})
