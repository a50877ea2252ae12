"""Datasets, samplers and transforms that know each sample's group."""
from .multi_source import MultiSourceDataset, attach_group

__all__ = ['MultiSourceDataset', 'attach_group']
