"""The one group core: who the groups are, and the one parser for group-keyed settings.

Every setting that names a group (``group_id_weight={1: 2.0}``, ``group_weights=
{'animal': 3.0}``, ``GroupBasedAugmentation(transforms={'default': [...]})``, a metric per
group, a curriculum value) goes through :func:`normalize_group_key` when it is built and
through :meth:`Groups.resolve` once the groups are known, so that every component reads a
key the same way:

- an ``int`` (or numpy integer) is a group **id**;
- a ``str`` of digits (``'1'``, what ``--cfg-options ...group_id_weight.1=2`` produces) is
  the same id: ``'1'`` and ``1`` mean the same everywhere, which is why a group may not be
  *named* with digits only;
- ``'default'`` (where a component allows it) is the value of every group not listed,
  which is why no group may be named ``'default'``;
- any other ``str`` is a group **name**.

An unknown id or name is a :class:`UnknownGroupError` naming the key, the setting, the
known groups and the closest name, raised before the first iteration (components that
see the dataset check at build time; losses check on their first call, before any
update).
"""
import math
from typing import (Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple,
                    TypeVar, Union)

from .validation import did_you_mean, is_int, is_real

__all__ = [
    'DEFAULT', 'GroupKey', 'Groups', 'GroupKeyed', 'UnknownGroupError',
    'normalize_group_key', 'check_group_name', 'positive_weight'
]

#: reserved key: the value of every group a mapping does not list
DEFAULT = 'default'
GroupKey = Union[int, str]
V = TypeVar('V')


class UnknownGroupError(KeyError):
    """A group id or name that the dataset does not have.

    A ``KeyError`` (a missing key) whose message is printed as is, not quoted.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


def check_group_name(name: Any, where: str) -> str:
    """Validate a group name as written in a dataset config.

    Args:
        name (Any): The name.
        where (str): Where it was written, for the error (``'datasets[1]'``).

    Returns:
        str: The name.

    Raises:
        ValueError: If it is not a non-empty str, is all digits (it would read as an id)
            or is the reserved ``'default'``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f'{where} has no group_name: add group_name="<name>" to it '
                         f'(got {name!r})')
    if name.strip().isdigit():
        raise ValueError(f'{where}: group_name {name!r} is all digits, which every setting '
                         f'reads as a group id; use a word, e.g. "group{name.strip()}"')
    if name == DEFAULT:
        raise ValueError(f"{where}: group_name 'default' is reserved (it keys the value of the "
                         'groups a setting does not list); choose another name')
    return name


def normalize_group_key(key: Any, what: str, owner: str,
                        allow_default: bool = False) -> GroupKey:
    """Read one key of a group-keyed setting: id (int), name (str) or ``'default'``.

    Args:
        key (Any): The key as written (``1``, ``'1'``, ``'animal'``, ``'default'``).
        what (str): The setting, for errors (``'group_id_weight'``).
        owner (str): The component, for errors (``'GroupWeightedLoss'``).
        allow_default (bool): Whether ``'default'`` is accepted. Defaults to False.

    Returns:
        int | str: An int id, a group name, or :data:`DEFAULT`.

    Raises:
        TypeError: For a key that is neither an int nor a str.
        ValueError: For ``'default'`` where it is not allowed, or an empty / negative key.
    """
    if is_int(key):
        if int(key) < 0:
            raise ValueError(f'{owner}: {what} key {key!r} is a negative group id; ids are >= 0')
        return int(key)
    if not isinstance(key, str):
        raise TypeError(f'{owner}: {what} key {key!r} ({type(key).__name__}) is not a group: '
                        'keys must be group ids (int) or group names (str), '
                        f"e.g. {{1: 2.0}} or {{'animal': 2.0}}, but got {key!r}")
    text = key.strip()
    if text.isdigit():
        return int(text)
    if key == DEFAULT:
        if not allow_default:
            raise ValueError(f"{owner}: {what} does not take a 'default' key; list the groups "
                             'by id or name')
        return DEFAULT
    if not key:
        raise ValueError(f'{owner}: {what} has an empty group name as a key')
    return key


