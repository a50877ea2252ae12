"""Ensembles."""
from .group_routed import GroupRoutedEnsemble

__all__ = ['GroupRoutedEnsemble']
