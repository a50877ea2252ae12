"""Models: multi-head detectors and estimators, heads, losses."""
from .detectors import MultiHeadDetector
from .multi_head import MultiHeadMixin
from .pose import MultiHeadPoseEstimator

__all__ = ['MultiHeadDetector', 'MultiHeadMixin', 'MultiHeadPoseEstimator']