def positive_weight(value: Any, what: str, owner: str) -> float:
    """Validate a weight: a finite number > 0 (bools refused).

    Args:
        value (Any): The value.
        what (str): Where it was written (``"group_id_weight[1]"``).
        owner (str): The component.

    Returns:
        float: The value.
    """
    if not is_real(value):
        raise TypeError(f'{owner}: {what} = {value!r} is not a number; give a finite float > 0, '
                        'e.g. 2.0')
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f'{owner}: {what} = {value!r} must be finite and > 0 (1.0 is the '
                         'default weight; a small positive value such as 0.1 down-weights a '
                         'group)')
    return value


class Groups:
    """The groups of one dataset: name <-> id <-> index (position in the list).

    Built once from the dataset (``MultiSourceDataset.groups``) or its metainfo
    (``group_name_to_id``), and handed to whoever must read group-keyed settings.

    Args:
        names (Sequence[str]): Group names, in dataset order.
        ids (Sequence[int], optional): Their ids. Defaults to ``0..G-1``.
    """

    def __init__(self, names: Sequence[str], ids: Optional[Sequence[int]] = None) -> None:
        names = [check_group_name(n, f'group {i}') for i, n in enumerate(names)]
        ids = list(range(len(names))) if ids is None else [int(i) for i in ids]
        if not names:
            raise ValueError('Groups needs at least one group')
        if len(ids) != len(names):
            raise ValueError(f'{len(names)} group names but {len(ids)} ids')
        for what, values in (('name', names), ('id', ids)):
            dup = sorted({v for v in values if values.count(v) > 1}, key=str)
            if dup:
                raise ValueError(f'duplicate group {what}s {dup}: every group needs its own')
        self.names: Tuple[str, ...] = tuple(names)
        self.ids: Tuple[int, ...] = tuple(ids)
        self._id_of = dict(zip(self.names, self.ids))
        self._name_of = dict(zip(self.ids, self.names))
        self._index_of = {gid: k for k, gid in enumerate(self.ids)}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_metainfo(cls, meta: Optional[Mapping]) -> Optional['Groups']:
        """Groups of a dataset's metainfo (``group_name_to_id``), or None if it has none."""
        mapping = (meta or {}).get('group_name_to_id') if isinstance(meta, Mapping) else None
        if not isinstance(mapping, Mapping) or not mapping:
            return None
        return cls(list(mapping), list(mapping.values()))

    @classmethod
    def from_dict(cls, mapping: Mapping[str, int]) -> 'Groups':
        """Inverse of :meth:`to_dict`."""
        return cls(list(mapping), list(mapping.values()))

    @classmethod
    def from_dataset(cls, dataset: Any, owner: str) -> 'Groups':
        """Groups of a dataset (a ``MultiSourceDataset`` or a wrapper of one).

        Raises:
            TypeError: If the dataset does not know its groups, with the fix.
        """
        groups = getattr(dataset, 'groups', None)
        if isinstance(groups, Groups):
            return groups
        groups = cls.from_metainfo(getattr(dataset, 'metainfo', None))
        if groups is None:
            raise TypeError(
                f'{owner} needs a dataset that knows its groups, but '
                f'{type(dataset).__name__} does not: wrap it in '
                "dict(type='MultiSourceDataset', datasets=[dict(type=..., group_name=...)])")
        return groups

    def to_dict(self) -> Dict[str, int]:
        """``{name: id}``, in dataset order (what metainfo and checkpoints store)."""
        return dict(zip(self.names, self.ids))

    # ------------------------------------------------------------------ lookups
    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Groups) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.names, self.ids))

    def __repr__(self) -> str:
        return f'Groups({self.known()})'

    def known(self) -> str:
        """The groups as ``'person'=0, 'animal'=1`` (for error messages)."""
        return ', '.join(f'{n!r}={i}' for n, i in zip(self.names, self.ids))

    def name_of(self, group_id: int) -> str:
        """Name of a group id."""
        return self._name_of[self.resolve(group_id, 'group id', 'Groups')]

    def id_of(self, name: str) -> int:
        """Id of a group name."""
        return self.resolve(name, 'group name', 'Groups')

    def index_of(self, key: Any) -> int:
        """Position (0..G-1) of a group given by id or name."""
        return self._index_of[self.resolve(key, 'group', 'Groups')]

    def resolve(self, key: Any, what: str, owner: str) -> int:
        """The id of the group a key names (id, digit string or name).

        Args:
            key (Any): The key as written.
            what (str): The setting, for errors.
            owner (str): The component, for errors.

        Returns:
            int: The group id.

        Raises:
            UnknownGroupError: For an id or name the dataset does not have.
        """
        norm = normalize_group_key(key, what, owner)
        if isinstance(norm, int):
            if norm in self._name_of:
                return norm
        elif norm in self._id_of:
            return self._id_of[norm]
        hint = did_you_mean(norm, self.names)
        raise UnknownGroupError(f'{owner}: unknown group {key!r} in {what}; known groups: '
                                f'{self.known()}{hint}')

    def parse(self, mapping: Any, what: str, owner: str,
              value: Optional[Callable[[Any, str, str], V]] = None,
              allow_default: bool = False) -> Tuple[Dict[int, V], Optional[V]]:
        """Resolve a ``{group: value}`` setting against these groups.

        Args:
            mapping (Mapping): The setting.
            what (str): Its name, for errors.
            owner (str): The component, for errors.
            value (callable, optional): ``value(v, where, owner) -> v`` validating each value
                (e.g. :func:`positive_weight`). Defaults to no check.
            allow_default (bool): Accept a ``'default'`` key. Defaults to False.

        Returns:
            tuple[dict[int, V], V | None]: Group id -> value, and the ``'default'`` value.
        """
        return GroupKeyed(mapping, what, owner, value, allow_default).bind(self)


