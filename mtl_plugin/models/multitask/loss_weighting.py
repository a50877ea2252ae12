"""Multi-task loss weighting: group a model's losses by task and weight the tasks.

A *task* is a set of loss terms (keys containing ``'loss'``, as in MMEngine's
``BaseModel.parse_losses``). By default tasks are the key prefixes of a multi-head model
(``person.loss_cls`` -> ``person``); any model can name them with a dict of keys or
fnmatch patterns, e.g. ``tasks=dict(cls=['loss_cls'], box=['loss_bbox'])`` for a stock
RetinaNet. The methods (equal, fixed, scheduled, uncertainty, DWA, GradNorm, RLW) live in
:mod:`.weighting_methods`. Config, for our multi-head models::

    model = dict(type='MultiHeadDetector', ..., loss_weighting=dict(type='UncertaintyWeighting'))

and for any MMEngine model (a stock mmdet detector, an mmpose estimator)::

    model = dict(type='MultiTaskModel', model=dict(type='RetinaNet', ...),
                 loss_weighting=dict(type='DWAWeighting', window=500,
                                     tasks=dict(cls=['loss_cls'], box=['loss_bbox'])))

The weights are logged every iteration as ``weight.<task>``; ``loss`` is the weighted
total. ``parse_losses`` returns it as a :class:`~mtl_plugin.task_losses.MultiTaskLoss`
carrying the weighted per-task losses, which MMEngine's train step (DDP's too) hands to
``optim_wrapper.update_params``: the explicit input of gradient surgery
(:class:`~mtl_plugin.engine.optim_wrappers.GradSurgeryOptimWrapper`).

Weight decay caveat: learnable weights (``UncertaintyWeighting.log_vars``) are model
parameters, so the optimizer decays them towards 0 (weight 1) unless told otherwise::

    optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'loss_weighting': dict(decay_mult=0.)}))
"""
import fnmatch
import types
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmengine.model import BaseModel, BaseModule
from mmengine.registry import MODELS
from mmengine.utils import is_list_of
from torch import Tensor, nn

from ...task_losses import MultiTaskLoss

Tasks = Optional[Union[Sequence[str], Dict[str, Sequence[str]]]]


def check_tasks(tasks: Tasks) -> Optional[List[str]]:
    """Validate a ``tasks`` argument; return its task names (None for ``tasks=None``)."""
    if tasks is None:
        return None
    if isinstance(tasks, dict):
        names = list(tasks)
        for name, patterns in tasks.items():
            if not isinstance(patterns, (list, tuple)) or not patterns or \
                    not all(isinstance(p, str) and p for p in patterns):
                raise TypeError(f'tasks[{name!r}] must be a non-empty list of loss keys or '
                                f"fnmatch patterns, e.g. ['loss_cls'], but got {patterns!r}")
    elif isinstance(tasks, (list, tuple)):
        names = list(tasks)
    else:
        raise TypeError('tasks must be None (group by key prefix), a list of prefixes or a dict '
                        f'task -> list of keys / patterns, but got {tasks!r}')
    bad = [n for n in names if not isinstance(n, str) or not n or '.' in n]
    if bad or not names or len(set(names)) != len(names):
        raise ValueError('task names must be distinct non-empty strings without ".", but got '
                         f'{names!r}')
    return names


def _loss_value(key: str, value) -> Tensor:
    """A loss term reduced as MMEngine's ``parse_losses`` does: mean, or sum of means."""
    if isinstance(value, Tensor):
        return value.mean()
    if is_list_of(value, Tensor):
        return sum(v.mean() for v in value)
    raise TypeError(f'{key} is not a tensor or list of tensors, but got {type(value)}')


