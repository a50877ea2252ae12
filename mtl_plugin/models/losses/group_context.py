"""Group context: the group of every sample of the current loss computation.

MMDetection / MMPose heads call their loss modules with tensors only, so a loss module
cannot see the data samples (and their ``metainfo['group_id']`` / ``['group_name']`` /
``['groups']``). The *group context* bridges that gap: whoever computes a loss with the
data samples at hand sets it (:class:`~mtl_plugin.models.GroupAwareModel` around a stock
model's ``loss()``, or a multi-head model for the subset of samples one head sees) and
the group-weighted losses read it.

The context holds, in batch order (the order of the samples in the tensors the head
builds), ``group_ids`` (an int64 tensor of shape ``(B,)``), ``group_names`` (a list of
``B`` strings, or ``None`` entries when a sample has no name) and ``groups`` (the
:class:`~mtl_plugin.groups.Groups` of the whole dataset, from the samples'
``metainfo['groups']``; ``None`` when the samples do not carry it), against which the
losses resolve their ``group_id_weight`` keys, and ``group_sizes`` (samples per group id
in the whole dataset, from ``metainfo['group_sizes']``), the reference of normalised
weights (see :func:`sample_group_weights`).

It is a :class:`contextvars.ContextVar`, written only around a loss computation, so it
never leaks from one iteration (or thread / task) to another.

API:

- :func:`group_context`: a context manager that sets it from a list of data samples
  (or from explicit ids) and restores the previous value on exit (nesting-safe).
- :func:`set_group_context` / :func:`clear_group_context`: set / clear it directly;
  ``set_group_context`` returns the previous value so that it can be restored.
- :func:`get_group_context`: the current value; raises :class:`GroupContextError`
  when nothing is set.
- :class:`GroupContextHook`: removed (a deprecation shim that tells the fix).
"""
import contextvars
from contextlib import contextmanager
from numbers import Integral
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Union

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch import Tensor

from ...groups import Groups, GroupKeyed, positive_weight

__all__ = [
    'GroupContext', 'GroupContextError', 'GroupContextHook', 'GroupWeightedMixin',
    'clear_group_context',
    'get_group_context', 'group_context', 'group_context_from_samples',
    'has_group_context', 'parse_group_id_weight', 'sample_group_weights',
    'set_group_context'
]

_FIX = "model=dict(type='GroupAwareModel', model=dict(type=...))"
_MISSING_HINT = (f'wrap the model: {_FIX} (it sets the context around loss()), or use '
                 'MultiHeadDetector/MultiHeadPoseEstimator which set it per head')


class GroupContextError(RuntimeError):
    """Raised when a group-weighted loss finds no (or an unusable) group context."""


class GroupContext(NamedTuple):
    """The groups of the samples of one loss computation, in batch order.

    Attributes:
        group_ids (Tensor): int64 tensor of shape ``(B,)``.
        group_names (list[str | None]): ``B`` group names (``None`` where unknown).
        groups (Groups | None): The groups of the whole dataset (from the samples'
            ``metainfo['groups']``), None when unknown.
        group_sizes (dict[int, int] | None): Samples per group id in the whole dataset
            (from the samples' ``metainfo['group_sizes']``), None when unknown.
    """
    group_ids: Tensor
    group_names: List[Optional[str]]
    groups: Optional[Groups] = None
    group_sizes: Optional[Dict[int, int]] = None

    def __len__(self) -> int:  # type: ignore[override]
        return int(self.group_ids.numel())

    @property
    def batch_size(self) -> int:
        """Number of samples ``B``."""
        return int(self.group_ids.numel())


_current: contextvars.ContextVar = contextvars.ContextVar('mtl_plugin_group_context',
                                                          default=None)


def _as_groups(groups: Any) -> Optional[Groups]:
    if groups is None or isinstance(groups, Groups):
        return groups
    if isinstance(groups, Mapping):
        return Groups.from_dict(groups)
    raise TypeError(f'groups must be a Groups or a dict {{name: id}}, got {groups!r}')