class GroupKeyed:
    """A ``{group: value}`` setting, parsed when the component is built, bound to groups later.

    Components built without the dataset (losses inside heads, pipeline transforms) check
    the keys' syntax and the values at construction, and resolve the keys with
    :meth:`bind` as soon as they see the groups (unknown keys fail there).

    Args:
        mapping (Mapping | None): The setting (None: empty).
        what (str): Its name, for errors (``'group_id_weight'``).
        owner (str): The component, for errors.
        value (callable, optional): ``value(v, where, owner) -> v`` validator.
        allow_default (bool): Accept a ``'default'`` key. Defaults to False.
    """

    def __init__(self, mapping: Optional[Mapping], what: str, owner: str,
                 value: Optional[Callable[[Any, str, str], Any]] = None,
                 allow_default: bool = False) -> None:
        if mapping is None:
            mapping = {}
        if not isinstance(mapping, Mapping):
            raise TypeError(f'{owner}: {what} must be a dict {{group id (int) or group name '
                            f"(str): value}}, e.g. {{1: 2.0}} or {{'animal': 2.0}}, but got "
                            f'{type(mapping).__name__} {mapping!r}')
        self.what, self.owner = what, owner
        self.items: List[Tuple[Any, GroupKey, Any]] = []  # (as written, normalised, value)
        seen: Dict[GroupKey, Any] = {}
        for raw, val in mapping.items():
            key = normalize_group_key(raw, what, owner, allow_default)
            if key in seen:
                raise ValueError(f'{owner}: {what} lists group {key!r} twice ({seen[key]!r} and '
                                 f'{raw!r}); keep one')
            seen[key] = raw
            if value is not None:
                val = value(val, f'{what}[{raw!r}]', owner)
            self.items.append((raw, key, val))
        self._bound: Optional[Tuple[Groups, Dict[int, Any], Any]] = None

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def as_dict(self) -> Dict[GroupKey, Any]:
        """The setting with normalised keys (``'1'`` became ``1``)."""
        return {key: val for _, key, val in self.items}

    def bind(self, groups: Groups) -> Tuple[Dict[int, Any], Any]:
        """Resolve every key against ``groups`` (cached for the same groups).

        Returns:
            tuple[dict[int, Any], Any]: Group id -> value, and the ``'default'`` value
            (None when there is no default key).

        Raises:
            UnknownGroupError: For a key the groups do not have.
            ValueError: When two keys (an id and a name) name the same group.
        """
        if self._bound is not None and self._bound[0] == groups:
            return self._bound[1], self._bound[2]
        by_id: Dict[int, Any] = {}
        written: Dict[int, Any] = {}
        default = None
        for raw, key, val in self.items:
            if key == DEFAULT:
                default = val
                continue
            gid = groups.resolve(raw, self.what, self.owner)
            if gid in by_id:
                raise ValueError(f'{self.owner}: group {groups.name_of(gid)!r} (id {gid}) is '
                                 f'listed twice in {self.what}, as {written[gid]!r} and '
                                 f'{raw!r} (by id and by name); keep one')
            by_id[gid], written[gid] = val, raw
        self._bound = (groups, by_id, default)
        return by_id, default

    def __repr__(self) -> str:
        return repr(self.as_dict())
