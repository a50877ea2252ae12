"""The one place that splits a batch by group.

Used by the models (per-group routing) and the metrics (per-group evaluation); label
spaces live in :mod:`mtl_plugin.labels`.
"""
from collections import OrderedDict
from typing import List, Mapping, Sequence


def get_group_name(data_sample) -> str:
    """Return the ``group_name`` carried in a data sample's metainfo.

    Args:
        data_sample (BaseDataElement | dict): A data sample (or its dict form, as metrics
            receive it).

    Returns:
        str: The group name.

    Raises:
        KeyError: If the sample carries no ``group_name``.
    """
    meta = data_sample if isinstance(data_sample, Mapping) else data_sample.metainfo
    if 'group_name' not in meta:
        raise KeyError(
            'data sample has no "group_name" in its metainfo: wrap the dataset in '
            "dict(type='MultiSourceDataset', datasets=[...]) so that every sample "
            f'knows its group; got metainfo keys {sorted(meta)}')
    return meta['group_name']


def split_by_group(data_samples: Sequence) -> 'OrderedDict[str, List[int]]':
    """Split sample positions by group, in order of first appearance.

    Args:
        data_samples (Sequence): Data samples carrying ``group_name`` in metainfo.

    Returns:
        OrderedDict[str, list[int]]: Group name -> positions of its samples in the batch.
    """
    groups: 'OrderedDict[str, List[int]]' = OrderedDict()
    for i, sample in enumerate(data_samples):
        groups.setdefault(get_group_name(sample), []).append(i)
    return groups