def group_losses_by_task(losses: Dict[str, Union[Tensor, List[Tensor]]], tasks: Tasks = None,
                         optional: Sequence[str] = ()) -> 'OrderedDict[str, Tensor]':
    """Sum the loss terms of each task.

    Args:
        losses (dict): A model's raw losses; keys containing ``'loss'`` are loss terms,
            valued by a tensor (reduced by mean) or a list of tensors (sum of means).
        tasks (list[str] | dict[str, list[str]], optional): None groups by the key prefix
            before the first ``.``; a list names the prefixes; a dict maps each task to
            loss keys or fnmatch patterns. Defaults to None.
        optional (Sequence[str]): Task names that may have no loss term in this call
            (e.g. the head of a group with no sample in the batch). Defaults to ().

    Returns:
        OrderedDict[str, Tensor]: Task name -> scalar () summed loss, in ``tasks`` order
        (first appearance for ``tasks=None``).

    Raises:
        ValueError: A loss term no task claims, one claimed twice, a task matching no
            loss term (unless ``optional``), or no loss term at all.
    """
    names = check_tasks(tasks)
    keys = [k for k in losses if 'loss' in k]
    if not keys:
        raise ValueError(f'no loss terms (keys containing "loss") in {list(losses)}')
    if isinstance(tasks, dict):
        owner = {}
        for key in keys:
            claims = [t for t, pats in tasks.items()
                      if any(fnmatch.fnmatchcase(key, p) for p in pats)]
            if len(claims) > 1:
                raise ValueError(f'loss key {key!r} is claimed by several tasks {claims}; make '
                                 f'the patterns disjoint. Loss keys: {keys}')
            owner[key] = claims[0] if claims else None
    else:
        owner = {k: k.split('.', 1)[0] if '.' in k else None for k in keys}
        if names is None and None in owner.values():
            raise ValueError(
                f'loss keys {[k for k, t in owner.items() if t is None]} have no "<task>." '
                'prefix to group them by; name the tasks with a dict of keys or patterns, e.g. '
                f"tasks=dict(cls=['loss_cls'], box=['loss_bbox']). Loss keys: {keys}")
        if names is not None:
            owner = {k: t if t in names else None for k, t in owner.items()}
    unclaimed = [k for k, t in owner.items() if t is None]
    if unclaimed:
        raise ValueError(f'loss keys {unclaimed} belong to no task of {tasks!r}; add them to a '
                         f'task (no loss may be dropped). Loss keys: {keys}')
    order = names if names is not None else list(OrderedDict.fromkeys(owner.values()))
    empty = [t for t in order if t not in owner.values() and t not in optional]
    if empty:
        raise ValueError(f'tasks {empty} match no loss key; check the names / patterns. '
                         f'Loss keys: {keys}')
    grouped: 'OrderedDict[str, Tensor]' = OrderedDict()
    for task in order:
        members = [_loss_value(k, losses[k]) for k, t in owner.items() if t == task]
        if members:
            grouped[task] = sum(members)
    return grouped


def model_task_names(model: nn.Module) -> Optional[List[str]]:
    """Tasks a model declares: ``model.loss_task_names()`` if defined, else those of a
    multi-head model (``rpn`` if it has ``rpn_head``, its ``heads``, ``aux`` if it has
    ``aux_head``: the prefixes of its loss keys), else None."""
    declared = getattr(model, 'loss_task_names', None)
    if callable(declared):
        return list(declared())
    heads = getattr(model, 'heads', None)
    if not isinstance(heads, nn.ModuleDict):
        return None
    names = ['rpn'] if getattr(model, 'rpn_head', None) is not None else []
    names += list(heads)
    return names + (['aux'] if getattr(model, 'aux_head', None) is not None else [])


#: Task -> () loss of one step, in task order.
TaskLosses = OrderedDict


