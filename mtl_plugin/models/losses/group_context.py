"""Group context: the group of every sample of the current loss computation.

MMDetection / MMPose heads call their loss modules with tensors only, so a loss module
cannot see the data samples (and their ``metainfo['group_id']`` / ``['group_name']``).
The *group context* bridges that gap: whoever holds the data samples (the
:class:`GroupContextHook` for the whole batch, or a multi-head model for the subset of
samples one head sees) sets it, and the group-weighted losses read it.

The context holds, in batch order (the order of the samples in the tensors the head
builds), ``group_ids`` (an int64 tensor of shape ``(B,)``) and ``group_names`` (a list
of ``B`` strings, or ``None`` entries when a sample has no name).

It is plain module-level state: training runs a single thread per process (one process
per GPU under DDP), so no locking is needed.

API:

- :func:`set_group_context` / :func:`clear_group_context`: set / clear it directly;
  ``set_group_context`` returns the previous value so that it can be restored.
- :func:`group_context`: a context manager that sets it from a list of data samples
  (or from explicit ids) and restores the previous value on exit (nesting-safe).
- :func:`get_group_context`: the current value; raises :class:`GroupContextError`
  when nothing is set.
- :class:`GroupContextHook`: sets it from ``data_batch['data_samples']`` before each
  training iteration and restores the previous value after it.
"""
import math
from contextlib import contextmanager
from numbers import Integral, Real
from typing import (Any, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence,
                    Union)

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch import Tensor

__all__ = [
    'GroupContext', 'GroupContextError', 'GroupContextHook', 'clear_group_context',
    'get_group_context', 'group_context', 'group_context_from_samples',
    'has_group_context', 'parse_group_id_weight', 'sample_group_weights',
    'set_group_context'
]

_MISSING_HINT = ("add dict(type='GroupContextHook') to custom_hooks, or use "
                 'MultiHeadDetector/MultiHeadPoseEstimator which set it per head')


class GroupContextError(RuntimeError):
    """Raised when a group-weighted loss finds no (or an unusable) group context."""


class GroupContext(NamedTuple):
    """The groups of the samples of one loss computation, in batch order.

    Attributes:
        group_ids (Tensor): int64 tensor of shape ``(B,)``.
        group_names (list[str | None]): ``B`` group names (``None`` where unknown).
    """
    group_ids: Tensor
    group_names: List[Optional[str]]

    def __len__(self) -> int:  # type: ignore[override]
        return int(self.group_ids.numel())

    @property
    def batch_size(self) -> int:
        """Number of samples ``B``."""
        return int(self.group_ids.numel())


_current: Optional[GroupContext] = None


def _make_context(group_ids: Union[Tensor, Sequence[int]],
                  group_names: Optional[Sequence[Optional[str]]] = None) -> GroupContext:
    if isinstance(group_ids, Tensor):
        ids = group_ids.detach().to(device='cpu', dtype=torch.long).reshape(-1)
        if group_ids.dim() > 1:
            raise ValueError(f'group_ids must have shape (B,), got {tuple(group_ids.shape)}')
    else:
        ids_list = list(group_ids)
        for i, g in enumerate(ids_list):
            if isinstance(g, bool) or not isinstance(g, Integral):
                raise TypeError(f'group_ids[{i}] = {g!r} is not an int')
        ids = torch.tensor([int(g) for g in ids_list], dtype=torch.long)
    if group_names is None:
        names: List[Optional[str]] = [None] * int(ids.numel())
    else:
        names = list(group_names)
        if len(names) != ids.numel():
            raise ValueError(f'{len(names)} group_names for {ids.numel()} group_ids; '
                             'give one name per sample, in batch order')
        for i, n in enumerate(names):
            if n is not None and not isinstance(n, str):
                raise TypeError(f'group_names[{i}] = {n!r} is not a str (or None)')
    return GroupContext(ids, names)


def set_group_context(group_ids: Union[Tensor, Sequence[int], None],
                      group_names: Optional[Sequence[Optional[str]]] = None
                      ) -> Optional[GroupContext]:
    """Set the group context; returns the previous one (pass it back to restore).

    Args:
        group_ids (Tensor | Sequence[int] | None): One group id per sample, in batch
            order, shape ``(B,)``. ``None`` clears the context.
        group_names (Sequence[str] | None): One group name per sample (optional; only
            needed by losses whose ``group_id_weight`` is keyed by name).

    Returns:
        GroupContext | None: The previous context.
    """
    global _current
    previous = _current
    if group_ids is None:
        if group_names is not None:
            raise ValueError('group_names given without group_ids')
        _current = None
    elif isinstance(group_ids, GroupContext):
        _current = group_ids
    else:
        _current = _make_context(group_ids, group_names)
    return previous


