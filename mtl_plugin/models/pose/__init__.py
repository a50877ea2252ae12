"""Pose estimators."""
from .multi_head import MultiHeadPoseEstimator

__all__ = ['MultiHeadPoseEstimator']
