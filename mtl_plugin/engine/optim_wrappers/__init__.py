"""Optim wrappers: gradient surgery (multi-task loss weighting lives in
:mod:`mtl_plugin.models.multitask`, with the models that use it)."""
from .grad_surgery import GradSurgeryOptimWrapper, build_aggregator

__all__ = ['GradSurgeryOptimWrapper', 'build_aggregator']
