"""Models: multi-head detectors and estimators, the hierarchical classifier, heads,
necks, ensembles, group-weighted losses."""
from .classifiers import HierarchicalClassifier
from .detectors import MultiHeadDetector
from .ensembles import GroupRoutedEnsemble
from .group_aware import GroupAwareModel, make_group_aware
from .heads import DatasetClsHead, GradientReversal, GradientReversalLayer
from .losses import (GroupContextHook, GroupWeightedFocalHeatmapLoss,
                     GroupWeightedKeypointMSELoss, GroupWeightedLoss, group_context)
from .multi_head import MultiHeadMixin
from .necks import (AdaptivePoolAlign, AttentionFusion, ChannelAlign, ConcatFusion,
                    CrossStitchNetwork, CrossStitchUnit, SoftParameterSharing)
from .pose import MultiHeadPoseEstimator

__all__ = [
    'MultiHeadDetector', 'GroupRoutedEnsemble', 'MultiHeadMixin', 'MultiHeadPoseEstimator',
    'GroupAwareModel', 'make_group_aware', 'GroupContextHook', 'GroupWeightedFocalHeatmapLoss',
    'GroupWeightedKeypointMSELoss',
    'GroupWeightedLoss', 'group_context', 'DatasetClsHead', 'GradientReversal',
    'GradientReversalLayer', 'HierarchicalClassifier', 'AdaptivePoolAlign', 'AttentionFusion',
    'ChannelAlign', 'ConcatFusion', 'CrossStitchNetwork', 'CrossStitchUnit',
    'SoftParameterSharing'
]
