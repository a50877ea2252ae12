"""Datasets, samplers and transforms that know each sample's group."""
from .classification import ClsJsonDataset, CocoCropClsDataset, CropInstance, PackClsInputs
from .cross_source import CrossSourcePaste
from .group_balanced import GroupBalancedDataset
from .multi_source import MultiSourceDataset, attach_group
from .samplers import GroupBatchSampler, InfiniteWeightedGroupSampler, WeightedGroupSampler
from .transforms import GroupBasedAugmentation

__all__ = [
    'GroupBalancedDataset', 'MultiSourceDataset', 'attach_group', 'GroupBatchSampler',
    'InfiniteWeightedGroupSampler', 'WeightedGroupSampler', 'GroupBasedAugmentation',
    'ClsJsonDataset', 'CocoCropClsDataset', 'CropInstance', 'PackClsInputs'
]
