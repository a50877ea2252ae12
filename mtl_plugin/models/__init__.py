"""Models: multi-head detectors and estimators, ensembles, heads, losses."""
from .detectors import MultiHeadDetector
from .ensembles import GroupRoutedEnsemble
from .multi_head import MultiHeadMixin
from .pose import MultiHeadPoseEstimator

__all__ = ['MultiHeadDetector', 'GroupRoutedEnsemble', 'MultiHeadMixin', 'MultiHeadPoseEstimator']