def _as_sizes(sizes: Optional[Mapping[Any, int]],
              groups: Optional[Groups]) -> Optional[Dict[int, int]]:
    """Group sizes keyed by id (names resolved through ``groups``)."""
    if not sizes:
        return None
    out = {}
    for key, n in sizes.items():
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 0:
            raise ValueError(f'group_sizes[{key!r}] must be an int >= 0, but got {n!r}')
        if isinstance(key, Integral):
            out[int(key)] = int(n)
        elif groups is not None:
            out[groups.resolve(key, 'group_sizes', 'group context')] = int(n)
        else:
            raise ValueError(f'group_sizes keyed by name ({key!r}) need the groups too')
    return out


def _make_context(group_ids: Union[Tensor, Sequence[int]],
                  group_names: Optional[Sequence[Optional[str]]] = None,
                  groups: Any = None,
                  group_sizes: Optional[Mapping[Any, int]] = None) -> GroupContext:
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
    groups = _as_groups(groups)
    return GroupContext(ids, names, groups, _as_sizes(group_sizes, groups))


def set_group_context(group_ids: Union[Tensor, Sequence[int], GroupContext, None],
                      group_names: Optional[Sequence[Optional[str]]] = None,
                      groups: Any = None) -> Optional[GroupContext]:
    """Set the group context; returns the previous one (pass it back to restore).

    Prefer :func:`group_context` (a ``with`` block that always restores).

    Args:
        group_ids (Tensor | Sequence[int] | GroupContext | None): One group id per sample,
            in batch order, shape ``(B,)``. ``None`` clears the context.
        group_names (Sequence[str] | None): One group name per sample (optional).
        groups (Groups | dict | None): The dataset's groups (optional; with them the
            losses check their ``group_id_weight`` keys).

    Returns:
        GroupContext | None: The previous context.
    """
    previous = _current.get()
    if group_ids is None:
        if group_names is not None:
            raise ValueError('group_names given without group_ids')
        _current.set(None)
    elif isinstance(group_ids, GroupContext):
        _current.set(group_ids)
    else:
        _current.set(_make_context(group_ids, group_names, groups))
    return previous


def clear_group_context() -> Optional[GroupContext]:
    """Clear the group context; returns the previous one."""
    return set_group_context(None)


def has_group_context() -> bool:
    """Whether a group context is set."""
    return _current.get() is not None


def get_group_context() -> GroupContext:
    """The current group context.

    Raises:
        GroupContextError: If nothing is set.
    """
    ctx = _current.get()
    if ctx is None:
        raise GroupContextError(
            'No group context is set: a group-weighted loss needs the group of every '
            f'sample of the batch; {_MISSING_HINT}. (In a unit test, wrap the loss call '
            'in `with group_context(data_samples):`.)')
    return ctx


def _metainfo(sample: Any) -> Optional[Mapping]:
    metainfo = getattr(sample, 'metainfo', None)
    if metainfo is None and isinstance(sample, dict):
        metainfo = sample.get('metainfo', sample)
    return metainfo


def _sample_group(sample: Any, index: int):
    metainfo = _metainfo(sample)
    if metainfo is None or 'group_id' not in metainfo:
        raise GroupContextError(
            f'data sample {index} has no metainfo["group_id"]; group-weighted losses need '
            'samples from MultiSourceDataset (which sets group_id / group_name) or '
            "data_samples with set_metainfo(dict(group_id=..., group_name=...))")
    return (metainfo['group_id'], metainfo.get('group_name'), metainfo.get('groups'),
            metainfo.get('group_sizes'))


def group_context_from_samples(data_samples: Sequence[Any]) -> GroupContext:
    """Build a :class:`GroupContext` from data samples (``metainfo['group_id']``,
    ``['group_name']`` and ``['groups']``), in the order given."""
    if data_samples is None:
        raise GroupContextError('data_samples is None; cannot build a group context')
    ids, names, groups, sizes = [], [], None, None
    for i, sample in enumerate(data_samples):
        gid, name, sample_groups, sample_sizes = _sample_group(sample, i)
        if isinstance(gid, Tensor):
            gid = int(gid.item())
        ids.append(gid)
        names.append(name)
        if groups is None and sample_groups:
            groups = _as_groups(sample_groups)
        sizes = sizes or sample_sizes
    return _make_context(ids, names, groups, sizes)


