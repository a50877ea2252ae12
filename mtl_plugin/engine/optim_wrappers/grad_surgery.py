"""``GradSurgeryOptimWrapper``: PCGrad, GradVac, CAGrad (any torchjd aggregator).

torchjd is imported when an aggregator is first built, so that ``import mtl_plugin`` (and
every run without gradient surgery) does not load it.
"""
import functools
import importlib
import inspect
import math
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Set, Union

import torch
from mmengine.dist import all_gather_object, all_reduce, get_world_size, sync_random_seed
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from mmengine.runner.amp import autocast as mm_autocast
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim import Optimizer

from ...task_losses import task_losses_of
from .task_gradients import (CHUNK_BYTES, OWN_BYTES, Grads, add_grads_, backward_plan, combine,
                             gramian, pack, sum_)

if TYPE_CHECKING:  # pragma: no cover
    import torchjd.aggregation as tjd

__all__ = ['AGGREGATORS', 'GradSurgeryOptimWrapper', 'build_aggregator']



def _tjd() -> Any:
    """``torchjd.aggregation``, imported on first use."""
    return importlib.import_module('torchjd.aggregation')


@functools.lru_cache(maxsize=1)
def aggregators() -> Dict[str, type]:
    """torchjd 0.18 aggregators usable by name: ``aggregator=dict(type=<name>, **kwargs)``."""
    tjd = _tjd()
    bases = (tjd.Aggregator, tjd.WeightedAggregator, tjd.GramianWeightedAggregator)
    return {name: getattr(tjd, name) for name in tjd.__all__
            if inspect.isclass(getattr(tjd, name)) and issubclass(getattr(tjd, name),
                                                                   tjd.Aggregator)
            and getattr(tjd, name) not in bases}


def __getattr__(name: str) -> Any:
    if name == 'AGGREGATORS':  # the table, built (and torchjd imported) when first read
        return aggregators()
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')

_NO_TASK_LOSSES = (
    'GradSurgeryOptimWrapper needs per-task losses (a MultiTaskLoss from the model\'s '
    'parse_losses, or update_params(loss, task_losses=...)): give the model '
    'loss_weighting=dict(type=\'EqualWeighting\'), or wrap a stock model with '
    'type=\'MultiTaskModel\'')



def build_aggregator(cfg: Union[dict, 'tjd.Aggregator']) -> 'tjd.Aggregator':
    """Build a torchjd aggregator from ``dict(type=<class name>, **kwargs)``.

    Args:
        cfg (dict | Aggregator): The config, e.g. ``dict(type='CAGrad', c=0.4)``, or an
            already built aggregator.

    Returns:
        Aggregator: Maps a ``(T, n)`` matrix of task gradients to an ``(n,)`` vector.
    """
    if isinstance(cfg, _tjd().Aggregator):
        return cfg
    if not isinstance(cfg, dict) or not isinstance(cfg.get('type'), str):
        raise TypeError("aggregator must be a dict like dict(type='PCGrad') or a torchjd "
                        f'Aggregator, but got {cfg!r}')
    kwargs = dict(cfg)
    name = kwargs.pop('type')
    table = aggregators()
    if name not in table:
        raise ValueError(f'unknown aggregator {name!r}: available torchjd aggregators are '
                         f'{sorted(table)}')
    try:
        return table[name](**kwargs)
    except TypeError as err:  # missing / unexpected kwargs, e.g. CAGrad without c
        raise TypeError(f'cannot build aggregator {name} from {cfg!r}: {err}') from err