class LossWeighting(BaseModule):
    """Base class: weights the per-task losses of one step.

    Task names are fixed once: from ``tasks``, else from the model (see
    :func:`model_task_names`) when :meth:`attach` runs, else (stateless methods only) from
    the first step. Then the configuration is checked against them (at least 2 tasks, no
    unknown task named in the method's arguments). A task may have no loss in a step (its
    head saw no sample); it then gets no weight in that step.

    Subclasses implement :meth:`task_weights` (or :meth:`weighted_losses` for terms that
    are not ``w * L``) and, when they keep per-task state, :meth:`init_task_state`.

    Args:
        tasks (list[str] | dict[str, list[str]], optional): How to group loss keys into
            tasks, see :func:`group_losses_by_task`. Defaults to None (key prefixes).
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    #: True when the method keeps per-task state (parameters / buffers), which must exist
    #: before the optimizer is built and a checkpoint is loaded.
    stateful = False

    def __init__(self, tasks: Tasks = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        check_tasks(tasks)
        self.tasks = tasks
        self.task_names: Optional[List[str]] = None
        self.optional_tasks: List[str] = []

    # ------------------------------------------------------------------ task names
    def set_task_names(self, names: Sequence[str]) -> None:
        """Fix the task names, check the config against them and build per-task state."""
        names = list(names)
        if len(names) < 2:
            raise ValueError(f'{type(self).__name__} weights several tasks, but there is only '
                             f'{names}; loss weighting needs >= 2 tasks (check tasks=, or drop '
                             'loss_weighting for a single-task model)')
        if self.task_names is not None:
            if names != self.task_names:
                raise ValueError(f'{type(self).__name__}: task names already set to '
                                 f'{self.task_names}, but got {names}')
            return
        self.check_task_refs(names)
        self.task_names = names
        self.init_task_state(names)

    def check_task_refs(self, names: List[str]) -> None:
        """Raise for tasks named in the method's arguments that are not in ``names``."""

    def init_task_state(self, names: List[str]) -> None:
        """Create per-task parameters / buffers (stateful methods)."""

    def _unknown(self, what: str, referenced, names: List[str]) -> None:
        unknown = [t for t in referenced if t not in names]
        if unknown:
            raise ValueError(f'{type(self).__name__}: {what} name unknown tasks {unknown}; the '
                             f'tasks are {names}')

    def attach(self, model: nn.Module) -> None:
        """Fix the task names for ``model`` (called when the model gets this weighting)."""
        declared = model_task_names(model)
        names = check_tasks(self.tasks)
        if names is not None and declared is not None and not isinstance(self.tasks, dict):
            self._unknown('tasks', names, declared)
        if names is None:
            names = declared
        if declared is not None:  # a declared task may be idle in a step (no sample)
            self.optional_tasks = [t for t in declared if names is None or t in names]
        if names is not None:
            self.set_task_names(names)
        elif self.stateful:
            raise ValueError(f'{type(self).__name__} keeps one state entry per task, so it '
                             'needs the task names before training, but '
                             f'{type(model).__name__} does not declare them; give '
                             "tasks=['a', 'b'] or tasks=dict(a=[<loss keys>], ...) in "
                             'loss_weighting')

    # ------------------------------------------------------------------ weighting
    def forward(self, task_losses: 'OrderedDict[str, Tensor]') -> Tuple[Tensor, Dict[str, float]]:
        """Weighted total of one step.

        Args:
            task_losses (OrderedDict[str, Tensor]): Task -> scalar () loss.

        Returns:
            tuple[Tensor, dict[str, float]]: The total () and the weights used.
        """
        terms, weights = self.weighted_losses(task_losses)
        return sum(terms.values()), weights

    def weighted_losses(
            self, task_losses: 'OrderedDict[str, Tensor]') -> Tuple[TaskLosses, Dict[str, float]]:
        """Task -> weighted loss () whose sum is the total, and task -> weight."""
        self._check_step(task_losses)
        weights = self.task_weights(task_losses)
        terms = TaskLosses((t, weights[t] * loss) for t, loss in task_losses.items())
        return terms, {t: float(w) for t, w in weights.items()}

    def task_weights(self,
                     task_losses: 'OrderedDict[str, Tensor]') -> Dict[str, Union[float, Tensor]]:
        """Task -> weight (float or () tensor) of each task in ``task_losses``."""
        raise NotImplementedError

    def _check_step(self, task_losses: 'OrderedDict[str, Tensor]') -> None:
        if not task_losses:
            raise ValueError(f'{type(self).__name__} got no task loss')
        if self.task_names is None:
            names = check_tasks(self.tasks)
            if names is None and self.stateful:
                raise ValueError(f'{type(self).__name__} has no task names: attach it to a '
                                 'model or give tasks=[...]')
            self.set_task_names(names if names is not None else list(task_losses))
        unknown = [t for t in task_losses if t not in self.task_names]
        if unknown:
            raise ValueError(f'{type(self).__name__}: tasks {unknown} are not among its tasks '
                             f'{self.task_names}; declare every task with tasks=[...]')

    def extra_repr(self) -> str:
        return f'tasks={self.tasks!r}, task_names={self.task_names!r}'