@contextmanager
def group_context(data_samples: Optional[Sequence[Any]] = None,
                  *,
                  group_ids: Union[Tensor, Sequence[int], None] = None,
                  group_names: Optional[Sequence[Optional[str]]] = None,
                  groups: Any = None,
                  group_sizes: Optional[Mapping[Any, int]] = None) -> Iterator[GroupContext]:
    """Set the group context for the duration of a ``with`` block.

    Either ``data_samples`` (read ``metainfo['group_id']`` / ``['group_name']`` /
    ``['groups']`` / ``['group_sizes']``) or ``group_ids`` (+ optional ``group_names``,
    ``groups`` and ``group_sizes``, samples per group id or name). On exit
    (also on an exception) the previous context is restored, so blocks nest::

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
        if group_names is not None or groups is not None or group_sizes is not None:
            raise ValueError('group_names / groups / group_sizes only go with group_ids')
        ctx = group_context_from_samples(data_samples)
    else:
        ctx = _make_context(group_ids, group_names, groups, group_sizes)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


@HOOKS.register_module()
class GroupContextHook(Hook):
    """Removed: the group context is now set around the loss computation by the model.

    Kept registered so that an old config fails with the fix instead of an unknown type.

    Raises:
        TypeError: Always, at construction, naming the replacement.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            'GroupContextHook was removed: the group context is now set around the loss '
            'computation by the model. Remove dict(type=\'GroupContextHook\') from '
            f'custom_hooks and wrap the stock model instead: {_FIX} (multi-head models set '
            'it per head and need nothing)')


# --------------------------------------------------------------------------------------
# group_id_weight: validation and per-sample weights
# --------------------------------------------------------------------------------------
def parse_group_id_weight(group_id_weight: Optional[Mapping[Any, Any]],
                          owner: str = 'loss') -> GroupKeyed:
    """Parse ``group_id_weight`` (``{group id | group name: weight > 0}``) at build time.

    Keys go through :func:`~mtl_plugin.groups.normalize_group_key` (``'1'`` is id 1);
    values must be finite floats > 0. ``None`` means no weighting (empty).

    Returns:
        GroupKeyed: The parsed setting; resolved against the groups on the first call.
    """
    return GroupKeyed(group_id_weight, 'group_id_weight', owner, positive_weight)


def _legacy_weights(weights: Mapping, ctx: GroupContext, owner: str) -> List[float]:
    """Per-sample weights when the context has no Groups: match ids, then names."""
    out = []
    for b, (gid, name) in enumerate(zip(ctx.group_ids.tolist(), ctx.group_names)):
        by_id = weights.get(int(gid))
        by_name = weights.get(name) if name is not None else None
        if by_id is not None and by_name is not None and by_id != by_name:
            raise ValueError(
                f'{owner}: sample {b} (group_id={gid}, group_name={name!r}) matches both '
                f'group_id_weight[{gid}] = {by_id} and group_id_weight[{name!r}] = '
                f'{by_name}; key each group once (by id or by name)')
        out.append(by_id if by_id is not None else (by_name if by_name is not None else 1.0))
    return out