def _restore(previous: Optional[GroupContext]) -> None:
    global _current
    _current = previous


def clear_group_context() -> Optional[GroupContext]:
    """Clear the group context; returns the previous one."""
    return set_group_context(None)


def has_group_context() -> bool:
    """Whether a group context is set."""
    return _current is not None


def get_group_context() -> GroupContext:
    """The current group context.

    Raises:
        GroupContextError: If nothing is set.
    """
    if _current is None:
        raise GroupContextError(
            'No group context is set: a group-weighted loss needs the group of every '
            f'sample of the batch; {_MISSING_HINT}. (In a unit test, wrap the loss call '
            'in `with group_context(data_samples):` or call set_group_context(...).)')
    return _current


def _sample_group(sample: Any, index: int):
    metainfo = getattr(sample, 'metainfo', None)
    if metainfo is None and isinstance(sample, dict):
        metainfo = sample.get('metainfo', sample)
    if metainfo is None or 'group_id' not in metainfo:
        raise GroupContextError(
            f'data sample {index} has no metainfo["group_id"]; group-weighted losses need '
            'samples from MultiSourceDataset (which sets group_id / group_name) or '
            "data_samples with set_metainfo(dict(group_id=..., group_name=...))")
    return metainfo['group_id'], metainfo.get('group_name')


def group_context_from_samples(data_samples: Sequence[Any]) -> GroupContext:
    """Build a :class:`GroupContext` from data samples (``metainfo['group_id']``,
    ``metainfo['group_name']``), in the order given."""
    if data_samples is None:
        raise GroupContextError('data_samples is None; cannot build a group context')
    ids, names = [], []
    for i, sample in enumerate(data_samples):
        gid, name = _sample_group(sample, i)
        if isinstance(gid, Tensor):
            gid = int(gid.item())
        ids.append(gid)
        names.append(name)
    return _make_context(ids, names)


@contextmanager
def group_context(data_samples: Optional[Sequence[Any]] = None,
                  *,
                  group_ids: Union[Tensor, Sequence[int], None] = None,
                  group_names: Optional[Sequence[Optional[str]]] = None
                  ) -> Iterator[GroupContext]:
    """Set the group context for the duration of a ``with`` block.

    Either ``data_samples`` (read ``metainfo['group_id']`` / ``['group_name']``) or
    ``group_ids`` (+ optional ``group_names``). On exit (also on an exception) the
    previous context is restored, so blocks nest::

        with group_context(batch_data_samples):        # whole batch
            with group_context(head_samples):          # one head's subset
                losses = head.loss(feats, head_samples)
            # whole-batch context again here

    Yields:
        GroupContext: The context set.
    """
    if (data_samples is None) == (group_ids is None):
        raise ValueError('give exactly one of data_samples or group_ids')
    if data_samples is not None:
        if group_names is not None:
            raise ValueError('group_names only goes with group_ids')
        ctx = group_context_from_samples(data_samples)
    else:
        ctx = _make_context(group_ids, group_names)
    previous = set_group_context(ctx)
    try:
        yield ctx
    finally:
        _restore(previous)


@HOOKS.register_module()
class GroupContextHook(Hook):
    """Set the group context from each training batch.

    ``before_train_iter`` sets it from ``data_batch['data_samples']`` (the order of the
    samples is the batch order the model and its heads use); ``after_train_iter``
    restores the value it replaced (normally none). Add it with::

        custom_hooks = [dict(type='GroupContextHook')]

    Models that split a batch between heads (``MultiHeadDetector`` /
    ``MultiHeadPoseEstimator``) set a nested context for each head's subset, which
    takes precedence inside the head's loss computation.
    """

    priority = 'NORMAL'

    def __init__(self) -> None:
        self._previous: Optional[GroupContext] = None
        self._active = False

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if not isinstance(data_batch, dict) or data_batch.get('data_samples') is None:
            raise GroupContextError(
                'GroupContextHook needs data_batch["data_samples"] (a dict batch as built '
                f"by pseudo_collate); got {type(data_batch).__name__}")
        ctx = group_context_from_samples(data_batch['data_samples'])
        if self._active:  # a previous iteration did not finish: do not stack up
            _restore(self._previous)
        self._previous = set_group_context(ctx)
        self._active = True

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if self._active:
            _restore(self._previous)
        self._previous = None
        self._active = False


