"""Loss weighting methods: equal, fixed, scheduled, uncertainty, DWA, GradNorm, RLW.

Each is a :class:`~.loss_weighting.LossWeighting` registered in ``MODELS``; give one as a
model's ``loss_weighting=dict(type=..., tasks=...)``. Methods that need the training clock
(scheduled, DWA, RLW) read ``'iter'`` / ``'epoch'`` / ``'max_iters'`` / ``'max_epochs'``
from MMEngine's current ``MessageHub``, where the Runner's ``RuntimeInfoHook`` puts them
(``iter``: 0-based global iteration about to run; ``epoch``: 0-based epoch).

Learnable weights (``UncertaintyWeighting``) should not be decayed::

    optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'loss_weighting': dict(decay_mult=0.)}))
"""
import difflib
import logging
import math
import numbers
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.dist import all_reduce
from mmengine.logging import MessageHub, print_log
from mmengine.registry import MODELS
from torch import Tensor, nn

from ...schedules import schedule_value
from .loss_weighting import LossWeighting, TaskLosses, Tasks

TaskDict = Dict[str, Tensor]  # task -> () loss, in task order


def runtime_info(key: str, owner: str) -> Optional[int]:
    """``key`` of the current MessageHub's runtime info (None for an unset ``max_*``)."""
    value = MessageHub.get_current_instance().get_info(key)
    if value is None and not key.startswith('max_'):
        raise RuntimeError(
            f"{owner} reads the training clock {key!r} from MMEngine's MessageHub, set by the "
            "Runner's RuntimeInfoHook, but it is not set; outside a Runner set it with "
            f'MessageHub.get_current_instance().update_info({key!r}, value)')
    return None if value is None else int(value)


