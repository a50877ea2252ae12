"""The schedules of ``CurriculumLearningHook``: validated configs, each a pure function
``value(t)`` of its clock (see :class:`~.curriculum.CurriculumLearningHook` for the kinds)."""
import math
from collections.abc import Mapping
from typing import Optional, Sequence

from mtl_plugin.validation import is_finite_real, is_int

ROOTS = ('model', 'sampler', 'batch_sampler', 'dataset')
KINDS = {
    'step': dict(required=('milestones', 'values'), optional=()),
    'linear': dict(required=('start', 'end'), optional=('begin', 'end_at')),
    'cosine': dict(required=('start', 'end'), optional=('begin', 'end_at')),
    'dann': dict(required=(), optional=('gamma', 'scale', 'begin', 'end_at')),
}
COMMON_KEYS = ('param', 'name', 'by_epoch', 'type')


class _Schedule:
    """A validated schedule: a pure function ``value(t)`` of its clock."""

    def __init__(self, index: int, cfg: dict) -> None:
        self.index = index
        where = f'CurriculumLearningHook schedule {index}'
        if not isinstance(cfg, Mapping):
            raise TypeError(f'{where}: each schedule must be a dict, got {type(cfg).__name__}')
        cfg = dict(cfg)
        param = cfg.get('param')
        if not isinstance(param, str) or '.' not in param or \
                param.split('.', 1)[0] not in ROOTS or not all(param.split('.')):
            raise ValueError(f"{where}: 'param' must be a dotted path starting with one of "
                             f'{ROOTS}, e.g. "model.aux_head.loss_weight", got {param!r}')
        self.param = param
        self.root, *self.segments = param.split('.')
        self.name = cfg.get('name', param)
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"{where}: 'name' must be a non-empty str, got {self.name!r}")
        where = f'CurriculumLearningHook schedule {index} ({self.name!r})'
        self.where = where
        self.by_epoch = cfg.get('by_epoch', True)
        if not isinstance(self.by_epoch, bool):
            raise TypeError(f"{where}: 'by_epoch' must be True or False, got {self.by_epoch!r}")

        self.kind = self._parse_kind(cfg)
        if self.kind == 'step':
            self._parse_step(cfg)
        else:
            self._parse_curve(cfg)

    def _parse_kind(self, cfg: dict) -> str:
        """The schedule type, its keys checked against :data:`KINDS`."""
        where = self.where
        kind = cfg.get('type')
        if kind is None:
            if 'milestones' not in cfg:
                raise ValueError(f"{where}: give type= one of {sorted(KINDS)} (type defaults to "
                                 "'step' only when 'milestones' are given)")
            kind = 'step'
        if kind not in KINDS:
            raise ValueError(f'{where}: unknown type {kind!r}; use one of {sorted(KINDS)}')
        spec = KINDS[kind]
        allowed = set(COMMON_KEYS) | set(spec['required']) | set(spec['optional'])
        unknown = sorted(set(cfg) - allowed)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown} for type={kind!r}; allowed keys: "
                             f'{sorted(allowed)}')
        missing = [k for k in spec['required'] if k not in cfg]
        if missing:
            raise ValueError(f'{where}: type={kind!r} needs {missing}')
        return kind

    def _parse_step(self, cfg: dict) -> None:
        """``milestones`` and ``values`` of a ``'step'`` schedule."""
        where = self.where
        milestones, values = cfg['milestones'], cfg['values']
        if not isinstance(milestones, (list, tuple)) or \
                not all(is_int(m) and m >= 0 for m in milestones):
            raise ValueError(f"{where}: 'milestones' must be a list of non-negative ints "
                             f'(epochs or iterations), got {milestones!r}')
        if any(b <= a for a, b in zip(milestones, milestones[1:])):
            raise ValueError(f"{where}: 'milestones' must be strictly increasing, got "
                             f'{list(milestones)}; sort them and drop duplicates')
        if not isinstance(values, (list, tuple)) or len(values) != len(milestones) + 1:
            raise ValueError(
                f"{where}: 'values' needs len(milestones) + 1 = {len(milestones) + 1} "
                f'entries (the value before the first milestone, then one per milestone), '
                f'got {values!r}')
        self._check_finite('values', values)
        self.milestones = [int(m) for m in milestones]
        self.values = [float(v) for v in values]

    def _parse_curve(self, cfg: dict) -> None:
        """Values and ``[begin, end_at)`` of a ``'linear'`` / ``'cosine'`` / ``'dann'`` one."""
        where = self.where
        if self.kind in ('linear', 'cosine'):
            self._check_finite('start', [cfg['start']])
            self._check_finite('end', [cfg['end']])
            self.start, self.end = float(cfg['start']), float(cfg['end'])
        else:
            self._check_finite('gamma', [cfg.get('gamma', 10.0)])
            self._check_finite('scale', [cfg.get('scale', 1.0)])
            self.gamma = float(cfg.get('gamma', 10.0))
            self.scale = float(cfg.get('scale', 1.0))
        self.begin = cfg.get('begin', 0)
        self.end_at = cfg.get('end_at')
        if not (is_int(self.begin) and self.begin >= 0):
            raise ValueError(f"{where}: 'begin' must be a non-negative int, got {self.begin!r}")
        if self.end_at is not None:
            if not is_int(self.end_at):
                raise ValueError(f"{where}: 'end_at' must be an int (or None for the end of "
                                 f'training), got {self.end_at!r}')
            self._check_range(self.end_at)

    def _check_finite(self, key: str, values: Sequence) -> None:
        bad = [v for v in values if not is_finite_real(v)]
        if bad:
            raise ValueError(f'{self.where}: {key!r} must hold finite numbers, got {bad}; '
                             'replace NaN/inf/non-numbers with finite floats')

    def _check_range(self, end_at: int) -> None:
        if self.begin >= end_at:
            raise ValueError(f"{self.where}: needs begin < end_at, got begin={self.begin}, "
                             f'end_at={end_at}; the schedule runs over [begin, end_at)')

    def finalize(self, runner) -> None:
        """Fill ``end_at=None`` with the training length (max_epochs or max_iters)."""
        self.total = int(runner.max_epochs if self.by_epoch else runner.max_iters)
        if self.kind != 'step':
            self.stop = self.total if self.end_at is None else int(self.end_at)
            self._check_range(self.stop)

    def clock(self, runner) -> int:
        return int(runner.epoch if self.by_epoch else runner.iter)

    def value(self, t: int) -> float:
        if self.kind == 'step':
            return self.values[sum(1 for m in self.milestones if m <= t)]
        progress = min(max((t - self.begin) / (self.stop - self.begin), 0.0), 1.0)
        if self.kind == 'linear':
            return self.start + (self.end - self.start) * progress
        if self.kind == 'cosine':
            return self.end + (self.start - self.end) * (1 + math.cos(math.pi * progress)) / 2
        return self.scale * (2.0 / (1.0 + math.exp(-self.gamma * progress)) - 1.0)



def schedule_value(schedule: dict, t: int, total: Optional[int] = None) -> float:
    """Value of one schedule dict at clock ``t`` (``total``: max_epochs/max_iters for
    ``end_at=None``); handy in tests and for plotting a schedule."""
    s = _Schedule(0, schedule)
    if s.kind != 'step':
        if s.end_at is None and total is None:
            raise ValueError(f'{s.where}: give total= (training length) when end_at is None')
        s.stop = int(s.end_at if s.end_at is not None else total)
        s._check_range(s.stop)
    return s.value(t)


__all__ = ['ROOTS', 'KINDS', 'schedule_value']
