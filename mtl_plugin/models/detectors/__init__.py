"""Detectors."""
from .multi_head import MultiHeadDetector

__all__ = ['MultiHeadDetector']