def check_weight(owner: str, where: str, value, positive: bool = False) -> float:
    """A finite real number >= 0 (> 0 if ``positive``), as a float."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or \
            not math.isfinite(float(value)) or value < 0 or (positive and value == 0):
        raise ValueError(f'{owner}: {where} must be a finite number '
                         f"{'> 0' if positive else '>= 0'}, but got {value!r}")
    return float(value)


@MODELS.register_module()
class EqualWeighting(LossWeighting):
    """Every task weighs 1 (the plain sum, with the per-task losses logged)."""

    def task_weights(self, task_losses: TaskDict) -> Dict[str, float]:
        return {t: 1.0 for t in task_losses}


@MODELS.register_module()
class FixedWeighting(LossWeighting):
    """Constant weights.

    Args:
        weights (dict[str, float]): Task -> weight (finite, >= 0; not all zero).
        default (float): Weight of the tasks ``weights`` does not name. Defaults to 1.0.
        tasks: See :class:`LossWeighting`.
    """

    def __init__(self, weights: Dict[str, float], default: float = 1.0, tasks: Tasks = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(tasks=tasks, init_cfg=init_cfg)
        if not isinstance(weights, dict):
            raise TypeError(f'FixedWeighting: weights must be a dict task -> weight, but got '
                            f'{weights!r}')
        self.weights = {t: check_weight('FixedWeighting', f'weights[{t!r}]', w)
                        for t, w in weights.items()}
        self.default = check_weight('FixedWeighting', 'default', default)

    def check_task_refs(self, names: List[str]) -> None:
        self._unknown('weights', self.weights, names)
        if all(self.weights.get(t, self.default) == 0 for t in names):
            raise ValueError(f'FixedWeighting: every task {names} weighs 0 (weights='
                             f'{self.weights}, default={self.default}); nothing would train')

    def task_weights(self, task_losses: TaskDict) -> Dict[str, float]:
        return {t: self.weights.get(t, self.default) for t in task_losses}


@MODELS.register_module()
class ScheduledWeighting(LossWeighting):
    """Weights that follow a schedule of the training clock.

    Each task's schedule is a dict in the format of :class:`CurriculumLearningHook`
    (without ``param`` / ``by_epoch`` / ``name``): ``milestones`` + ``values`` (step,
    ``values[#milestones <= t]``), or ``type='linear'`` / ``'cosine'`` with ``start``,
    ``end``, optional ``begin`` and ``end_at`` (default: the training length), or
    ``type='dann'``; or a plain number (constant). ``by='epoch'`` needs epoch-based
    training (the epoch stays 0 in an ``IterBasedTrainLoop``). The seed recipe, dataset
    head 0.4 for two epochs then 0.15::

        loss_weighting=dict(type='ScheduledWeighting', by='epoch',
                            schedules=dict(aux=dict(milestones=[2], values=[0.4, 0.15])))

    Args:
        schedules (dict[str, dict | float]): Task -> schedule; values must be >= 0.
        by (str): Clock, ``'iter'`` or ``'epoch'``. Defaults to ``'iter'``.
        default (float): Weight of unscheduled tasks. Defaults to 1.0.
        tasks: See :class:`LossWeighting`.
    """

    RESERVED = ('param', 'by_epoch', 'name')
    NON_NEGATIVE = ('values', 'start', 'end', 'scale')

    def __init__(self, schedules: Dict[str, Union[dict, float]], by: str = 'iter',
                 default: float = 1.0, tasks: Tasks = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(tasks=tasks, init_cfg=init_cfg)
        if by not in ('iter', 'epoch'):
            raise ValueError(f"ScheduledWeighting: by must be 'iter' or 'epoch', but got {by!r}")
        if not isinstance(schedules, dict) or not schedules:
            raise TypeError('ScheduledWeighting: schedules must be a non-empty dict task -> '
                            f'schedule dict, but got {schedules!r}')
        self.by = by
        self.default = check_weight('ScheduledWeighting', 'default', default)
        self.schedules = {t: self._check(t, s) for t, s in schedules.items()}

    def _check(self, task: str, schedule: Union[dict, float]) -> Union[dict, float]:
        where = f'schedules[{task!r}]'
        if not isinstance(schedule, dict):
            return check_weight('ScheduledWeighting', where, schedule)
        reserved = [k for k in self.RESERVED if k in schedule]
        if reserved:
            raise ValueError(f'ScheduledWeighting: {where} sets {reserved}; the clock is set '
                             f"once for every task with by='iter' | 'epoch'. Got {schedule!r}")
        schedule = dict(schedule, param=f'model.loss_weighting.{task}')
        self._value(task, schedule, 0, 2**62)  # validates the schedule's own keys
        for key in self.NON_NEGATIVE:
            for v in schedule.get('values', []) if key == 'values' else [schedule.get(key, 0)]:
                check_weight('ScheduledWeighting', f'{where} {key!r}', v)
        return schedule

    def _value(self, task: str, schedule: dict, t: int, total: Optional[int]) -> float:
        try:
            return schedule_value(schedule, t, total)
        except (TypeError, ValueError) as err:
            raise ValueError(f'ScheduledWeighting schedules[{task!r}]: {err}') from err

    def check_task_refs(self, names: List[str]) -> None:
        self._unknown('schedules', self.schedules, names)

    def task_weights(self, task_losses: TaskDict) -> Dict[str, float]:
        t = runtime_info(self.by, 'ScheduledWeighting')
        total = runtime_info(f'max_{self.by}s', 'ScheduledWeighting')
        out = {}
        for task in task_losses:
            s = self.schedules.get(task, self.default)
            out[task] = s if not isinstance(s, dict) else self._value(task, s, t, total)
        return out


@MODELS.register_module()
class UncertaintyWeighting(LossWeighting):
    """Homoscedastic uncertainty weighting (Kendall et al., CVPR 2018).

    A learnable log-variance ``s_i`` per task (``log_vars``, shape (T,), optimised with the
    model): ``total = sum_i exp(-s_i) * L_i + s_i``; the logged weight is ``exp(-s_i)``.

    This is LibMTL's UW form ``L / (2 exp(s)) + s / 2`` without the global factor 1/2,
    i.e. Kendall's Gaussian-likelihood form with ``s = log sigma^2``, applied to every
    task, classification-style losses (focal, cross-entropy) included, instead of the
    paper's classification form ``exp(-s) L + s / 2``. Why: one form for all tasks gives
    each the same equilibrium ``d/ds = 1 - exp(-s) L = 0`` -> ``s_i = log L_i``, weight
    ``1 / L_i``, so every task contributes ~1 whatever its scale or kind; and without the
    1/2, ``s = 0`` gives exactly the unweighted sum, so the baseline's learning rate still
    fits. Note that a loss going to 0 drives its weight up without bound, and that the
    ``s`` of a task with no loss in a step gets a zero gradient (not None): momentum still
    moves it.

    Args:
        init_log_var (float): Initial ``s`` of every task. Defaults to 0.0 (weight 1).
        tasks: See :class:`LossWeighting`.
    """

    stateful = True

    def __init__(self, init_log_var: float = 0.0, tasks: Tasks = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(tasks=tasks, init_cfg=init_cfg)
        if not isinstance(init_log_var, numbers.Real) or not math.isfinite(init_log_var):
            raise ValueError(f'UncertaintyWeighting: init_log_var must be a finite number, but '
                             f'got {init_log_var!r}')
        self.init_log_var = float(init_log_var)

    def init_task_state(self, names: List[str]) -> None:
        self.log_vars = nn.Parameter(torch.full((len(names), ), self.init_log_var))

    def weighted_losses(self, task_losses: TaskDict) -> Tuple[TaskLosses, Dict[str, float]]:
        self._check_step(task_losses)
        terms, weights = TaskLosses(), {}
        for task, loss in task_losses.items():
            s = self.log_vars[self.task_names.index(task)]
            precision = torch.exp(-s)
            terms[task] = precision * loss + s
            weights[task] = float(precision.detach())
        return terms, weights


@MODELS.register_module()
class DWAWeighting(LossWeighting):
    """Dynamic Weight Average (Liu et al., CVPR 2019).

    ``w_i(t) = T * softmax(r(t-1) / temperature)_i`` with ``r_i(t-1) = L_i(t-1) / L_i(t-2)``,
    ``L_i(p)`` the mean loss of task ``i`` over period ``p``: an epoch, or ``window``
    iterations for iteration-based training. Weights are 1 in the first two periods; a
    task with no loss in one of the two periods gets ``r_i = 1``. The running sums and the
    last two means are buffers, so they are checkpointed and ``--resume`` continues
    exactly. Under DDP each step's losses are all-reduced (summed, with their counts), so
    the means are over all ranks and every rank holds the same state and weights.

    Args:
        temperature (float): Softmax temperature (> 0). Defaults to 2.0.
        window (int, optional): Period length in iterations; None for epochs.
        tasks: See :class:`LossWeighting`.
    """

    stateful = True

    def __init__(self, temperature: float = 2.0, window: Optional[int] = None,
                 tasks: Tasks = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(tasks=tasks, init_cfg=init_cfg)
        check_weight('DWAWeighting', 'temperature', temperature, positive=True)
        if window is not None and (not isinstance(window, int) or isinstance(window, bool)
                                   or window < 1):
            raise ValueError(f'DWAWeighting: window must be None (epochs) or an int >= 1 '
                             f'(iterations), but got {window!r}')
        self.temperature, self.window = float(temperature), window

    def init_task_state(self, names: List[str]) -> None:
        self.register_buffer('period', torch.tensor(-1, dtype=torch.long))
        self.register_buffer('period_sum', torch.zeros(len(names)))
        self.register_buffer('period_count', torch.zeros(len(names)))
        # rows: mean loss of periods p-2 and p-1 (NaN: not seen)
        self.register_buffer('period_means', torch.full((2, len(names)), float('nan')))

    def current_period(self) -> int:
        """The period of the training clock (epoch, or iteration // window)."""
        if self.window is None:
            return runtime_info('epoch', 'DWAWeighting')
        return runtime_info('iter', 'DWAWeighting') // self.window

    @torch.no_grad()
    def _roll(self, period: int) -> None:
        if period == int(self.period):
            return
        if int(self.period) < 0:
            self._warn_if_constant()
        else:  # NaN for a task with no loss in the period
            mean = self.period_sum / self.period_count
            self.period_means.copy_(torch.stack([self.period_means[1], mean]))
        self.period_sum.zero_()
        self.period_count.zero_()
        self.period.fill_(period)

    def _warn_if_constant(self) -> None:
        total = runtime_info('max_epochs' if self.window is None else 'max_iters', 'DWA')
        periods = total if self.window is None or total is None else -(-total // self.window)
        if periods is not None and periods <= 2:
            print_log(f'DWAWeighting: training has {periods} period(s) of '
                      f"{'an epoch' if self.window is None else f'{self.window} iterations'}; "
                      'the weights are 1 in the first two periods, so they never change. '
                      'Set window=<iterations> (iteration-based training) or a smaller one',
                      logger='current', level=logging.WARNING)

    def weight_vector(self) -> Tensor:
        """(T,) weights from the last two period means."""
        older, last = self.period_means
        if torch.isnan(older).all():
            return torch.ones_like(last)
        ratio = last / older
        ratio = torch.where(torch.isfinite(ratio), ratio, torch.ones_like(ratio))
        return len(self.task_names) * torch.softmax(ratio / self.temperature, dim=0)

    def task_weights(self, task_losses: TaskDict) -> Dict[str, Tensor]:
        if self.training:
            self._roll(self.current_period())
        weights = self.weight_vector()
        index = [self.task_names.index(t) for t in task_losses]
        if self.training:
            with torch.no_grad():
                step = self.period_sum.new_zeros(2, len(self.task_names))  # rows: sum, count
                for i, loss in zip(index, task_losses.values()):
                    step[:, i] = torch.stack([loss.detach().float(), step.new_tensor(1.0)])
                all_reduce(step)  # sum over ranks: every rank keeps the same state
                self.period_sum += step[0]
                self.period_count += step[1]
        return {t: weights[i] for t, i in zip(task_losses, index)}


@MODELS.register_module()
class GradNormWeighting(LossWeighting):
    """GradNorm (Chen et al., ICML 2018): weights that balance gradient norms.

    With ``W`` the parameters of ``shared_layer`` (the last shared layer) and weights ``w``
    (a buffer, sum ``T``), each training step computes ``n_i = ||grad_W L_i||``,
    ``G_i = w_i n_i``, ``r_i = L~_i / mean(L~)`` with ``L~_i = L_i / L_i(0)`` (``L_i(0)``:
    the task's first loss), ``target_i = mean(G) r_i^alpha`` (a constant), and one plain
    gradient step of ``sum_i |G_i - target_i|`` on ``w``:
    ``w_i -= lr * sign(G_i - target_i) n_i``; then ``w`` is clamped > 0 and rescaled to
    its previous sum. The step's total uses the weights before the update, detached.
    Tasks with no loss in a step are left out of the step and keep their weight.

    Cost: one extra backward per task from its loss to ``W``. Under DDP the per-rank ``n``
    and ``L`` (and presence) are all-reduced (mean over the ranks where the task has a
    loss) with ``mmengine.dist.all_reduce`` before the update, so every rank updates ``w``
    identically.

    Args:
        shared_layer (str): Dotted path of the model's last shared module, e.g. ``'neck'``
            or ``'backbone.layer4'``; resolved when the weighting is attached.
        alpha (float): Restoring-force strength (>= 0). Defaults to 1.5.
        lr (float): Learning rate of the weights (> 0). Defaults to 0.025.
        tasks: See :class:`LossWeighting`.
    """

    stateful = True
    EPS = 1e-6

    def __init__(self, shared_layer: str, alpha: float = 1.5, lr: float = 0.025,
                 tasks: Tasks = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(tasks=tasks, init_cfg=init_cfg)
        if not isinstance(shared_layer, str) or not shared_layer:
            raise TypeError(f"GradNormWeighting: shared_layer must be a module path like "
                            f"'neck', but got {shared_layer!r}")
        self.alpha = check_weight('GradNormWeighting', 'alpha', alpha)
        self.lr = check_weight('GradNormWeighting', 'lr', lr, positive=True)
        self.shared_layer = shared_layer
        self._shared: Optional[nn.Module] = None

    def attach(self, model: nn.Module) -> None:
        super().attach(model)
        try:
            module = model.get_submodule(self.shared_layer)
        except AttributeError:
            names = [n for n, _ in model.named_modules() if n and 'loss_weighting' not in n]
            close = difflib.get_close_matches(self.shared_layer, names, n=5, cutoff=0.5)
            raise ValueError(
                f'GradNormWeighting: shared_layer {self.shared_layer!r} is not a module of '
                f'{type(model).__name__}; close names: {close}; top-level modules: '
                f'{list(dict(model.named_children()))}') from None
        if not any(p.requires_grad for p in module.parameters()):
            raise ValueError(f'GradNormWeighting: shared_layer {self.shared_layer!r} has no '
                             'trainable parameter')
        # a plain reference, not a submodule: no duplicated state_dict keys
        object.__setattr__(self, '_shared', module)

    def init_task_state(self, names: List[str]) -> None:
        self.register_buffer('weights', torch.ones(len(names)))
        self.register_buffer('initial_losses', torch.full((len(names), ), float('nan')))

    def task_weights(self, task_losses: TaskDict) -> Dict[str, Tensor]:
        if self._shared is None:
            raise ValueError('GradNormWeighting is not attached to a model; give it as the '
                             "model's loss_weighting (it resolves shared_layer there)")
        weights = self.weights.clone()
        if self.training and torch.is_grad_enabled():
            self._update(task_losses)
        return {t: weights[self.task_names.index(t)] for t in task_losses}

    def _update(self, task_losses: TaskDict) -> None:
        params = [p for p in self._shared.parameters() if p.requires_grad]
        stats = self.weights.new_zeros(3, len(self.task_names))  # rows: n, L, present
        for task, loss in task_losses.items():
            i = self.task_names.index(task)
            if loss.requires_grad:
                grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
                if all(g is None for g in grads):
                    raise ValueError(f'GradNormWeighting: task {task!r} does not reach '
                                     f'shared_layer {self.shared_layer!r}; pick a module every '
                                     'task uses (e.g. the neck)')
                stats[0, i] = torch.sqrt(sum(g.detach().float().pow(2).sum()
                                             for g in grads if g is not None))
            stats[1, i] = loss.detach().float()
            stats[2, i] = 1.0
        all_reduce(stats)  # sum over ranks
        have = stats[2] > 0
        norms, losses = stats[0, have] / stats[2, have], stats[1, have] / stats[2, have]
        with torch.no_grad():
            init = self.initial_losses
            new = have & torch.isnan(init)
            init[new] = (stats[1, new] / stats[2, new])
            rel = losses / init[have]  # L~
            ratio = rel / rel.mean()
            w = self.weights[have]
            g = w * norms
            target = g.mean() * ratio.pow(self.alpha)
            updated = (w - self.lr * torch.sign(g - target) * norms).clamp_min(self.EPS)
            self.weights[have] = updated * (w.sum() / updated.sum())


@MODELS.register_module()
class RLWWeighting(LossWeighting):
    """Random loss weighting (Lin et al., TMLR 2022 / arXiv 2021).

    Each step ``w = softmax(z)`` over the step's tasks, ``z ~ N(0, I)``, drawn from a
    ``torch.Generator`` seeded with ``seed + iteration`` (the MessageHub's ``'iter'``): runs
    are reproducible and every DDP rank draws the same weights. The weights sum to 1, so the
    total is a convex combination of the task losses.

    Args:
        seed (int): Base seed. Defaults to 0.
        tasks: See :class:`LossWeighting`.
    """

    def __init__(self, seed: int = 0, tasks: Tasks = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(tasks=tasks, init_cfg=init_cfg)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f'RLWWeighting: seed must be an int >= 0, but got {seed!r}')
        self.seed = seed

    def task_weights(self, task_losses: TaskDict) -> Dict[str, float]:
        generator = torch.Generator().manual_seed(
            self.seed + runtime_info('iter', 'RLWWeighting'))
        z = torch.randn(len(self.task_names), generator=generator)  # one draw per known task
        index = torch.tensor([self.task_names.index(t) for t in task_losses])
        w = torch.softmax(z[index], dim=0)
        return {t: float(v) for t, v in zip(task_losses, w)}


__all__ = ['EqualWeighting', 'FixedWeighting', 'ScheduledWeighting', 'UncertaintyWeighting',
           'DWAWeighting', 'GradNormWeighting', 'RLWWeighting', 'check_weight', 'runtime_info']
