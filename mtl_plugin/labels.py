"""``LabelSpace``: each group's own classes mapped into one unified label space and back.

The one definition of label spaces: the dataset builds it (``MultiSourceDataset``), puts
its serialised form (:meth:`LabelSpace.to_dict`) into its metainfo (``label_spaces``)
and into every sample's metainfo (``label_space``); a multi-head model adopts it the
first time it meets it and keeps it in its checkpoint; ``GroupedMetric`` reads it from
the dataset meta. Nobody rebuilds it from class lists on their own.
"""
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import torch

__all__ = ['LabelSpace']


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
        self.class_mapping: Dict[str, Dict[str, str]] = {
            g: dict(m) for g, m in class_mapping.items()}
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

    def unified_names(self, group: str) -> Tuple[str, ...]:
        """The unified names of ``group``'s classes, in its label order."""
        return tuple(self.unified_classes[i] for i in self.lookup(group).tolist())

    def to_dict(self) -> Dict[str, Any]:
        """Plain-data form (lists, dicts, str), for metainfo and checkpoints."""
        return dict(group_classes={g: list(c) for g, c in self.group_classes.items()},
                    unified_classes=list(self.unified_classes),
                    class_mapping={g: dict(m) for g, m in self.class_mapping.items()})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> 'LabelSpace':
        """Inverse of :meth:`to_dict`."""
        missing = {'group_classes', 'unified_classes'} - set(data)
        if missing:
            raise KeyError(f'a serialised LabelSpace needs keys {sorted(missing)}; got '
                           f'{sorted(data)}')
        return cls(data['group_classes'], data['unified_classes'], data.get('class_mapping'))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelSpace) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(unified_classes={self.unified_classes}, '
                f'group_classes={self.group_classes})')
