"""Evaluation: per-group metrics, classification metrics, the cross-dataset matrix."""
from .classification import ClsAccuracy, HierarchicalAccuracy
from .cross_dataset import cross_dataset_matrix, matrix_from_predictions
from .grouped_metric import GroupedMetric

__all__ = ['GroupedMetric', 'ClsAccuracy', 'HierarchicalAccuracy', 'cross_dataset_matrix',
           'matrix_from_predictions']
