"""``CurriculumLearningHook``: drive numeric values (loss weights, sampler weights) in training.

Example (one config line; ``type`` defaults to ``'step'`` when ``milestones`` are given)::

    custom_hooks = [dict(type='CurriculumLearningHook', schedules=[dict(
        param='model.heads.person.loss_cls.group_id_weight.1',
        milestones=[50, 100], values=[1.0, 1.5, 2.0])])]

More kinds::

    schedules=[
        # linear ramp of an auxiliary loss weight over epochs 0..10, constant outside
        dict(param='model.aux_head.loss_weight', type='linear', start=0.0, end=1.0,
             begin=0, end_at=10),
        # cosine interpolation of a sampler's group weight, iteration clock; the sampler's
        # ``set_group_weights(new_dict)`` is called with the updated dict
        dict(param='sampler.group_weights.1', type='cosine', start=1.0, end=3.0,
             begin=0, end_at=5000, by_epoch=False, name='animal_weight'),
        # DANN gradient-reversal coefficient 2 / (1 + exp(-gamma * p)) - 1, p in [0, 1]
        dict(param='model.grl.lambd', type='dann', gamma=10.0, scale=1.0, by_epoch=False),
    ]
"""
import copy
import math
from collections.abc import Mapping, MutableMapping
from typing import Any, Dict, List, Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from mtl_plugin.groups import Groups, normalize_group_key
from mtl_plugin.validation import is_finite_real, is_int, suggest
from ...schedules import _Schedule, schedule_value

DATA_BATCH = Optional[Any]

#: dict attributes keyed by group: their path segment is a group id ('1' == 1) or name
GROUP_KEYED = ('group_id_weight', 'group_weights', 'group_ratios', 'oversample', 'undersample')


def _int_key(segment: str) -> Optional[int]:
    try:
        return int(segment)
    except ValueError:
        return None


def _available(obj: Any) -> List[str]:
    """Names one can step into from ``obj`` (for error messages)."""
    if isinstance(obj, Mapping):
        return [repr(k) for k in obj.keys()]
    if isinstance(obj, (list, tuple)):
        return [str(i) for i in range(len(obj))]
    names = []
    if isinstance(obj, torch.nn.Module):
        names += list(obj._modules) + list(obj._parameters) + list(obj._buffers)
    names += [k for k in getattr(obj, '__dict__', {}) if not k.startswith('_')]
    names += [k for k in dir(type(obj)) if not k.startswith('_')
              and isinstance(getattr(type(obj), k, None), property)]
    return list(dict.fromkeys(names))


class _Step:
    """One step of a resolved path: ``container[key]`` (``item``), ``container.key``
    (``attr``), or a group ``container[key]`` that the dict does not list yet (``group``,
    whose value is the default weight 1.0)."""

    __slots__ = ('container', 'key', 'kind')

    def __init__(self, container: Any, key: Any, kind: str) -> None:
        self.container, self.key, self.kind = container, key, kind

    def get(self) -> Any:
        if self.kind == 'group':
            return self.container.get(self.key, 1.0)
        return getattr(self.container, self.key) if self.kind == 'attr' else \
            self.container[self.key]