def sample_group_weights(group_id_weight: Union[GroupKeyed, Mapping[Any, float]],
                         normalize: bool,
                         batch_size: Optional[int] = None,
                         device: Union[torch.device, str, None] = None,
                         dtype: torch.dtype = torch.float32,
                         owner: str = 'loss') -> Tensor:
    """Per-sample weights ``(B,)`` for the samples of the current group context.

    The keys are resolved against the context's ``groups`` (the dataset's, carried by
    the samples' metainfo): an unknown id or name raises
    :class:`~mtl_plugin.groups.UnknownGroupError` on the first call, before any update.
    Sample ``b`` of group ``g_b`` gets ``a_b = group_id_weight[g_b]``, or ``1.0`` for a
    group the mapping does not list. (A context without ``groups``, built from bare ids
    in a unit test, matches the keys to the samples' ids, then names.)

    Returns ``w_b = a_b / ref`` when ``normalize`` is true, else ``w_b = a_b``. The
    reference is a property of the dataset, never of the batch (see
    :func:`weight_reference`): the mean weight of the dataset's samples. So a sample of
    weight ``w`` counts ``w`` times as much as a weight-1 sample in every batch, whichever
    head it trains: a single-group batch of weight-2 samples weighs twice the same batch
    at weight 1, and the weights average 1 over the dataset (the loss scale is kept).

    Args:
        batch_size: If given, the context must hold exactly this many samples.

    Raises:
        GroupContextError: No context, or its size differs from ``batch_size``.
        UnknownGroupError: A key the dataset's groups do not have.
    """
    if not isinstance(group_id_weight, GroupKeyed):
        group_id_weight = parse_group_id_weight(group_id_weight, owner)
    ctx = get_group_context()
    if batch_size is not None and ctx.batch_size != batch_size:
        raise GroupContextError(
            f'{owner}: the group context holds {ctx.batch_size} samples but the loss '
            f'got a batch of {batch_size}; the context must hold the groups of exactly '
            'the samples this loss sees, in batch order (a multi-head model must set it '
            "per head with `with group_context(head_data_samples):`)")
    if ctx.groups is not None:
        by_id, _ = group_id_weight.bind(ctx.groups)
        weights = [by_id.get(int(g), 1.0) for g in ctx.group_ids.tolist()]
    else:
        weights = _legacy_weights(group_id_weight.as_dict(), ctx, owner)
    w = torch.tensor(weights, dtype=dtype, device=device)
    if normalize and w.numel() > 0:
        w = w / weight_reference(group_id_weight, ctx, owner)
    return w


def weight_reference(group_id_weight: GroupKeyed, ctx: GroupContext, owner: str) -> float:
    """The dataset-level reference of normalised group weights.

    ``ref = sum_g n_g * a_g / sum_g n_g`` over the dataset's groups ``g`` (``n_g`` its
    samples, ``a_g`` its weight, 1.0 when unlisted): the mean weight of a dataset sample.
    Without the sizes (a context from bare ids with ``groups`` only) every group counts
    once: ``ref = mean_g a_g``.

    Raises:
        GroupContextError: The context holds no groups (nothing to refer to).
    """
    if ctx.groups is None:
        raise GroupContextError(
            f'{owner}: normalize=True divides by the mean weight of the dataset, but the '
            "group context does not hold the dataset's groups (samples of MultiSourceDataset "
            "carry them in metainfo['groups'] / ['group_sizes']); pass groups= (and "
            'group_sizes=) to group_context(), or set normalize=False for raw weights')
    by_id, _ = group_id_weight.bind(ctx.groups)
    ids = list(ctx.groups.ids)
    sizes = ctx.group_sizes or {}
    counts = [sizes.get(g, 0) for g in ids] if sizes else [1] * len(ids)
    if sum(counts) == 0:
        counts = [1] * len(ids)
    return sum(n * by_id.get(g, 1.0) for g, n in zip(ids, counts)) / sum(counts)


class GroupWeightedMixin:
    """``group_id_weight`` of the group-weighted losses: parsed at construction (so
    ``'1'`` and ``1`` are the same key), resolved against the context's groups on every
    call (cached), and replaceable with :meth:`set_group_id_weight` (what
    ``CurriculumLearningHook`` calls for ``...group_id_weight.<group>`` paths)."""

    _group_keyed: GroupKeyed

    def set_group_id_weight(self, group_id_weight: Optional[Mapping[Any, Any]]) -> None:
        """Replace the weights (validated; unknown groups fail on the next call).

        Args:
            group_id_weight (dict | None): Group id or name -> finite weight > 0.
        """
        self.__dict__['_group_keyed'] = parse_group_id_weight(group_id_weight,
                                                              type(self).__name__)

    @property
    def group_id_weight(self) -> dict:
        """dict: The weights, keys normalised (``'1'`` became ``1``)."""
        return self.__dict__['_group_keyed'].as_dict()

    @group_id_weight.setter
    def group_id_weight(self, value: Optional[Mapping[Any, Any]]) -> None:
        self.set_group_id_weight(value)

    def group_sample_weights(self, batch_size: Optional[int] = None,
                             device: Union[torch.device, str, None] = None,
                             dtype: torch.dtype = torch.float32) -> Tensor:
        """(B,) weights of the samples of the group context (see
        :func:`sample_group_weights`)."""
        return sample_group_weights(self.__dict__['_group_keyed'], self.normalize,
                                    batch_size=batch_size, device=device, dtype=dtype,
                                    owner=type(self).__name__)
