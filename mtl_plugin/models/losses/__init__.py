"""Group-weighted losses: weight each sample's loss by its group (``group_id_weight``).

Importing this package registers, in MMEngine's root registries (found from any scope),
``GroupContextHook`` (HOOKS; the shim of a removed hook, naming ``GroupAwareModel``),
``GroupWeightedLoss`` (mmdet losses),
``GroupWeightedKeypointMSELoss`` and ``GroupWeightedFocalHeatmapLoss`` (mmpose
heatmap losses) (MODELS).
"""
from .det_losses import GroupWeightedLoss
from .group_context import (GroupContext, GroupContextError, GroupContextHook,
                            clear_group_context, get_group_context, group_context,
                            group_context_from_samples, has_group_context,
                            parse_group_id_weight, sample_group_weights,
                            set_group_context)
from .pose_losses import GroupWeightedFocalHeatmapLoss, GroupWeightedKeypointMSELoss

__all__ = [
    'GroupContext', 'GroupContextError', 'GroupContextHook', 'GroupWeightedFocalHeatmapLoss',
    'GroupWeightedKeypointMSELoss', 'GroupWeightedLoss', 'clear_group_context',
    'get_group_context', 'group_context', 'group_context_from_samples', 'has_group_context',
    'parse_group_id_weight', 'sample_group_weights', 'set_group_context'
]
