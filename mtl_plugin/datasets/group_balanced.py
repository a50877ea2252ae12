"""Group bookkeeping from ``group_ids`` and ``GroupBalancedDataset`` (over/undersampling)."""
import copy
import math
from typing import Any, Dict, List, Mapping, Optional, Sized, Tuple, Union

import numpy as np
from mmengine.registry import DATASETS
from torch.utils.data import Dataset

from ..groups import GroupKey, GroupKeyed, Groups


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and \
        not isinstance(value, (bool, np.bool_))


class GroupTable:
    """The groups of a dataset, read from its ``group_ids`` only (no sample is loaded).

    Group keys of every setting (``group_weights``, ``group_ratios``, ``oversample``...)
    are read by :class:`~mtl_plugin.groups.GroupKeyed` against :attr:`groups` (the
    dataset's :class:`~mtl_plugin.groups.Groups`): ``'1'`` and ``1`` are the same id, and
    an unknown id or name is an :class:`~mtl_plugin.groups.UnknownGroupError`.

    Args:
        dataset (Sized): A dataset with ``group_ids`` (e.g. ``MultiSourceDataset``).
        owner (str): Name of the class using the table, for error messages.
    """

    def __init__(self, dataset: Sized, owner: str) -> None:
        group_ids = getattr(dataset, 'group_ids', None)
        if group_ids is None:
            raise TypeError(
                f'{owner} needs a dataset with `group_ids` (one group id per sample), but '
                f'{type(dataset).__name__} has none: wrap it in '
                "dict(type='MultiSourceDataset', datasets=[dict(type=..., group_name=...)])")
        ids = np.asarray(group_ids)
        if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f'{owner}: dataset.group_ids must be a non-empty 1-D integer array, '
                             f'but got dtype {ids.dtype} and shape {ids.shape}')
        self.owner = owner
        self.group_ids = ids.astype(np.int64, copy=False)
        # pos: each sample's group position in ``ids``; members of group k are
        # order[offsets[k]:offsets[k] + counts[k]]
        self.ids, pos, self.counts = np.unique(self.group_ids, return_inverse=True,
                                               return_counts=True)
        self.pos = pos.reshape(-1)
        self.order = np.argsort(self.pos, kind='stable')
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
        self.groups = self._groups(dataset, [int(g) for g in self.ids])

    def _groups(self, dataset: Any, present: List[int]) -> Groups:
        """The dataset's groups; ids with samples but no name are called ``group<id>``."""
        try:
            groups = Groups.from_dataset(dataset, self.owner)
        except TypeError:  # group_ids without names (a bare test dataset)
            return Groups([f'group{g}' for g in present], present)
        unnamed = [g for g in present if g not in groups.ids]
        if unnamed:
            groups = Groups(list(groups.names) + [f'group{g}' for g in unnamed],
                            list(groups.ids) + unnamed)
        return groups

    @property
    def num_groups(self) -> int:
        """Number of groups with at least one sample."""
        return len(self.ids)

    def members(self, k: int) -> np.ndarray:
        """Indices of the samples of the group at position ``k``."""
        return self.order[self.offsets[k]:self.offsets[k] + self.counts[k]]

    def label(self, k: int) -> str:
        """Readable name of the group at position ``k``."""
        gid = int(self.ids[k])
        return f'{self.groups.name_of(gid)!r} (id {gid})'

    def known(self) -> str:
        """All known groups, for error messages."""
        return self.groups.known()

    def position(self, gid: int, what: str) -> int:
        """Position in :attr:`ids` of a (known) group id; an error if it has no sample."""
        k = int(np.searchsorted(self.ids, gid))
        if k < len(self.ids) and self.ids[k] == gid:
            return k
        raise ValueError(f'{self.owner}: group {self.groups.name_of(gid)!r} in {what} has zero '
                         'samples in the dataset; remove it from ' + what)

    def values(self, mapping: Any, what: str, default: float,
               max_value: float = math.inf) -> Tuple[np.ndarray, np.ndarray]:
        """Per-group values of a ``{group: value}`` dict, validated.

        Args:
            mapping (Mapping): Group id or name -> finite number > 0.
            what (str): Argument name, for error messages.
            default (float): Value of the groups not listed.
            max_value (float): Largest allowed value. Defaults to inf.

        Returns:
            tuple[np.ndarray, np.ndarray]: values (float64) and whether each group was listed.
        """
        bound = '' if math.isinf(max_value) else f' and <= {max_value:g}'

        def check(value: Any, where: str, owner: str) -> float:
            if not _is_real(value) or not math.isfinite(value) or not 0 < value <= max_value:
                raise ValueError(f'{owner}: {where} must be a finite number > 0{bound}, but '
                                 f'got {value!r}')
            return float(value)

        by_id, _ = GroupKeyed(mapping, what, self.owner, check).bind(self.groups)
        values = np.full(self.num_groups, float(default))
        listed = np.zeros(self.num_groups, dtype=bool)
        for gid, value in by_id.items():
            k = self.position(gid, what)
            values[k], listed[k] = value, True
        return values, listed


