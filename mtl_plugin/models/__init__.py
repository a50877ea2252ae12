"""Models: multi-head detectors and estimators, the hierarchical classifier, heads,
necks, ensembles, group-weighted losses."""
from .classifiers import HierarchicalClassifier
from .detectors import MultiHeadDetector
from .ensembles import GroupRoutedEnsemble
from .group_aware import GroupAwareModel, make_group_aware
from .heads import DatasetClsHead, GradientReversal, GradientReversalLayer
from .losses import GroupContextHook, GroupWeightedLoss, group_context
from .multi_head import MultiHeadMixin
from .multitask import LossWeighting, MultiTaskLossMixin, MultiTaskModel
from .necks import (AdaptivePoolAlign, AttentionFusion, ChannelAlign, ConcatFusion,
                    CrossStitchNetwork, CrossStitchUnit, SoftParameterSharing)
from . import pose  # noqa: F401  (registers MultiHeadPoseEstimator, imported lazily)

_LAZY = {'MultiHeadPoseEstimator': 'pose', 'SigmoidHeatmapHead': 'pose',
         'GroupWeightedFocalHeatmapLoss': 'losses', 'GroupWeightedKeypointMSELoss': 'losses'}


def __getattr__(name: str):
    if name in _LAZY:  # mmpose-based: imported on first use
        import importlib
        return getattr(importlib.import_module(f'{__name__}.{_LAZY[name]}'), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')

__all__ = [
    'MultiHeadDetector', 'GroupRoutedEnsemble', 'LossWeighting', 'MultiTaskLossMixin',
    'MultiTaskModel', 'MultiHeadMixin', 'MultiHeadPoseEstimator', 'SigmoidHeatmapHead',
    'GroupAwareModel', 'make_group_aware', 'GroupContextHook', 'GroupWeightedFocalHeatmapLoss',
    'GroupWeightedKeypointMSELoss',
    'GroupWeightedLoss', 'group_context', 'DatasetClsHead', 'GradientReversal',
    'GradientReversalLayer', 'HierarchicalClassifier', 'AdaptivePoolAlign', 'AttentionFusion',
    'ChannelAlign', 'ConcatFusion', 'CrossStitchNetwork', 'CrossStitchUnit',
    'SoftParameterSharing'
]