class MultiTaskLossMixin:
    """``parse_losses`` with multi-task loss weighting, for MMEngine model classes.

    Put it before ``BaseModel`` / ``BaseDetector`` in the bases and call
    :meth:`init_loss_weighting` at the end of ``__init__``. ``parse_losses`` returns the
    total as a :class:`~mtl_plugin.task_losses.MultiTaskLoss` whose ``task_losses`` are
    task -> weighted loss () with graph (the uncertainty regulariser included in its
    task), summing to the total; without a weighting, the unweighted sums of the key
    prefixes (a plain tensor when the keys have no prefixes). Nothing is kept on the model.
    """

    loss_weighting: Optional[LossWeighting]

    def init_loss_weighting(self, cfg: Optional[dict]) -> None:
        """Build ``cfg`` (a :class:`LossWeighting` config, or None) as ``self.loss_weighting``."""
        weighting = None
        if cfg is not None:
            weighting = MODELS.build(cfg)
            if not isinstance(weighting, LossWeighting):
                raise TypeError(f'loss_weighting must build a LossWeighting (e.g. '
                                f"type='UncertaintyWeighting'), but got {type(weighting)}")
        self.loss_weighting = weighting
        if weighting is not None:
            weighting.attach(self)

    def parse_losses(self, losses: dict) -> Tuple[Tensor, Dict[str, Tensor]]:
        """MMEngine's ``parse_losses``, with the total weighted by ``self.loss_weighting``.

        Returns:
            tuple[Tensor, dict]: The total () (a :class:`MultiTaskLoss` carrying the task
            losses, see above) and the log dict: MMEngine's per-key values, ``loss`` (the
            weighted total) and ``weight.<task>`` for each task of the step.
        """
        total, log_vars = BaseModel.parse_losses(self, losses)
        weighting = getattr(self, 'loss_weighting', None)
        if weighting is None:
            keys = [k for k in losses if 'loss' in k]
            if keys and all('.' in k for k in keys):
                total = MultiTaskLoss.of(TaskLosses(group_losses_by_task(losses)), total)
            return total, log_vars
        task_losses = group_losses_by_task(losses, weighting.tasks, weighting.optional_tasks)
        terms, weights = weighting.weighted_losses(task_losses)
        total = MultiTaskLoss.of(terms)
        log_vars['loss'] = total.as_subclass(Tensor)  # logs hold plain tensors
        log_vars.update((f'weight.{t}', w) for t, w in weights.items())
        return total, log_vars


def attach_loss_weighting(model: BaseModel, cfg: dict) -> BaseModel:
    """Give any MMEngine model a loss weighting, in place.

    The weighting becomes the submodule ``model.loss_weighting`` and
    :meth:`MultiTaskLossMixin.parse_losses` is bound onto the instance (under DDP MMEngine
    calls ``module.parse_losses`` directly). The model's own checkpoint keys are unchanged;
    ``loss_weighting.*`` keys are added.

    Args:
        model (BaseModel): The model (not wrapped).
        cfg (dict): A :class:`LossWeighting` config.

    Returns:
        BaseModel: ``model``.
    """
    if not isinstance(model, BaseModel):
        raise TypeError(f'attach_loss_weighting needs an MMEngine BaseModel, but got '
                        f'{type(model)}')
    if getattr(model, 'loss_weighting', None) is not None:
        raise ValueError(f'{type(model).__name__} already has a loss_weighting: '
                         f'{model.loss_weighting!r}')
    if isinstance(model, MultiTaskLossMixin):
        model.init_loss_weighting(cfg)
        return model
    if type(model).parse_losses is not BaseModel.parse_losses:
        raise TypeError(f'{type(model).__name__} overrides parse_losses, which the loss '
                        'weighting would replace; subclass it with MultiTaskLossMixin instead')
    MultiTaskLossMixin.init_loss_weighting(model, cfg)
    model.parse_losses = types.MethodType(MultiTaskLossMixin.parse_losses, model)
    return model


@MODELS.register_module(name='MultiTaskModel')
def MultiTaskModel(model: dict, loss_weighting: dict) -> BaseModel:  # noqa: N802 (a config type)
    """Build ``model`` from the registry and attach ``loss_weighting`` to it.

    Returns the model itself (not a wrapper), so its checkpoints load into the stock model
    (the extra ``loss_weighting.*`` keys are ignored with a warning)::

        model = dict(type='MultiTaskModel', model=dict(type='RetinaNet', ...),
                     loss_weighting=dict(type='UncertaintyWeighting',
                                         tasks=dict(cls=['loss_cls'], box=['loss_bbox'])))

    Args:
        model (dict): Config of any MMEngine model (mmdet detector, mmpose estimator...).
        loss_weighting (dict): A :class:`LossWeighting` config.

    Returns:
        BaseModel: The built model with ``loss_weighting`` attached.
    """
    return attach_loss_weighting(MODELS.build(model), loss_weighting)


__all__ = ['LossWeighting', 'MultiTaskLossMixin', 'MultiTaskModel', 'TaskLosses',
           'attach_loss_weighting', 'check_tasks', 'group_losses_by_task', 'model_task_names']