class GroupShares:
    """Mixin: target share of each group, from ``group_weights`` or ``group_ratios``.

    The host sets ``self._table`` (a :class:`GroupTable`) and ``self._weights =
    self._ratios = None``, then calls ``_init_shares``.
    """

    _table: GroupTable
    _weights: Optional[np.ndarray]
    _ratios: Optional[np.ndarray]

    def _init_shares(self, group_weights: Optional[dict], group_ratios: Optional[dict]) -> None:
        if group_weights is not None and group_ratios is not None:
            raise ValueError(f'{self._table.owner}: give group_weights or group_ratios, not both; '
                             f'got group_weights={group_weights!r}, group_ratios={group_ratios!r}')
        if group_ratios is not None:
            self.set_group_ratios(group_ratios)
        else:
            self.set_group_weights({} if group_weights is None else group_weights)

    def set_group_weights(self, weights: Dict[GroupKey, float]) -> None:
        """Switch to (new) group weights; groups not listed get 1.0.

        A weight multiplies the sampling probability of every sample of its group. Takes
        effect from the next epoch (or the next chunk of an infinite sampler).

        Args:
            weights (dict): Group id or name -> finite weight > 0.
        """
        self._weights, _ = self._table.values(weights, 'group_weights', 1.0)
        self._ratios = None

    def set_group_ratios(self, ratios: Dict[GroupKey, float]) -> None:
        """Switch to (new) group ratios: the target share of each group, normalised.

        Args:
            ratios (dict): Every group's id or name -> finite ratio > 0.
        """
        values, listed = self._table.values(ratios, 'group_ratios', 0.0)
        if not listed.all():
            missing = [self._table.label(k) for k in np.flatnonzero(~listed)]
            raise ValueError(f'{self._table.owner}: group_ratios must list every group, but '
                             f'{", ".join(missing)} missing; got {dict(ratios)!r}')
        old = (self._weights, self._ratios)
        self._weights, self._ratios = None, values / values.sum()
        try:
            self._check_ratios()
        except ValueError:
            self._weights, self._ratios = old
            raise

    def _check_ratios(self) -> None:
        """Hook for subclasses to reject ratios they cannot honour."""

    @property
    def group_weights(self) -> Optional[Dict[int, float]]:
        """dict[int, float] | None: Weight of every group by id (None in ratio mode)."""
        if self._weights is None:
            return None
        return {int(g): float(w) for g, w in zip(self._table.ids, self._weights)}

    @property
    def group_ratios(self) -> Optional[Dict[int, float]]:
        """dict[int, float] | None: Normalised ratio of every group by id (None in weight
        mode)."""
        if self._ratios is None:
            return None
        return {int(g): float(r) for g, r in zip(self._table.ids, self._ratios)}

    def _base_shares(self) -> np.ndarray:
        return self._table.counts / self._table.counts.sum()

    def _shares(self) -> np.ndarray:
        if self._ratios is not None:
            return self._ratios
        shares = self._base_shares() * self._weights
        return shares / shares.sum()

    def group_shares(self) -> Dict[int, float]:
        """Expected share of each group (by id) in the output.

        Returns:
            dict[int, float]: Group id -> probability, summing to 1.
        """
        return {int(g): float(s) for g, s in zip(self._table.ids, self._shares())}



