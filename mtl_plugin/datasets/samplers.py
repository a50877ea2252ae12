"""Group-aware samplers: weighted group sampling (epoch / infinite) and single-group batches."""
import itertools
import math
from collections import deque
from typing import Any, Dict, Iterator, List, Optional, Sized, Tuple

import numpy as np
import torch
from mmengine.dataset import InfiniteSampler
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.registry import DATA_SAMPLERS
from torch.utils.data import BatchSampler, Sampler

from ..config_checks import reject_stock_keys
from .group_balanced import GroupKey, GroupShares, GroupTable
from .sampler_record import ChunkRecord


def _check_seed(seed: Any, owner: str) -> int:
    if seed is None:
        return sync_random_seed()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f'{owner}: seed must be an int or None, but got {seed!r}')
    return int(seed)


def _largest_remainder(total: int, shares: np.ndarray) -> np.ndarray:
    exact = total * shares
    counts = np.floor(exact).astype(np.int64)
    rest = total - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind='stable')[:rest]] += 1
    return counts


@DATA_SAMPLERS.register_module()
class WeightedGroupSampler(GroupShares, Sampler):
    """Samples indices with per-group weights or target group ratios (epoch-based loops).

    Reads ``dataset.group_ids`` only and draws an epoch in a few vectorised torch ops:

    - ``replacement=True``: the group of each of the ``num_samples`` draws comes from one
      multinomial over the groups (share of group g: ``n_g * w_g`` normalised, or its
      ratio), then a uniform sample within the group.
    - ``replacement=False``: every sample at most once per epoch. With weights, a weighted
      random permutation (Efraimidis-Spirakis keys ``u ** (1 / w)``) truncated to
      ``num_samples``; with ratios, exactly ``num_samples * ratio`` samples per group
      (largest-remainder rounding), a random subset of each group, shuffled.

    Distribution as mmengine's ``DefaultSampler``: one global stream from a
    ``torch.Generator`` seeded with ``seed + epoch``; with ``round_up`` it is padded to a
    multiple of the world size by repeating its start; rank r takes
    ``indices[r:total_size:world_size]``.

    Args:
        dataset (Sized): Dataset with ``group_ids`` (wrap others in ``MultiSourceDataset``).
        group_weights (dict, optional): Group id or name -> weight > 0 multiplying the
            probability of its samples; groups not listed: 1.0. Defaults to None.
        group_ratios (dict, optional): Every group -> target share per epoch (normalised);
            exclusive with ``group_weights``. Defaults to None.
        replacement (bool): Draw with replacement. Defaults to True.
        num_samples (int, optional): Draws per epoch over all ranks. Defaults to
            ``len(dataset)``.
        seed (int, optional): Seed shared by all ranks. Defaults to ``sync_random_seed()``.
        round_up (bool): Pad the stream to a multiple of the world size. Defaults to True.
    """

    def __init__(self,
                 dataset: Sized,
                 group_weights: Optional[Dict[GroupKey, float]] = None,
                 group_ratios: Optional[Dict[GroupKey, float]] = None,
                 replacement: bool = True,
                 num_samples: Optional[int] = None,
                 seed: Optional[int] = None,
                 round_up: bool = True,
                 **kwargs: Any) -> None:
        reject_stock_keys(type(self), kwargs)  # a stock DefaultSampler's shuffle: the fix
        owner = type(self).__name__
        self._table = GroupTable(dataset, owner)
        size = len(dataset)
        if size != len(self._table.group_ids):
            raise ValueError(f'{owner}: len(dataset) is {size} but dataset.group_ids has '
                             f'{len(self._table.group_ids)} entries; they must match')
        if not isinstance(replacement, bool):
            raise TypeError(f'{owner}: replacement must be a bool, but got {replacement!r}')
        if num_samples is None:
            num_samples = size
        if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) \
                or num_samples <= 0:
            raise ValueError(f'{owner}: num_samples must be an int > 0, but got {num_samples!r}')
        if not replacement and num_samples > size:
            raise ValueError(f'{owner}: replacement=False draws each of the {size} samples at '
                             f'most once, but got num_samples={num_samples}; lower it or set '
                             'replacement=True')
        self.dataset = dataset
        self.replacement = replacement
        self.num_samples = int(num_samples)
        self.seed = _check_seed(seed, owner)
        self.round_up = bool(round_up)
        self.rank, self.world_size = get_dist_info()
        self.epoch = 0
        if self.round_up:
            self.total_size = math.ceil(self.num_samples / self.world_size) * self.world_size
            self._rank_len = self.total_size // self.world_size
        else:
            self.total_size = self.num_samples
            self._rank_len = math.ceil((self.num_samples - self.rank) / self.world_size)
        self._t = {k: torch.from_numpy(getattr(self._table, k))
                   for k in ('pos', 'order', 'offsets', 'counts')}
        self._weights = self._ratios = None
        self._init_shares(group_weights, group_ratios)

    def _ratio_counts(self) -> np.ndarray:
        return _largest_remainder(self.num_samples, self._ratios)

    def _check_ratios(self) -> None:
        if self.replacement:
            return
        counts = self._ratio_counts()
        for k in np.flatnonzero(counts > self._table.counts):
            raise ValueError(
                f'{self._table.owner}: with replacement=False, group {self._table.label(k)} would '
                f'need {counts[k]} samples per epoch but has {self._table.counts[k]}; lower '
                'num_samples or its ratio, or set replacement=True')

    def _draw(self, seed: int) -> torch.Tensor:
        """``num_samples`` indices of one epoch (or chunk), from a generator seeded ``seed``."""
        gen = torch.Generator().manual_seed(seed)
        t, n = self._t, len(self._table.group_ids)
        if self.replacement:
            # one uniform u per draw: its position in the cumulative group shares picks the
            # group, the remaining fraction picks the sample within it (numpy: ~2x torch here)
            cum = np.cumsum(self._shares())
            u = np.random.default_rng(seed).random(self.num_samples) * cum[-1]
            grp = np.minimum(np.searchsorted(cum, u, side='right'), len(cum) - 1)
            start = cum[grp] - self._shares()[grp]
            counts = t['counts'].numpy()[grp]
            local = np.minimum(((u - start) / (cum[grp] - start) * counts).astype(np.int64),
                               counts - 1)
            return torch.from_numpy(t['order'].numpy()[t['offsets'].numpy()[grp] + local])
        if self._ratios is None:
            # Efraimidis-Spirakis: top-k of u ** (1 / w), compared in log space
            w = torch.from_numpy(self._weights)[t['pos']]
            keys = torch.log(torch.rand(n, generator=gen, dtype=torch.float64)) / w
            return torch.argsort(keys, descending=True)[:self.num_samples]
        want = torch.from_numpy(self._ratio_counts())
        # group-major order, random within each group: keep the first want[g] of group g
        perm = torch.argsort(t['pos'].double() + torch.rand(n, generator=gen, dtype=torch.float64))
        grp = t['pos'][perm]
        chosen = perm[torch.arange(n) - t['offsets'][grp] < want[grp]]
        return chosen[torch.randperm(len(chosen), generator=gen)]

    def __iter__(self) -> Iterator[int]:
        """Iterate this rank's indices of the current epoch."""
        indices = self._draw(self.seed + self.epoch)
        if self.round_up and self.total_size > len(indices):
            indices = indices.repeat(math.ceil(self.total_size / len(indices)))[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.world_size].tolist())

    def __len__(self) -> int:
        """Number of indices of this rank per epoch."""
        return self._rank_len

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch: the stream of epoch e is drawn with seed ``seed + e``.

        Args:
            epoch (int): Epoch number.
        """
        self.epoch = epoch


@DATA_SAMPLERS.register_module()
class InfiniteWeightedGroupSampler(ChunkRecord, WeightedGroupSampler):
    """:class:`WeightedGroupSampler` for iteration-based loops (like mmengine's
    ``InfiniteSampler``).

    The global stream is chunk 0, chunk 1, ... where chunk k holds ``num_samples``
    indices drawn as one epoch of :class:`WeightedGroupSampler` with seed ``seed + k``;
    rank r yields ``stream[r::world_size]`` forever. As in mmengine, iterating again
    continues the same stream, ``round_up`` has no effect, ``set_epoch`` does nothing and
    ``len()`` is the chunk size. New weights or ratios apply from the next chunk drawn.

    Resume: the weights / ratios each chunk was drawn with are recorded
    (:meth:`state_dict`; ``CurriculumLearningHook`` stores it in the checkpoint). After
    :meth:`load_state_dict`, the chunks of the record are drawn again with *their*
    weights, so the batches mmengine's ``IterBasedTrainLoop`` skips on resume, and those
    after, are exactly those of the uninterrupted run.

    Args:
        dataset (Sized): Dataset with ``group_ids``.
        group_weights (dict, optional): See :class:`WeightedGroupSampler`. Defaults to None.
        group_ratios (dict, optional): See :class:`WeightedGroupSampler`. Defaults to None.
        replacement (bool): Within each chunk. Defaults to True.
        num_samples (int, optional): Chunk size. Defaults to ``len(dataset)``.
        seed (int, optional): Seed shared by all ranks. Defaults to ``sync_random_seed()``.
        round_up (bool): Ignored (kept for config compatibility). Defaults to True.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stream: Optional[Iterator[int]] = None
        # chunk -> (weights, ratios) it was drawn with
        self._drawn: Dict[int, Tuple[Optional[list], Optional[list]]] = {}

    def _chunks(self) -> Iterator[int]:
        for k in itertools.count():
            yield from self._draw_chunk(k).tolist()


    def __iter__(self) -> Iterator[int]:
        """Yield this rank's indices forever."""
        if self._stream is None:
            self._stream = itertools.islice(self._chunks(), self.rank, None, self.world_size)
        yield from self._stream

    def __len__(self) -> int:
        """Chunk size (as mmengine's ``InfiniteSampler``, the stream itself never ends)."""
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Not used by iteration-based loops (as in mmengine's ``InfiniteSampler``)."""


def _is_infinite(sampler: Any) -> bool:
    return isinstance(sampler, (InfiniteSampler, InfiniteWeightedGroupSampler)) or \
        'Infinite' in type(sampler).__name__


@DATA_SAMPLERS.register_module()
class GroupBatchSampler(GroupShares, BatchSampler):
    """Batches of a single group each; the group of each batch follows target shares.

    Config: ``train_dataloader = dict(sampler=dict(type='DefaultSampler'),
    batch_sampler=dict(type='GroupBatchSampler', same_group_across_ranks=True), ...)``
    (the Runner passes ``sampler`` and ``batch_size``).

    How batches are formed:

    - Schedule: an epoch has exactly ``len(self)`` batches; their groups are a random
      order of ``round(len(self) * share_g)`` batches of each group g (stratified, so the
      realised frequencies match the shares closely). Share of g: its ratio, or its
      base share times its weight, where the base share is the wrapped sampler's
      ``group_shares()`` (e.g. :class:`WeightedGroupSampler`) or else the group's fraction
      of the dataset. The schedule comes from a numpy generator seeded with
      ``(seed, epoch)`` on every rank when ``same_group_across_ranks`` (so all ranks use
      the same group, hence the same heads, at each step), else ``(seed, epoch, rank)``.
    - Filling: indices are pulled from the wrapped sampler's stream into per-group
      buckets (per group and aspect ratio ``width < height`` or not, when
      ``aspect_ratio_grouping``) until a bucket of the scheduled group holds a batch;
      buckets are FIFO, so within a group the stream's order is kept. Other groups'
      indices wait in their buckets (at most ``max_buffer`` each; more are skipped).
    - Exhaustion: when the stream ends (or ``max_buffer`` indices in a row bring nothing
      of the group), the batch takes what its bucket holds and is topped up with random
      indices (rank-local generator) this rank already drew for that bucket this epoch,
      or, if none, from the whole group. Indices left in buckets when the epoch ends are
      dropped. Counts are in :attr:`last_stats`. With the default shares mismatches are
      small; a shares/stream mismatch is resolved in favour of the shares.
    - Batch sizes: ``batch_size``, except the last batch of an epoch (``drop_last=False``)
      which has the rest, so an epoch yields ``len(sampler)`` indices. Wrapping an infinite
      sampler (mmengine's ``InfiniteSampler``, :class:`InfiniteWeightedGroupSampler`), it
      yields full batches forever, scheduling blocks of ``len(self)`` batches.

    Args:
        sampler (Sampler): Wrapped sampler; ``sampler.dataset`` must have ``group_ids``.
        batch_size (int): Size of a batch.
        drop_last (bool): Drop the last, smaller batch of an epoch. Defaults to False.
        group_weights (dict, optional): Group id or name -> weight > 0 on its base share.
            Defaults to None.
        group_ratios (dict, optional): Every group -> share of the batches (normalised);
            exclusive with ``group_weights``. Defaults to None.
        same_group_across_ranks (bool): All ranks draw the same group at each step.
            Defaults to False.
        aspect_ratio_grouping (bool): Also keep ``width < height`` and other images apart
            (reads ``dataset.get_data_info(idx)``). Defaults to False.
        seed (int, optional): Seed of the schedule. Defaults to ``sampler.seed``, else
            ``sync_random_seed()``.
        max_buffer (int, optional): Most indices one bucket holds (>= batch_size).
            Defaults to ``len(sampler)``.
    """

    def __init__(self,
                 sampler: Sampler,
                 batch_size: int,
                 drop_last: bool = False,
                 group_weights: Optional[Dict[GroupKey, float]] = None,
                 group_ratios: Optional[Dict[GroupKey, float]] = None,
                 same_group_across_ranks: bool = False,
                 aspect_ratio_grouping: bool = False,
                 seed: Optional[int] = None,
                 max_buffer: Optional[int] = None,
                 **kwargs: Any) -> None:
        reject_stock_keys(type(self), kwargs)
        owner = type(self).__name__
        if not isinstance(sampler, Sampler):
            raise TypeError(f'{owner}: sampler must be a torch Sampler, but got {sampler!r}')
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f'{owner}: batch_size must be an int > 0, but got {batch_size!r}')
        dataset = getattr(sampler, 'dataset', None)
        if dataset is None:
            raise TypeError(f'{owner}: the wrapped {type(sampler).__name__} has no `.dataset`; '
                            'wrap a sampler that keeps its dataset (e.g. DefaultSampler)')
        self._table = GroupTable(dataset, owner)
        self.sampler, self.dataset = sampler, dataset
        self.batch_size, self.drop_last = batch_size, bool(drop_last)
        self.same_group_across_ranks = bool(same_group_across_ranks)
        self.aspect_ratio_grouping = bool(aspect_ratio_grouping)
        if seed is None:
            seed = getattr(sampler, 'seed', None)
        self.seed = _check_seed(seed, owner)
        self.rank, _ = get_dist_info()
        if max_buffer is None:
            max_buffer = max(len(sampler), batch_size)
        if isinstance(max_buffer, bool) or not isinstance(max_buffer, int) or \
                max_buffer < batch_size:
            raise ValueError(f'{owner}: max_buffer must be an int >= batch_size ({batch_size}), '
                             f'but got {max_buffer!r}')
        self.max_buffer = max_buffer
        self.infinite = _is_infinite(sampler)
        self._epoch = 0
        self._group_aspects: Dict[Tuple[int, int], np.ndarray] = {}
        self.last_stats: Dict[str, int] = {}
        self._weights = self._ratios = None
        self._init_shares(group_weights, group_ratios)

    @property
    def epoch(self) -> int:
        """int: The wrapped sampler's epoch (mmengine's hooks set only that one)."""
        return int(getattr(self.sampler, 'epoch', self._epoch))

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch here and on the wrapped sampler.

        Args:
            epoch (int): Epoch number.
        """
        self._epoch = epoch
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)

    def _base_shares(self) -> np.ndarray:
        get = getattr(self.sampler, 'group_shares', None)
        if callable(get):
            known = get()
            base = np.array([known.get(int(g), 0.0) for g in self._table.ids])
            if base.sum() > 0:
                return base / base.sum()
        return super()._base_shares()

    def __len__(self) -> int:
        """Batches per epoch (per pass of ``len(sampler)`` indices when infinite)."""
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _schedule(self, rng: np.random.Generator, length: int) -> np.ndarray:
        shares = self._shares()
        exact = length * shares
        counts = np.floor(exact).astype(np.int64)
        rest = length - int(counts.sum())
        if rest > 0:
            frac = np.clip(exact - counts, 0, None)
            frac = frac + 1e-12 * (shares > 0)  # float error must not leave too few candidates
            extra = rng.choice(len(counts), size=rest, replace=False, p=frac / frac.sum())
            counts[extra] += 1
        return rng.permutation(np.repeat(np.arange(len(counts)), counts))

    def _aspect(self, idx: int) -> int:
        if not self.aspect_ratio_grouping:
            return 0
        info = self.dataset.get_data_info(idx)
        return 0 if info['width'] < info['height'] else 1

    def _group_pool(self, k: int, aspect: int) -> np.ndarray:
        """Members of group k with the given aspect (computed once, only when needed)."""
        members = self._table.members(k)
        if not self.aspect_ratio_grouping:
            return members
        if (k, aspect) not in self._group_aspects:
            flags = np.array([self._aspect(int(i)) for i in members])
            for a in (0, 1):
                self._group_aspects[(k, a)] = members[flags == a]
        pool = self._group_aspects[(k, aspect)]
        return pool if len(pool) else members

    def __iter__(self) -> Iterator[List[int]]:
        """Yield lists of indices, each of one group."""
        n, nb, bs = len(self.sampler), len(self), self.batch_size
        epoch, seed = self.epoch, self.seed % 2**63
        rng = np.random.default_rng([seed, epoch] if self.same_group_across_ranks
                                    else [seed, epoch, self.rank])
        fill_rng = np.random.default_rng([seed, epoch, self.rank, 1])
        aspects = (0, 1) if self.aspect_ratio_grouping else (0, )
        keys = [(k, a) for k in range(self._table.num_groups) for a in aspects]
        buckets = {key: deque() for key in keys}
        seen = {key: deque(maxlen=self.max_buffer) for key in keys}
        stats = dict(batches=0, recycled=0, skipped=0, dropped=0)
        self.last_stats = stats
        stream, pos = iter(self.sampler), self._table.pos
        exhausted = False
        step = 0
        while nb > 0 and (self.infinite or step < nb):
            for k in self._schedule(rng, nb).tolist():
                size = bs if self.infinite or self.drop_last or step < nb - 1 else n - step * bs
                own = [(k, a) for a in aspects]
                misses = 0
                while True:
                    best = max(own, key=lambda key: len(buckets[key]))
                    if len(buckets[best]) >= size or exhausted or misses >= self.max_buffer:
                        break
                    idx = next(stream, None)
                    if idx is None:
                        exhausted = True
                        continue
                    key = (int(pos[idx]), self._aspect(idx))
                    seen[key].append(idx)
                    misses = 0 if key[0] == k else misses + 1
                    if len(buckets[key]) < self.max_buffer:
                        buckets[key].append(idx)
                    else:
                        stats['skipped'] += 1
                batch = [buckets[best].popleft() for _ in range(min(size, len(buckets[best])))]
                if len(batch) < size:
                    stats['recycled'] += size - len(batch)
                    if not len(seen[best]):
                        best = max(own, key=lambda key: len(seen[key]))
                    pool = np.asarray(seen[best]) if len(seen[best]) else \
                        self._group_pool(k, best[1])
                    batch += pool[fill_rng.integers(len(pool), size=size - len(batch))].tolist()
                stats['batches'] += 1
                yield batch
                step += 1
                if not self.infinite and step >= nb:
                    break
        # what the epoch did not use: the buckets' rest and the stream's unread tail
        stats['dropped'] = sum(len(b) for b in buckets.values()) + sum(1 for _ in stream)