# --------------------------------------------------------------------------------------
# group_id_weight: validation and per-sample weights
# --------------------------------------------------------------------------------------
GroupKey = Union[int, str]


def parse_group_id_weight(group_id_weight: Optional[Mapping[Any, Any]],
                          owner: str = 'loss') -> Dict[GroupKey, float]:
    """Validate ``group_id_weight`` and return it as a plain ``{int|str: float}`` dict.

    Keys are int group ids (``metainfo['group_id']``) or str group names
    (``metainfo['group_name']``); both kinds may be mixed. Values are finite floats
    > 0. ``None`` means no weighting (an empty dict).

    Raises:
        TypeError / ValueError: naming the offending key / value and how to fix it.
    """
    if group_id_weight is None:
        return {}
    if not isinstance(group_id_weight, Mapping):
        raise TypeError(
            f'{owner}: group_id_weight must be a dict {{group_id (int) or group_name '
            f'(str): weight (float)}}, e.g. {{1: 2.0}}; got '
            f'{type(group_id_weight).__name__} {group_id_weight!r}')
    parsed: Dict[GroupKey, float] = {}
    for key, value in group_id_weight.items():
        if isinstance(key, bool) or not isinstance(key, (Integral, str)):
            raise TypeError(
                f'{owner}: group_id_weight key {key!r} ({type(key).__name__}) is neither '
                'an int group id nor a str group name; use e.g. {1: 2.0} or '
                "{'hard': 2.0}")
        if isinstance(value, bool) or not isinstance(value, Real):
            raise TypeError(
                f'{owner}: group_id_weight[{key!r}] = {value!r} is not a number; give a '
                'finite float > 0, e.g. 2.0')
        value = float(value)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(
                f'{owner}: group_id_weight[{key!r}] = {value!r} must be finite and > 0 '
                '(use 1.0 for the default weight, or a small positive value such as '
                '0.1 to down-weight a group)')
        parsed[int(key) if isinstance(key, Integral) else key] = value
    return parsed


def sample_group_weights(group_id_weight: Mapping[GroupKey, float],
                         normalize: bool,
                         batch_size: Optional[int] = None,
                         device: Union[torch.device, str, None] = None,
                         dtype: torch.dtype = torch.float32,
                         owner: str = 'loss') -> Tensor:
    """Per-sample weights ``(B,)`` for the samples of the current group context.

    For sample ``b`` with group id ``g_b`` and name ``n_b``:
    ``a_b = group_id_weight[g_b]`` if the int id is a key, else
    ``group_id_weight[n_b]`` if the name is a key, else ``1.0`` (a group that the
    mapping does not list keeps weight 1.0). An id key and a name key that both match a
    sample must agree.

    Returns ``w_b = a_b / mean(a)`` (mean over the ``B`` samples of the context) when
    ``normalize`` is true (the weights then average 1, so a batch of one group gives
    exactly the unweighted loss), else ``w_b = a_b``.

    Args:
        batch_size: If given, the context must hold exactly this many samples.

    Raises:
        GroupContextError: No context, or its size differs from ``batch_size``.
    """
    ctx = get_group_context()
    if batch_size is not None and ctx.batch_size != batch_size:
        raise GroupContextError(
            f'{owner}: the group context holds {ctx.batch_size} samples but the loss '
            f'got a batch of {batch_size}; the context must hold the groups of exactly '
            'the samples this loss sees, in batch order (a multi-head model must set it '
            "per head with `with group_context(head_data_samples):`)")
    weights = []
    for b, (gid, name) in enumerate(zip(ctx.group_ids.tolist(), ctx.group_names)):
        by_id = group_id_weight.get(int(gid))
        by_name = group_id_weight.get(name) if name is not None else None
        if by_id is not None and by_name is not None and by_id != by_name:
            raise ValueError(
                f'{owner}: sample {b} (group_id={gid}, group_name={name!r}) matches both '
                f'group_id_weight[{gid}] = {by_id} and group_id_weight[{name!r}] = '
                f'{by_name}; key each group once (by id or by name)')
        weights.append(by_id if by_id is not None else
                       (by_name if by_name is not None else 1.0))
    w = torch.tensor(weights, dtype=dtype, device=device)
    if normalize and w.numel() > 0:
        w = w / w.mean()
    return w
