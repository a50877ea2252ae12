"""The one place that splits a batch by group and maps labels between label spaces.

Used by the datasets (label offsets), the models (per-group routing) and the metrics
(per-group evaluation), so that the rules live in a single module.
"""
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch


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


class LabelSpace:
    """Maps each group's own labels to one unified label space and back.

    By default the unified classes are the groups' class names in order, a name shared
    by several groups (``person`` in two person datasets) appearing once.

    Args:
        group_classes (Mapping[str, Sequence[str]]): Group name -> its classes, in label
            order.
        unified_classes (Sequence[str], optional): The unified classes. Defaults to the
            ordered union of the groups' class names.
        class_mapping (Mapping[str, Mapping[str, str]], optional): Per group, local class
            name -> unified class name, for names that differ between datasets
            (``{'animal': {'human': 'person'}}``). Unlisted names map to themselves.
    """

    def __init__(self,
                 group_classes: Mapping[str, Sequence[str]],
                 unified_classes: Optional[Sequence[str]] = None,
                 class_mapping: Optional[Mapping[str, Mapping[str, str]]] = None) -> None:
        class_mapping = dict(class_mapping or {})
        unknown = set(class_mapping) - set(group_classes)
        if unknown:
            raise KeyError(f'class_mapping names unknown groups {sorted(unknown)}; '
                           f'known groups: {list(group_classes)}')
        mapped = {g: [class_mapping.get(g, {}).get(c, c) for c in classes]
                  for g, classes in group_classes.items()}
        if unified_classes is None:
            unified_classes = list(OrderedDict.fromkeys(c for cs in mapped.values() for c in cs))
        self.unified_classes: Tuple[str, ...] = tuple(unified_classes)
        self.group_classes = {g: tuple(c) for g, c in group_classes.items()}
        index = {c: i for i, c in enumerate(self.unified_classes)}
        self._to_unified: Dict[str, torch.Tensor] = {}
        for group, names in mapped.items():
            missing = [n for n in names if n not in index]
            if missing:
                raise ValueError(f'classes {missing} of group "{group}" are not in the unified '
                                 f'classes {self.unified_classes}: add them or map them with '
                                 'class_mapping')
            self._to_unified[group] = torch.tensor([index[n] for n in names], dtype=torch.long)

    def lookup(self, group: str) -> torch.Tensor:
        """Local label -> unified label table of ``group``, shape (C_group,)."""
        if group not in self._to_unified:
            raise KeyError(f'unknown group "{group}"; known groups: {list(self._to_unified)}')
        return self._to_unified[group]

    def to_unified(self, group: str, labels: torch.Tensor) -> torch.Tensor:
        """Map a group's local labels (N,) to unified labels (N,)."""
        return self.lookup(group).to(labels.device)[labels]

    def to_group(self, group: str, labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Map unified labels (N,) into ``group``'s label space.

        Returns:
            tuple[Tensor, Tensor]: ``keep`` (N,) bool, True where the unified class belongs
            to the group, and the local labels (K,) of the kept entries.
        """
        table = self.lookup(group).to(labels.device)
        inverse = torch.full((len(self.unified_classes),), -1, dtype=torch.long,
                             device=labels.device)
        inverse[table] = torch.arange(len(table), device=labels.device)
        local = inverse[labels]
        keep = local >= 0
        return keep, local[keep]

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(unified_classes={self.unified_classes}, '
                f'group_classes={self.group_classes})')