@DATASETS.register_module()
class GroupBalancedDataset(Dataset):
    """Resample the groups of a dataset: repeat some, keep a random subset of others.

    The index list is built once (``full_init``) from ``group_ids``, with a
    ``numpy.random.Generator(seed)``:

    - ``oversample={g: f}``: each sample of group g appears ``floor(f)`` times, plus once
      more with probability ``f - floor(f)`` (as the repeat factors of mmengine's
      ``ClassBalancedDataset``); ``0 < f < 1`` thus keeps each sample with probability f.
    - ``undersample={g: f}`` (``0 < f <= 1``): keeps a random subset of exactly
      ``max(1, floor(f * n_g + 0.5))`` of the ``n_g`` samples of group g.

    A group may be in one of the two only. Indices stay in ascending original order
    (copies adjacent); shuffling is the sampler's job.

    Args:
        dataset (dict | Dataset): Dataset config, or a dataset with ``group_ids``
            (e.g. ``MultiSourceDataset``).
        oversample (dict, optional): Group id or name -> repeat factor > 0.
            Defaults to None.
        undersample (dict, optional): Group id or name -> kept fraction in (0, 1].
            Defaults to None.
        seed (int): Seed of the random repeats and subsets. Defaults to 0.
        lazy_init (bool): Defer building the index list to ``full_init``.
            Defaults to False.
    """

    def __init__(self,
                 dataset: Union[dict, Dataset],
                 oversample: Optional[Dict[GroupKey, float]] = None,
                 undersample: Optional[Dict[GroupKey, float]] = None,
                 seed: int = 0,
                 lazy_init: bool = False) -> None:
        owner = type(self).__name__
        for what, value in (('oversample', oversample), ('undersample', undersample)):
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(f'{owner}: {what} must be a dict {{group id or name: factor}} '
                                f'or None, but got {value!r}')
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f'{owner}: seed must be an int >= 0, but got {seed!r}')
        if isinstance(dataset, Mapping):
            dataset = DATASETS.build(dataset)
        elif not hasattr(dataset, '__getitem__'):
            raise TypeError(f'{owner}: dataset must be a dataset config (dict) or a dataset, '
                            f'but got {dataset!r}')
        self.dataset = dataset
        self.oversample = dict(oversample or {})
        self.undersample = dict(undersample or {})
        self.seed = int(seed)
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    def full_init(self) -> None:
        """Initialise the wrapped dataset and build the resampled index list (once)."""
        if self._fully_initialized:
            return
        owner = type(self).__name__
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        table = GroupTable(self.dataset, owner)
        over, over_listed = table.values(self.oversample, 'oversample', 1.0)
        under, under_listed = table.values(self.undersample, 'undersample', 1.0, max_value=1.0)
        for k in np.flatnonzero(over_listed & under_listed):
            raise ValueError(f'{owner}: group {table.label(k)} is in both oversample and '
                             'undersample; give it one factor')
        rng = np.random.default_rng(self.seed)
        n = len(table.group_ids)
        keep = np.ones(n, dtype=bool)
        for k in np.flatnonzero(under_listed):
            members = table.members(k)
            count = max(1, int(math.floor(under[k] * len(members) + 0.5)))
            keep[members] = False
            keep[rng.choice(members, size=count, replace=False)] = True
        factor = over[table.pos]
        whole = np.floor(factor)
        copies = (whole + (rng.random(n) < factor - whole)).astype(np.int64) * keep
        if copies.sum() == 0:
            raise ValueError(f'{owner}: oversample={self.oversample!r} left no sample; use '
                             'factors >= 1 or undersample for small groups')
        self._indices = np.repeat(np.arange(n), copies)
        self._group_ids = table.group_ids[self._indices]
        self._fully_initialized = True

    @property
    def indices(self) -> np.ndarray:
        """np.ndarray: Index into the wrapped dataset of every sample."""
        self.full_init()
        return self._indices

    @property
    def group_ids(self) -> np.ndarray:
        """np.ndarray: Group id of every (resampled) sample, int64."""
        self.full_init()
        return self._group_ids

    @property
    def metainfo(self) -> dict:
        """dict: The wrapped dataset's metainfo (a copy)."""
        return copy.deepcopy(dict(getattr(self.dataset, 'metainfo', None) or {}))

    @property
    def groups(self) -> Groups:
        """The wrapped dataset's groups."""
        return Groups.from_dataset(self.dataset, type(self).__name__)

    @property
    def group_names(self) -> Optional[list]:
        """list[str] | None: The wrapped dataset's group names, if any."""
        return getattr(self.dataset, 'group_names', None)

    @property
    def group_id_list(self) -> Optional[list]:
        """list[int] | None: The wrapped dataset's group ids aligned with ``group_names``."""
        return getattr(self.dataset, 'group_id_list', None)

    def get_data_info(self, idx: int) -> dict:
        """Annotation of resampled sample ``idx`` (from the wrapped dataset)."""
        return self.dataset.get_data_info(int(self.indices[idx]))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, idx: int) -> Any:
        return self.dataset[int(self.indices[idx])]

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(dataset={type(self.dataset).__name__}, '
                f'oversample={self.oversample!r}, undersample={self.undersample!r}, '
                f'seed={self.seed})')
