"""Soft sharing between task branches: cross-stitch units and L2-tied parameters.

- :class:`CrossStitchUnit` (Misra et al., "Cross-stitch Networks for Multi-task
  Learning", CVPR 2016): each task's map becomes a learnt linear mix of every task's map.
- :class:`CrossStitchNetwork`: one copy of a list of stages per task, stitched after each
  stage.
- :class:`SoftParameterSharing` (Duong et al. 2015): one copy of a module per task
  (a neck, a head), whose corresponding parameters are pulled together by an L2 penalty
  returned by ``loss()`` as ``soft_sharing.loss_l2`` (the ``<prefix>.`` convention of
  our multi-task losses).
"""
import copy
import itertools
import numbers
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule, ModuleDict
from mmengine.registry import MODELS
from torch import Tensor, nn

from ..utils import build_with_mmdet_fallback
from ...validation import is_int, non_negative_property

__all__ = ['CrossStitchUnit', 'CrossStitchNetwork', 'SoftParameterSharing']

OptCfg = Optional[Union[dict, List[dict]]]


def _build(owner: str, name: str, cfg: Any) -> nn.Module:
    """Build a module config (mmdet types found from any scope), naming the argument in
    errors."""
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError(f'{owner}: {name} must be a module config dict with a "type", but got '
                        f'{cfg!r}')
    try:
        return build_with_mmdet_fallback(copy.deepcopy(cfg))
    except KeyError as err:
        if 'registry' not in str(err):
            raise
        raise KeyError(f'{owner}: {name} type {cfg["type"]!r} is not a registered model in the '
                       'current scope; check the spelling, or give the scope explicitly '
                       "(e.g. 'mmdet.FPN')") from err


@MODELS.register_module()
class CrossStitchUnit(BaseModule):
    """Learnt linear mixing of the T task branches' maps (a cross-stitch unit).

    Output ``i`` is ``y_i = sum_j alpha[i, j] * x_j``; with ``channels`` set, the mixing
    is per channel: ``y_i[:, c] = sum_j alpha[i, j, c] * x_j[:, c]``. Every row of
    ``alpha`` starts at ``init_same`` on the diagonal (a task keeps mostly its own map)
    and ``(1 - init_same) / (T - 1)`` off it, so rows sum to 1.

    Args:
        num_tasks (int): Number of branches T (>= 2).
        channels (int, optional): C for per-channel mixing (``alpha`` of shape
            (T, T, C)); None for one scalar per pair (shape (T, T)). Defaults to None.
        init_same (float): Initial diagonal of ``alpha``, in [0, 1]. Defaults to 0.9.
        init_cfg (dict | list[dict], optional): Initialisation config. Defaults to None.

    Shapes:
        ``forward(x_1, ..., x_T)`` or ``forward([x_1, ..., x_T])``, every ``x_j`` of one
        shape (B, C, ...) -> tuple of T tensors of that shape.
    """

    def __init__(self,
                 num_tasks: int,
                 channels: Optional[int] = None,
                 init_same: float = 0.9,
                 init_cfg: OptCfg = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not is_int(num_tasks) or num_tasks < 2:
            raise ValueError(f'CrossStitchUnit: num_tasks must be an int >= 2, but got '
                             f'{num_tasks!r}')
        if channels is not None and (not is_int(channels) or channels < 1):
            raise ValueError(f'CrossStitchUnit: channels must be a positive int (per-channel '
                             f'mixing) or None, but got {channels!r}')
        if not isinstance(init_same, numbers.Real) or isinstance(init_same, bool) \
                or not 0.0 <= float(init_same) <= 1.0:
            raise ValueError(f'CrossStitchUnit: init_same must be a float in [0, 1], but got '
                             f'{init_same!r}')
        self.num_tasks, self.channels, self.init_same = int(num_tasks), channels, float(init_same)
        shape = (self.num_tasks, self.num_tasks) + ((channels, ) if channels else ())
        self.alpha = nn.Parameter(torch.empty(shape))
        self.reset_alpha()

    def reset_alpha(self) -> None:
        """Set ``alpha`` to ``init_same`` on the diagonal, the rest of each row evenly."""
        other = (1.0 - self.init_same) / (self.num_tasks - 1)
        eye = torch.eye(self.num_tasks)
        value = eye * self.init_same + (1 - eye) * other  # (T, T)
        if self.channels:
            value = value[..., None].expand(-1, -1, self.channels)
        with torch.no_grad():
            self.alpha.copy_(value)

    def init_weights(self) -> None:
        """Apply ``init_cfg`` if any; otherwise keep (reset) the cross-stitch start."""
        if self.init_cfg is None:
            self.reset_alpha()
        super().init_weights()

    def forward(self, *inputs: Union[Tensor, Sequence[Tensor]]) -> Tuple[Tensor, ...]:
        """Mix the branches (see the class docstring for shapes)."""
        xs = list(inputs[0]) if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)) \
            else list(inputs)
        if len(xs) != self.num_tasks or not all(isinstance(x, Tensor) for x in xs):
            raise ValueError(f'CrossStitchUnit: expects num_tasks={self.num_tasks} tensors, '
                             f'but got {[type(x).__name__ for x in xs]}')
        shapes = {tuple(x.shape) for x in xs}
        if len(shapes) > 1:
            raise ValueError(f'CrossStitchUnit: every branch map must have the same shape, but '
                             f'got {[tuple(x.shape) for x in xs]}')
        stacked = torch.stack(xs)  # (T, B, C, ...)
        if self.channels is None:
            out = torch.tensordot(self.alpha, stacked, dims=1)  # (T, B, C, ...)
        else:
            if stacked.dim() < 3 or stacked.shape[2] != self.channels:
                raise ValueError(f'CrossStitchUnit: per-channel mixing expects maps (B, '
                                 f'{self.channels}, ...), but got {tuple(xs[0].shape)}')
            flat = stacked.flatten(3) if stacked.dim() > 3 else stacked[..., None]
            out = torch.einsum('ijc,jbcm->ibcm', self.alpha, flat).reshape(stacked.shape)
        return tuple(out.unbind(0))

    def extra_repr(self) -> str:
        return (f'num_tasks={self.num_tasks}, channels={self.channels}, '
                f'init_same={self.init_same}')