@OPTIM_WRAPPERS.register_module()
class GradSurgeryOptimWrapper(OptimWrapper):
    """Gradient surgery on the shared parameters of a multi-task model.

    :meth:`update_params` receives one loss per task explicitly: the total is a
    :class:`~mtl_plugin.task_losses.MultiTaskLoss` (what the multi-task models'
    ``parse_losses`` return, so ``BaseModel.train_step`` and
    ``MMDistributedDataParallel.train_step`` hand it over unchanged) or the terms come as
    ``task_losses=`` (an ordered ``{task: scalar loss}`` summing to the total).
    For each task ``t`` with a graph, ``g_t = d(L_t / accumulation factor) / d params`` is
    computed with :func:`torch.autograd.grad` over the optimizer's trainable parameters
    (one backward pass per task) and added in place into that task's buffer (the tensors
    autograd returned: no copy). Tasks whose graph overlaps another's (a whole-batch task
    such as the dataset head) run first, and each graph is freed by its own backward unless
    a task still to run shares it: with ``MultiHeadDetector(trunk_per_head=True)`` each
    head's backward frees its own sub-batch's graph. At an update step:

    * the *shared* parameters (those that received a gradient from >= 2 tasks in this
      window, or those under the ``shared`` name prefixes) get the aggregator's output on
      the ``(T, n_shared)`` matrix of task gradients, in the aggregator's own scale
      (PCGrad and GradVac sum the modified rows, CAGrad starts from their mean). For a
      Gramian-weighted aggregator (PCGrad, GradVac, CAGrad, UPGrad, MGDA, ...) that matrix
      is never stacked: its Gramian is summed block by block (parameters of at least
      ``own_bytes`` by dot products of the task tensors, the smaller ones packed into
      matrices of at most ``chunk_bytes``), the aggregator's weighting maps it to the rows'
      weights, and ``sum_t w_t g_t`` is written in place into one task's tensor, which
      becomes ``.grad``. Small shared gradients (one packed matrix) give exactly torchjd's
      result on the stacked matrix; large ones differ by float rounding in the Gramian
      (float64 sums of float32 blocks). Other aggregators get the stacked matrix;
    * every other parameter gets ``sum_t g_t``: task-specific parameters keep exactly their
      own task's gradient (so do the learnt loss-weighting parameters, e.g.
      ``UncertaintyWeighting.log_vars``: each task reaches only its own entry, so they
      are per-task, never shared, whatever ``shared`` says), and a parameter no task
      reached keeps ``.grad = None`` (so idle heads stay untouched, as
      :class:`HeadIsolationHook` expects);
    * then the usual :meth:`step` (with ``clip_grad``) and :meth:`zero_grad`.

    What is reduced, and when, under DDP (``MMDistributedDataParallel``): the model runs
    every micro-step inside ``model.no_sync()``, so DDP's reducer never all-reduces. At an
    update step only, over the DDP process group, in this order:
    (1) ``all_gather_object`` of the task names seen on each rank in the window;
    (2) one ``all_reduce(max)`` of the ``(T, P)`` which-task-reached-which-parameter flags;
    (3) per task, one ``all_reduce(mean)`` of its flattened accumulated gradient over the
    parameters it reached on any rank (zeros where a rank did not reach them): the average
    over ranks, as DDP would compute. Aggregation and the parameter update then run on
    identical inputs on every rank; the aggregator's RNG is seeded identically on all ranks
    (a seed broadcast once, plus the update count), so randomised ones (PCGrad's task order
    with T >= 3) stay in lockstep. Nothing is reduced on accumulation-only micro-steps.

    Mixed precision: MMEngine 0.10.7's ``AmpOptimWrapper`` asserts a GPU (NPU, MLU, MUSA)
    in its constructor, so it cannot run on CPU. Instead, ``autocast=dict(dtype='bfloat16')``
    enters :func:`mmengine.runner.amp.autocast` around the forward. Unlike
    ``AmpOptimWrapper`` there is no loss scaler, so float16 is refused (use bfloat16).

    A model with a single task is refused. A batch may hold fewer tasks than the model
    (routed heads): tasks are those seen so far plus the model's ``head_modules()``.

    Notes: only :meth:`update_params` performs surgery (a direct :meth:`backward` is the
    plain one). A stateful aggregator (GradVac's EMA) sees its rows in the tasks' order; it
    restarts when the number of tasks present in an update changes, and on resume.

    Args:
        optimizer (Optimizer): The optimizer.
        aggregator (dict | Aggregator): ``dict(type=<torchjd aggregator class>, **kwargs)``,
            e.g. ``dict(type='PCGrad')``, ``dict(type='GradVac', beta=0.5)`` or
            ``dict(type='CAGrad', c=0.4)``. Defaults to ``dict(type='PCGrad')``.
        shared (Sequence[str], optional): Name prefixes of the shared parameters, e.g.
            ``['backbone', 'neck']``. Defaults to None: parameters reached by >= 2 tasks.
        autocast (dict, optional): Kwargs of :func:`mmengine.runner.amp.autocast`, e.g.
            ``dict(dtype='bfloat16')``. Defaults to None (full precision).
        **kwargs: ``accumulative_counts`` and ``clip_grad`` of :class:`OptimWrapper`.
    """

    chunk_bytes = CHUNK_BYTES  # packed matrices of small parameters' gradients (16 MiB)
    own_bytes = OWN_BYTES  # parameters from this size keep their task tensors (1 MiB)

    def __init__(self,
                 optimizer: Optimizer,
                 aggregator: Union[dict, 'tjd.Aggregator', None] = None,
                 shared: Optional[Sequence[str]] = None,
                 autocast: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(optimizer=optimizer, **kwargs)
        self.aggregator = build_aggregator(dict(type='PCGrad') if aggregator is None
                                           else aggregator)
        if shared is not None and (isinstance(shared, str) or not shared or not all(
                isinstance(s, str) and s for s in shared)):
            raise TypeError('shared must be a non-empty list of parameter name prefixes, '
                            f"e.g. ['backbone', 'neck'], but got {shared!r}")
        self.shared = None if shared is None else tuple(s.rstrip('.') for s in shared)
        self.autocast_cfg = self._check_autocast(autocast)
        self.params: List[nn.Parameter] = []
        seen: Set[int] = set()
        for group in optimizer.param_groups:
            for p in group['params']:
                if p.requires_grad and id(p) not in seen:
                    seen.add(id(p))
                    self.params.append(p)
        self._model: Optional[nn.Module] = None
        self._ddp: Optional[DistributedDataParallel] = None
        self._buffers: Dict[str, Grads] = {}  # task -> accumulated gradients
        self._task_names: Set[str] = set()  # every task seen so far
        self._num_updates = 0
        self._seed: Optional[int] = None

    @property
    def num_updates(self) -> int:
        """int: Parameter updates (aggregations) done so far."""
        return self._num_updates

    @staticmethod
    def _check_autocast(cfg: Optional[dict]) -> Optional[dict]:
        if cfg is None:
            return None
        if not isinstance(cfg, dict):
            raise TypeError(f"autocast must be a dict like dict(dtype='bfloat16'), but got "
                            f'{cfg!r}')
        cfg = dict(cfg)
        dtype = cfg.get('dtype', 'bfloat16')
        dtype = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
        if dtype != torch.bfloat16:
            raise ValueError(f"autocast dtype must be 'bfloat16' (float16 would need a loss "
                             f'scaler, which this wrapper has not), but got {cfg!r}')
        cfg['dtype'] = dtype
        return cfg

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Remember the model; under DDP always ``no_sync``; optional autocast.

        Args:
            model (nn.Module): The model, possibly wrapped (DDP: ``model.module``).
        """
        self._model = model.module if is_model_wrapper(model) else model
        self._ddp = model if isinstance(model, DistributedDataParallel) else None
        if is_model_wrapper(model) and self._ddp is None:
            raise TypeError('GradSurgeryOptimWrapper supports no wrapper or '
                            f'(MM)DistributedDataParallel, but got {type(model).__name__}')
        with ExitStack() as stack:
            stack.enter_context(super().optim_context(model))
            if self._ddp is not None:  # every micro-step: we reduce per task ourselves
                stack.enter_context(model.no_sync())
            if self.autocast_cfg is not None:
                stack.enter_context(mm_autocast(**self.autocast_cfg))
            yield

    def update_params(self, loss: Tensor, step_kwargs: Optional[Dict] = None,
                      zero_kwargs: Optional[Dict] = None,
                      task_losses: Optional[Dict[str, Tensor]] = None) -> None:
        """Accumulate per-task gradients; at an update step, aggregate and step.

        Args:
            loss (Tensor): The total loss, shape (): a :class:`MultiTaskLoss` (carrying
                the task losses), or any tensor when ``task_losses`` is given.
            step_kwargs (dict, optional): Kwargs of ``optimizer.step``. Defaults to None.
            zero_kwargs (dict, optional): Kwargs of ``optimizer.zero_grad``. Defaults to None.
            task_losses (dict[str, Tensor], optional): Task -> () loss, summing to
                ``loss``; a task without graph is absent from the batch. Defaults to None:
                ``loss.task_losses``.
        """
        # a task whose loss has no graph is absent from this batch
        tasks = [(n, v) for n, v in self._check_task_losses(loss, task_losses).items()
                 if v.grad_fn is not None]
        for name, _ in tasks:  # rows in the tasks' order, whatever the backward order
            self._buffers.setdefault(name, [None] * len(self.params))
        for k, retain in backward_plan([v for _, v in tasks]):
            name, task_loss = tasks[k]
            grads = torch.autograd.grad(self.scale_loss(task_loss), self.params,
                                        retain_graph=retain, allow_unused=True)
            add_grads_(self._buffers[name], grads)
            del grads
        self._inner_count += 1
        if self.should_update():
            self._write_grads()
            self.step(**(step_kwargs or {}))
            self.zero_grad(**(zero_kwargs or {}))
            self._buffers = {}
            self._num_updates += 1

    def _check_task_losses(self, loss: Tensor,
                           losses: Optional[Dict[str, Tensor]]) -> Dict[str, Tensor]:
        """The task losses given (or carried by ``loss``), checked to sum to ``loss``."""
        if self._model is None:
            raise RuntimeError('GradSurgeryOptimWrapper has not seen the model: call '
                               'update_params after optim_context(model), as '
                               'model.train_step(data, optim_wrapper) does')
        if losses is None:
            losses = task_losses_of(loss)
        if not isinstance(losses, dict) or not losses:
            raise RuntimeError(f'{_NO_TASK_LOSSES}; {type(self._model).__name__} gave a '
                               f'{type(loss).__name__} and task_losses={losses!r}')
        # a routed multi-head model may give one task's loss only, on a one-group batch
        self._task_names.update(losses)
        if hasattr(self._model, 'head_modules'):
            self._task_names.update(self._model.head_modules())
        if len(self._task_names) < 2:
            raise ValueError(f'gradient surgery needs >= 2 tasks, but the model exposes '
                             f'{list(losses)}: use the plain OptimWrapper (or give '
                             'task losses an entry for every task, without graph when '
                             'absent from the batch)')
        total = float(sum(v.detach().double() for v in losses.values()))
        given = float(loss.detach())
        tol = 10 * len(losses) * torch.finfo(loss.dtype).eps * (1 + abs(total))
        if math.isfinite(given) and not abs(total - given) <= tol:
            raise ValueError(f'the task losses {list(losses)} sum to {total:.6g}, but '
                             f'the loss given to update_params is {given:.6g}: every '
                             'loss term must belong to a task in task_losses')
        return losses

    def _sync_buffers(self) -> None:
        """DDP: make ``self._buffers`` the rank average, identical on all ranks."""
        group = self._ddp.process_group
        names: List[str] = []
        for rank_names in all_gather_object(list(self._buffers), group=group):
            names += [n for n in rank_names if n not in names]
        reached = torch.tensor([[float(name in self._buffers and g is not None)
                                 for g in self._buffers.get(name, [None] * len(self.params))]
                                for name in names], device=self.params[0].device)  # (T, P)
        all_reduce(reached, op='max', group=group)
        synced: Dict[str, Grads] = {}
        for t, name in enumerate(names):
            local = self._buffers.get(name, [None] * len(self.params))
            idx = [i for i in range(len(self.params)) if reached[t, i] > 0]
            if not idx:  # the task reached no parameter on any rank
                continue
            flat = torch.cat([(local[i] if local[i] is not None
                               else torch.zeros_like(self.params[i])).reshape(-1)
                              for i in idx])
            all_reduce(flat, op='mean', group=group)
            grads: Grads = [None] * len(self.params)
            for i, chunk in zip(idx, flat.split([self.params[i].numel() for i in idx])):
                grads[i] = chunk.view_as(self.params[i])
            synced[name] = grads
        self._buffers = synced

    def _per_task_params(self) -> Set[int]:
        """Ids of the learnt loss-weighting parameters (``UncertaintyWeighting.log_vars``).

        Every task reaches them, but each task only its own entry: they are per-task
        state, never shared, so they get the plain sum of the task gradients (each
        entry exactly its task's) and never enter the aggregation.
        """
        weighting = getattr(self._model, 'loss_weighting', None)
        return ({id(p) for p in weighting.parameters()}
                if isinstance(weighting, nn.Module) else set())

    def _shared_mask(self) -> List[bool]:
        own = self._per_task_params()
        if self.shared is None:
            return [sum(buf[i] is not None for buf in self._buffers.values()) >= 2
                    and id(self.params[i]) not in own for i in range(len(self.params))]
        names = {id(p): n for n, p in self._model.named_parameters()}
        mask = []
        matched: Set[str] = set()
        for p in self.params:
            name = names.get(id(p), '')
            hits = [s for s in self.shared if name == s or name.startswith(s + '.')]
            matched.update(hits)
            mask.append(bool(hits) and id(p) not in own)
        missing = [s for s in self.shared if s not in matched]
        if missing:
            raise ValueError(f'shared prefixes {missing} match no trainable parameter of '
                             f'{type(self._model).__name__}; top-level modules are '
                             f'{[n for n, _ in self._model.named_children()]}')
        return mask

    def _write_grads(self) -> None:
        """Put the aggregated (shared) and summed (task-specific) gradients in ``.grad``.

        The task gradients are overwritten: each parameter's ``.grad`` is one of them.
        """
        if self._ddp is not None and get_world_size(self._ddp.process_group) > 1:
            self._sync_buffers()
        bufs = list(self._buffers.values())
        shared = self._shared_mask()
        for i, p in enumerate(self.params):
            if not shared[i]:
                p.grad = sum_([b[i] for b in bufs])
        idx = [i for i in range(len(self.params)) if shared[i]]
        # rows: the tasks that reached a shared parameter (a zero row would upset GradVac)
        tasks = {n: b for n, b in self._buffers.items() if any(b[i] is not None for i in idx)}
        if not tasks:
            return
        names, rows = list(tasks), list(tasks.values())
        if not isinstance(self.aggregator, _tjd().GramianWeightedAggregator):
            self._write_matrix_aggregate(names, rows, idx)
            return
        chunks, own = pack(rows, idx, self.params, self.chunk_bytes, self.own_bytes)
        gram = gramian(rows, chunks, own)  # (T, T), as torchjd's compute_gramian
        self._log_similarity(names, gram)
        weights = (self._aggregate(gram, gramian_only=True) if len(rows) >= 2
                   else gram.new_ones(1))
        for i, g in combine(rows, chunks, own, weights, self.params).items():
            self.params[i].grad = g

    def _write_matrix_aggregate(self, names: List[str], rows: List[Grads],
                                idx: List[int]) -> None:
        """An aggregator that needs the (T, n_shared) matrix itself."""
        chunks, _ = pack(rows, idx, self.params, self.chunk_bytes, own_bytes=math.inf)
        matrix = torch.cat([m for _, m in chunks], dim=1)
        self._log_similarity(names, matrix @ matrix.T)
        vector = self._aggregate(matrix) if len(rows) >= 2 else matrix[0]  # (n_shared,)
        for i, chunk in zip(idx, vector.split([self.params[i].numel() for i in idx])):
            self.params[i].grad = chunk.view_as(self.params[i]).clone()

    def _aggregate(self, stat: Tensor, gramian_only: bool = False) -> Tensor:
        """The aggregator on ``stat``: the (T, n) matrix, or with ``gramian_only`` its
        (T, T) Gramian (a Gramian-weighted aggregator: the (T,) weights of the rows).
        Identical RNG on every DDP rank."""
        fn = self.aggregator.gramian_weighting if gramian_only else self.aggregator
        if self._ddp is None or get_world_size(self._ddp.process_group) == 1:
            return fn(stat)
        if self._seed is None:
            self._seed = sync_random_seed(group=self._ddp.process_group)
        devices = [stat.device.index or 0] if stat.device.type == 'cuda' else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self._seed + self._num_updates)
            return fn(stat)

    def _log_similarity(self, names: List[str], gram: Tensor) -> None:
        """Log pairwise cosine similarities of the task gradients from their (T, T) Gramian,
        and the number of conflicting pairs."""
        norms = gram.diagonal().clamp(min=0).sqrt()
        cos = gram / (norms[:, None] * norms[None, :]).clamp(min=1e-12)
        conflicts = 0
        for a in range(len(names)):
            for b in range(a + 1, len(names)):
                self.message_hub.update_scalar(f'train/grad_cos.{names[a]}.{names[b]}',
                                               float(cos[a, b]))
                conflicts += int(cos[a, b] < 0)
        self.message_hub.update_scalar('train/grad_conflicts', conflicts)
