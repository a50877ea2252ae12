"""Evaluation: per-group metrics."""
from .grouped_metric import GroupedMetric

__all__ = ['GroupedMetric']
