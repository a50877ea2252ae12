"""Auxiliary heads of multi-head models: dataset classification, gradient reversal."""
from .dataset_cls_head import DatasetClsHead
from .gradient_reversal import GradientReversal, GradientReversalLayer

__all__ = ['DatasetClsHead', 'GradientReversal', 'GradientReversalLayer']
