"""Classifiers."""
from .hierarchical import HierarchicalClassifier

__all__ = ['HierarchicalClassifier']