@MODELS.register_module()
class CrossStitchNetwork(BaseModule):
    """T copies of a list of stages, with a :class:`CrossStitchUnit` after each stage.

    Branch ``t`` runs ``stages[0] -> stitch -> stages[1] -> stitch -> ...``; every stage
    is built once per branch (independent parameters), and each stage must map one
    tensor to one tensor of the same shape in every branch.

    Args:
        stages (list[dict]): Module configs of the stages, in order.
        num_tasks (int): Number of branches T (>= 2).
        channels (list[int | None], optional): Per-channel stitching after each stage
            (its output channels), or None entries / None for scalar stitching.
            Defaults to None.
        init_same (float): Initial diagonal of every stitch unit. Defaults to 0.9.
        init_cfg (dict | list[dict], optional): Initialisation config. Defaults to None.

    Shapes:
        ``forward(x)`` with one input shared by every branch, or ``forward([x_1, ...,
        x_T])`` -> tuple of T outputs of the last stage.
    """

    def __init__(self,
                 stages: Sequence[dict],
                 num_tasks: int,
                 channels: Optional[Sequence[Optional[int]]] = None,
                 init_same: float = 0.9,
                 init_cfg: OptCfg = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(stages, (list, tuple)) or not stages:
            raise TypeError(f'CrossStitchNetwork: stages must be a non-empty list of module '
                            f'configs, but got {stages!r}')
        if not is_int(num_tasks) or num_tasks < 2:
            raise ValueError(f'CrossStitchNetwork: num_tasks must be an int >= 2, but got '
                             f'{num_tasks!r}')
        if channels is None:
            channels = [None] * len(stages)
        if not isinstance(channels, (list, tuple)) or len(channels) != len(stages):
            raise ValueError(f'CrossStitchNetwork: channels must list one entry per stage '
                             f'({len(stages)}), but got {channels!r}')
        self.stitches = nn.ModuleList(CrossStitchUnit(num_tasks, c, init_same) for c in channels)
        self.num_tasks = int(num_tasks)
        self.branches = nn.ModuleList(
            nn.ModuleList(_build('CrossStitchNetwork', f'stages[{s}]', cfg)
                          for s, cfg in enumerate(stages)) for _ in range(self.num_tasks))

    def forward(self, x: Union[Tensor, Sequence[Tensor]]) -> Tuple[Tensor, ...]:
        """Run the stitched branches (see the class docstring for shapes)."""
        xs = [x] * self.num_tasks if isinstance(x, Tensor) else list(x)
        if len(xs) != self.num_tasks:
            raise ValueError(f'CrossStitchNetwork: expects one input or num_tasks='
                             f'{self.num_tasks} inputs, but got {len(xs)}')
        for s, stitch in enumerate(self.stitches):
            xs = list(stitch([branch[s](xt) for branch, xt in zip(self.branches, xs)]))
        return tuple(xs)


@MODELS.register_module()
class SoftParameterSharing(BaseModule):
    """One copy of a module per task, tied by an L2 penalty on their parameters.

    ``forward(x, task)`` runs the copy of ``task``. :meth:`loss` returns
    ``{'soft_sharing.loss_l2': l2_weight * sum_{a<b} sum_params ||theta_a - theta_b||^2}``,
    over every pair of tasks and every parameter (frozen ones included: they add a
    constant). Add it to the model's losses to pull the copies towards each other
    (hard sharing as ``l2_weight -> inf``, independent copies at 0). The copies are built
    (and initialised) independently. ``l2_weight`` is a float attribute, so
    :class:`CurriculumLearningHook` may schedule it.

    Example (a neck per task)::

        neck = dict(type='SoftParameterSharing', tasks=['person', 'animal'],
                    branch=dict(type='mmdet.FPN', in_channels=[128, 256, 512],
                                out_channels=64, num_outs=3), l2_weight=1e-3)

    Args:
        branch (dict): Config of the module copied per task (built through the root
            ``MODELS``; an unprefixed mmdet type also works outside the mmdet scope).
        tasks (list[str]): Task names (unique identifiers, >= 2).
        l2_weight (float): Weight of the penalty; finite, >= 0. Defaults to 1e-3.
        init_cfg (dict | list[dict], optional): Initialisation config. Defaults to None.
    """

    LOSS_KEY = 'soft_sharing.loss_l2'

    def __init__(self,
                 branch: dict,
                 tasks: Sequence[str],
                 l2_weight: float = 1e-3,
                 init_cfg: OptCfg = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(tasks, (list, tuple)) or len(tasks) < 2 \
                or not all(isinstance(t, str) and t.isidentifier() for t in tasks):
            raise ValueError('SoftParameterSharing: tasks must be a list of at least 2 task '
                             f'names (identifiers), but got {tasks!r}')
        if len(set(tasks)) != len(tasks):
            dup = sorted({t for t in tasks if list(tasks).count(t) > 1})
            raise ValueError(f'SoftParameterSharing: tasks must be unique, but {dup} appear '
                             f'more than once in {list(tasks)!r}')
        self.l2_weight = l2_weight
        self.tasks = list(tasks)
        self.branches = ModuleDict({t: _build('SoftParameterSharing', 'branch', branch)
                                    for t in self.tasks})
        self._check_same_structure()

    def _check_same_structure(self) -> None:
        layouts = {t: [(n, tuple(p.shape)) for n, p in b.named_parameters()]
                   for t, b in self.branches.items()}
        first = self.tasks[0]
        if not layouts[first]:
            name = type(self.branches[first]).__name__
            raise ValueError(f'SoftParameterSharing: branch {name} has no parameters to tie; '
                             'give a module with weights')
        for task, layout in layouts.items():
            if layout != layouts[first]:
                raise ValueError(f'SoftParameterSharing: the copies of branch for "{first}" and '
                                 f'"{task}" differ in structure ({len(layouts[first])} vs '
                                 f'{len(layout)} parameters); the branch config must build '
                                 'the same module every time')

    l2_weight = non_negative_property(
        'l2_weight', 'SoftParameterSharing: l2_weight',
        'Weight of the L2 penalty (float; may be changed between iterations).')

    def forward(self, x: Any, task: str) -> Any:
        """Run the copy of ``task`` on ``x`` (whatever the branch takes and returns)."""
        if task not in self.branches:
            raise KeyError(f'SoftParameterSharing: unknown task {task!r}; tasks: {self.tasks}')
        return self.branches[task](x)

    def loss(self) -> Dict[str, Tensor]:
        """The L2 penalty between every pair of copies, as ``{'soft_sharing.loss_l2': ...}``.

        Returns:
            dict[str, Tensor]: One scalar tensor, differentiable w.r.t. every copy.
        """
        params = [list(b.parameters()) for b in self.branches.values()]
        total = params[0][0].new_zeros(())
        for pa, pb in itertools.combinations(params, 2):
            for a, b in zip(pa, pb):
                total = total + (a - b).pow(2).sum()
        return {self.LOSS_KEY: total * self.l2_weight}
