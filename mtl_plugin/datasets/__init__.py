"""Datasets, samplers and transforms that know each sample's group."""
from . import classification  # noqa: F401  (registers modules)
from .group_balanced import GroupBalancedDataset
from .multi_source import MultiSourceDataset, attach_group
from .samplers import GroupBatchSampler, InfiniteWeightedGroupSampler, WeightedGroupSampler
from .transforms import GroupBasedAugmentation

__all__ = [
    'GroupBalancedDataset', 'MultiSourceDataset', 'attach_group', 'GroupBatchSampler',
    'InfiniteWeightedGroupSampler', 'WeightedGroupSampler', 'GroupBasedAugmentation'
]