@HOOKS.register_module()
class CurriculumLearningHook(Hook):
    """Schedule numeric values of the model, the train sampler or dataset over training.

    Each schedule dict drives one value:

    - ``param``: dotted path from a root: ``model.`` (the unwrapped model), ``sampler.``,
      ``batch_sampler.`` (the train dataloader's) or ``dataset.`` (its dataset). Each
      segment is an attribute or a dict key (tried as str, then as int: group ids are
      ints) or a list index. In a group-keyed dict (``group_id_weight``,
      ``group_weights``, ``group_ratios``, ``oversample``, ``undersample``) the segment is
      a group id (``'1'`` and ``1`` are the same key) or name, checked against the train
      dataset's groups: an unknown group fails before the first iteration, and a group
      the dict does not list yet is added (its weight was the default 1.0). When the value
      sits in a dict attribute ``<attr>`` of an object with a ``set_<attr>(new_dict)``
      method (a sampler's ``set_group_weights``, a group-weighted loss's
      ``set_group_id_weight``), that method is called with an updated copy of the dict, so
      the object can validate and recompute. A 1-element tensor (parameter / buffer) is
      filled in place.
    - ``by_epoch`` (default True): the clock is ``runner.epoch`` (0-based epoch about to
      run) or ``runner.iter`` (0-based global iteration about to run).
    - ``type``:

      - ``'step'`` (default when ``milestones`` are given): ``milestones=[50, 100]``,
        ``values=[1.0, 1.5, 2.0]``; value = ``values[#milestones <= t]``.
      - ``'linear'`` / ``'cosine'``: ``start``, ``end`` (values), ``begin`` (default 0),
        ``end_at`` (default: max_epochs / max_iters); interpolation over
        ``[begin, end_at]``, constant outside. As with MMEngine's parameter schedulers,
        the default ``end_at`` is the training length, so ``end`` itself is reached only
        after the last epoch / iteration; give ``end_at=max_epochs - 1`` to train the last
        epoch at ``end``.
      - ``'dann'``: ``scale * (2 / (1 + exp(-gamma * p)) - 1)`` with ``p`` the progress in
        [0, 1] over ``[begin, end_at]`` (defaults: the whole training); ``gamma=10``,
        ``scale=1`` (the gradient-reversal coefficient of Ganin & Lempitsky).
    - ``name`` (default: ``param``): the value is logged every iteration as the scalar
      ``train/curriculum/<name>`` of the message hub (log line, TensorBoard).

    Values are a pure function of the clock, so ``--resume`` recomputes them; they are
    applied in ``before_train`` (after resume), ``before_train_epoch`` (epoch clocks) and
    ``before_train_iter`` (iteration clocks), and written only when they change (a
    sampler's setter is not called every iteration for an unchanged value). Checkpoints
    keep the last applied values under ``checkpoint['curriculum']``; on resume they are
    compared with the configured schedules, and a changed schedule is reported.

    All paths are resolved and checked in ``before_train``, so a typo fails before the
    first iteration. Note: ``dataset.`` values reach dataloader worker processes only
    when workers are re-created (``persistent_workers=False``), i.e. once per epoch.

    Args:
        schedules (list[dict]): The schedules, see above.
    """

    priority = 'HIGH'  # before NORMAL hooks that may read the values in the same stage

    def __init__(self, schedules: List[dict]) -> None:
        if not isinstance(schedules, (list, tuple)) or not schedules:
            raise ValueError('CurriculumLearningHook needs a non-empty list of schedule dicts, '
                             f'got {schedules!r}')
        self.schedules = [_Schedule(i, s) for i, s in enumerate(schedules)]
        for attr in ('name', 'param'):
            seen: Dict[str, int] = {}
            for s in self.schedules:
                key = getattr(s, attr)
                if key in seen:
                    raise ValueError(f'CurriculumLearningHook schedules {seen[key]} and {s.index} '
                                     f'share the {attr} {key!r}; give each value one schedule '
                                     "(and distinct 'name's)")
                seen[key] = s.index
        self.current: Dict[str, float] = {}
        self._clocks: Dict[str, int] = {}
        self._loaded: Optional[dict] = None
        self._loaded_samplers: Optional[dict] = None

    # ------------------------------------------------------------------ path resolution
    @staticmethod
    def _roots(runner) -> Dict[str, Any]:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        roots: Dict[str, Any] = dict(model=model)
        loader = runner.train_dataloader
        for key in ('sampler', 'batch_sampler', 'dataset'):
            obj = getattr(loader, key, None)
            if obj is not None:
                roots[key] = obj
        return roots

    def _resolve(self, schedule: _Schedule, roots: Dict[str, Any]) -> List[_Step]:
        if schedule.root not in roots:
            raise ValueError(f'{schedule.where}: the train dataloader has no {schedule.root!r}; '
                             f'available roots: {sorted(roots)}')
        obj = roots[schedule.root]
        steps: List[_Step] = []
        done = [schedule.root]
        for segment in schedule.segments:
            step = None
            if isinstance(obj, Mapping) and steps and steps[-1].kind == 'attr' and \
                    steps[-1].key in GROUP_KEYED:
                step = self._group_step(schedule, obj, segment, roots)
            elif isinstance(obj, Mapping):
                if segment in obj:
                    step = _Step(obj, segment, 'item')
                elif _int_key(segment) is not None and _int_key(segment) in obj:
                    step = _Step(obj, _int_key(segment), 'item')
            elif isinstance(obj, (list, tuple)):
                idx = _int_key(segment)
                if idx is not None and -len(obj) <= idx < len(obj):
                    step = _Step(obj, idx, 'item')
            elif hasattr(obj, segment):
                step = _Step(obj, segment, 'attr')
            if step is None:
                avail = _available(obj)
                close = suggest(segment, [a.strip("'") for a in avail], n=3)
                hint = f' Did you mean {close}?' if close else ''
                shown = ', '.join(avail[:40]) + (', ...' if len(avail) > 40 else '')
                raise ValueError(
                    f"{schedule.where}: cannot resolve {schedule.param!r}: "
                    f"{type(obj).__name__} at {'.'.join(done)!r} has no attribute or key "
                    f'{segment!r}.{hint} Available: [{shown}]')
            steps.append(step)
            obj = step.get()
            done.append(segment)
        last = steps[-1]
        if isinstance(last.container, tuple):
            raise TypeError(f'{schedule.where}: {schedule.param!r} is in a tuple, which cannot be '
                            'changed; point the schedule at a list, dict or attribute')
        if isinstance(last.container, Mapping) and \
                not isinstance(last.container, MutableMapping) and self._setter(steps) is None:
            raise TypeError(f'{schedule.where}: {schedule.param!r} is in a read-only mapping '
                            'and its owner has no set_<attr>(new_dict) method')
        value = last.get()
        if not (is_finite_real(value) or (isinstance(value, torch.Tensor) and value.numel() == 1
                                    and value.is_floating_point())):
            raise TypeError(f'{schedule.where}: {schedule.param!r} holds {type(value).__name__} '
                            f'{repr(value)[:60]}; schedules drive numeric values (int, float, or a '
                            '1-element float tensor) only')
        return steps

    @staticmethod
    def _group_step(schedule: _Schedule, obj: Mapping, segment: str,
                    roots: Dict[str, Any]) -> Optional[_Step]:
        """The entry of a group-keyed dict (``...group_weights.<group>``) a segment names.

        The segment is read as every group key (``'1'`` is id 1, else a name) and, when the
        train dataset knows its groups, resolved against them: an unknown group is an
        ``UnknownGroupError`` before the first iteration, and a known group the dict does
        not list yet is added (its current value is the default weight 1.0).
        """
        owner, what = schedule.where, repr(schedule.param)
        key = normalize_group_key(segment, what, owner)
        try:
            groups = Groups.from_dataset(roots.get('dataset'), owner)
        except TypeError:
            groups = None
        if groups is None:  # no groups to check against: match the normalised keys
            match = [k for k in obj if normalize_group_key(k, what, owner) == key]
            return _Step(obj, match[0], 'item') if match else None
        gid = groups.resolve(segment, what, owner)
        for k in obj:
            norm = normalize_group_key(k, what, owner)
            if norm == gid or (isinstance(norm, str) and norm in groups.names
                               and groups.id_of(norm) == gid):
                return _Step(obj, k, 'item')
        return _Step(obj, gid, 'group')

    @staticmethod
    def _setter(steps: List[_Step]):
        """``set_<attr>`` of the object owning the dict that holds the value, if any."""
        if len(steps) >= 2 and steps[-1].kind in ('item', 'group') and \
                steps[-2].kind == 'attr' and \
                isinstance(steps[-1].container, Mapping):
            setter = getattr(steps[-2].container, f'set_{steps[-2].key}', None)
            if callable(setter):
                return setter
        return None

    def _write(self, steps: List[_Step], value: float) -> bool:
        """Write ``value``; return whether anything changed."""
        last = steps[-1]
        current = last.get()
        if isinstance(current, torch.Tensor):
            if current.item() == value:
                return False
            with torch.no_grad():
                current.fill_(value)
            return True
        if is_int(current) and float(value).is_integer():
            value = int(value)
        if current == value and type(current) is type(value):
            return False
        setter = self._setter(steps)
        if setter is not None:
            new = copy.copy(last.container) if isinstance(last.container, MutableMapping) \
                else dict(last.container)
            new[last.key] = value
            setter(new)
        elif last.kind == 'attr':
            setattr(last.container, last.key, value)
        else:
            last.container[last.key] = value
        return True

    # ------------------------------------------------------------------ application
    def _apply(self, runner, schedules: List[_Schedule]) -> None:
        roots = self._roots(runner)
        for s in schedules:
            t = s.clock(runner)
            value = s.value(t)
            changed = self._write(self._resolve(s, roots), value)
            # log switches (not every step of an iteration-clock ramp)
            if changed and s.name in self.current and (s.by_epoch or s.kind == 'step'):
                runner.logger.info(f'CurriculumLearningHook: {s.name} = {value:.6g} '
                                   f"at {'epoch' if s.by_epoch else 'iter'} {t}")
            self.current[s.name] = value
            self._clocks[s.name] = t

    def before_train(self, runner) -> None:
        """Validate every path, then apply the values of the (possibly resumed) clock."""
        from mmengine.runner import IterBasedTrainLoop
        roots = self._roots(runner)
        for s in self.schedules:
            if s.by_epoch and isinstance(runner.train_loop, IterBasedTrainLoop):
                raise ValueError(f'{s.where}: by_epoch=True, but training is iteration-based '
                                 '(train_cfg by_epoch=False); set by_epoch=False and give '
                                 'milestones/begin/end_at in iterations')
            s.finalize(runner)
            self._resolve(s, roots)
            if s.root == 'dataset' and getattr(runner.train_dataloader, 'num_workers', 0) > 0 \
                    and (not s.by_epoch or
                         getattr(runner.train_dataloader, 'persistent_workers', False)):
                runner.logger.warning(
                    f'{s.where}: {s.param!r} changes in the main process, but dataloader '
                    'workers hold copies of the dataset; it reaches them only when workers '
                    'are re-created each epoch (persistent_workers=False, by_epoch=True)')
        self._check_loaded(runner)
        self._restore_samplers(runner)  # before the loop skips the batches already trained
        self.current.clear()
        self._apply(runner, self.schedules)
        self._keep_current_in_log(runner)
        runner.logger.info('CurriculumLearningHook: ' + ', '.join(
            f'{name} = {v:.6g}' for name, v in self.current.items()))

    def before_train_epoch(self, runner) -> None:
        """Apply epoch-clock schedules."""
        self._apply(runner, [s for s in self.schedules if s.by_epoch])

    def before_train_iter(self, runner, batch_idx: int, data_batch: DATA_BATCH = None) -> None:
        """Apply iteration-clock schedules and log every current value."""
        self._apply(runner, [s for s in self.schedules if not s.by_epoch])
        for name, value in self.current.items():
            runner.message_hub.update_scalar(f'train/curriculum/{name}', value)

    def _keep_current_in_log(self, runner) -> None:
        """Show the current value, not a window mean (names matching e.g. 'loss' are averaged)."""
        proc = getattr(runner, 'log_processor', None)
        pattern = getattr(proc, 'mean_pattern', None)
        if proc is None or pattern is None:
            return
        sources = {c.get('data_src') for c in proc.custom_cfg}
        for name in self.current:
            key = f'curriculum/{name}'
            if pattern.search(key) is not None and key not in sources:
                proc.custom_cfg.append(dict(data_src=key, method_name='current'))

    # ------------------------------------------------------------------ checkpoints
    def _stateful_samplers(self, runner) -> Dict[str, Any]:
        """The scheduled train samplers that record what they drew (``state_dict``)."""
        roots = {s.root for s in self.schedules}
        return {k: v for k, v in self._roots(runner).items()
                if k in roots and k != 'model' and callable(getattr(v, 'state_dict', None))
                and callable(getattr(v, 'load_state_dict', None))}

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store the last applied values with their clocks, and the scheduled samplers'
        records (the weights each of their chunks was drawn with)."""
        checkpoint['curriculum'] = {
            name: dict(value=float(v), clock=int(self._clocks[name]))
            for name, v in self.current.items()}
        samplers = self._stateful_samplers(runner)
        if samplers:
            checkpoint['curriculum_samplers'] = {k: v.state_dict() for k, v in samplers.items()}

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the stored values, to check them against the schedules on resume."""
        resuming = getattr(runner, '_resume', False)
        self._loaded = checkpoint.get('curriculum') if resuming else None
        self._loaded_samplers = checkpoint.get('curriculum_samplers') if resuming else None

    def _restore_samplers(self, runner) -> None:
        """On resume, before any batch is drawn: the samplers redraw what they drew."""
        stored = getattr(self, '_loaded_samplers', None) or {}
        for key, sampler in self._stateful_samplers(runner).items():
            if key in stored:
                sampler.load_state_dict(stored[key])
        self._loaded_samplers = None

    def _check_loaded(self, runner) -> None:
        if not self._loaded:
            return
        by_name = {s.name: s for s in self.schedules}
        for name, state in self._loaded.items():
            s = by_name.get(name)
            if s is None:
                runner.logger.warning(f'CurriculumLearningHook: the checkpoint has a value for '
                                      f'{name!r}, which no schedule drives any more')
                continue
            now = s.value(int(state['clock']))
            if not math.isclose(now, float(state['value']), rel_tol=1e-9, abs_tol=1e-12):
                runner.logger.warning(
                    f'{s.where}: the schedule changed since the checkpoint: at clock '
                    f"{state['clock']} it gave {state['value']:.6g}, now {now:.6g}; the "
                    'configured schedule is used')
        self._loaded = None


__all__ = ['CurriculumLearningHook', 'schedule_value']
