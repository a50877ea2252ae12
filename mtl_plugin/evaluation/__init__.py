"""Evaluation: per-group metrics."""
from . import classification, cross_dataset  # noqa: F401  (registers modules)
from .grouped_metric import GroupedMetric

__all__ = ['GroupedMetric']
