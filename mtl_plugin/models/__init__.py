"""Models: multi-head detectors and estimators, ensembles, group-weighted losses."""
from . import classifiers, necks  # noqa: F401  (registers modules)
from .detectors import MultiHeadDetector
from .ensembles import GroupRoutedEnsemble
from .heads import DatasetClsHead, GradientReversal, GradientReversalLayer
from .losses import (GroupContextHook, GroupWeightedFocalHeatmapLoss,
                     GroupWeightedKeypointMSELoss, GroupWeightedLoss, group_context)
from .multi_head import MultiHeadMixin
from .pose import MultiHeadPoseEstimator

__all__ = [
    'MultiHeadDetector', 'GroupRoutedEnsemble', 'MultiHeadMixin', 'MultiHeadPoseEstimator',
    'GroupContextHook', 'GroupWeightedFocalHeatmapLoss', 'GroupWeightedKeypointMSELoss',
    'GroupWeightedLoss', 'group_context', 'DatasetClsHead', 'GradientReversal',
    'GradientReversalLayer'
]
