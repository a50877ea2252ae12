"""Group-weighted losses: weight each sample's loss by its group (``group_id_weight``).

Importing this package registers, in MMEngine's root registries (found from any scope),
``GroupContextHook`` (HOOKS; the shim of a removed hook, naming ``GroupAwareModel``),
``GroupWeightedLoss`` (mmdet losses),
``GroupWeightedKeypointMSELoss`` and ``GroupWeightedFocalHeatmapLoss`` (mmpose
heatmap losses) (MODELS).
"""
from .det_losses import GroupWeightedLoss, check_row_layouts
from .group_context import (GroupContext, GroupContextError, GroupContextHook,
                            clear_group_context, get_group_context, group_context,
                            group_context_from_samples, has_group_context,
                            parse_group_id_weight, sample_group_weights,
                            set_group_context)
from mmengine.registry import MODELS

from ..utils import register_lazy

# mmpose-based: registered now, imported (with mmpose) when first built or imported
_POSE_LOSSES = ('GroupWeightedFocalHeatmapLoss', 'GroupWeightedKeypointMSELoss')
for _name in _POSE_LOSSES:
    register_lazy(MODELS, _name, 'mtl_plugin.models.losses.pose_losses')


def __getattr__(name: str):
    if name in _POSE_LOSSES:
        from . import pose_losses
        return getattr(pose_losses, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = [
    'GroupContext', 'GroupContextError', 'GroupContextHook', 'GroupWeightedFocalHeatmapLoss',
    'GroupWeightedKeypointMSELoss', 'GroupWeightedLoss', 'clear_group_context',
    'get_group_context', 'group_context', 'group_context_from_samples', 'has_group_context',
    'parse_group_id_weight', 'sample_group_weights', 'set_group_context', 'check_row_layouts'
]
