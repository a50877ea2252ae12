"""``StagedTrainingHook``: freeze / unfreeze parts of the model at given epochs or iterations.

Example: train the heads first on a frozen backbone, then unfreeze the last backbone stage
at epoch 4 and the whole backbone at epoch 8::

    custom_hooks = [dict(type='StagedTrainingHook', stages=[
        dict(begin=0, freeze=['backbone']),
        dict(begin=4, unfreeze=['backbone.layer4']),
        dict(begin=8, unfreeze=['backbone']),
    ])]

Per-task learning rates are MMEngine's own ``paramwise_cfg`` (no hook needed)::

    optim_wrapper = dict(
        optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
        paramwise_cfg=dict(custom_keys={
            'heads.person': dict(lr_mult=0.5),
            'backbone': dict(lr_mult=0.1)}))
"""
from collections.abc import Mapping
from typing import Dict, List, Optional, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch import nn

from ...validation import suggest

DATA_BATCH = Optional[object]
EVAL_MODES = ('norm', 'all', 'none')


def _is_norm(module: nn.Module) -> bool:
    """Layers with running statistics (BatchNorm, SyncBN, InstanceNorm with stats, mmcv's)."""
    return isinstance(module, nn.modules.batchnorm._NormBase) or \
        'BatchNorm' in type(module).__name__


@HOOKS.register_module()
class StagedTrainingHook(Hook):
    """Freeze and unfreeze modules (dotted names in the unwrapped model) in stages.

    Each stage ``dict(begin=<epoch or iter>, freeze=[...], unfreeze=[...])`` applies from
    its ``begin`` on (0-based epoch / global iteration about to run); stages accumulate
    in order, and within a stage shorter paths go first, so
    ``dict(begin=0, freeze=['backbone'], unfreeze=['backbone.layer4'])`` trains only
    ``layer4`` of the backbone. Before the first stage the model is as built.

    - ``freeze``: ``requires_grad=False`` and ``.grad = None`` on the module's parameters,
      and its norm layers in eval mode so their running statistics stop changing
      (``eval_mode='all'``: the whole module in eval mode, e.g. dropout too; ``'none'``:
      modes untouched). The runner calls ``model.train()`` every epoch (and after each
      validation); the eval modes are re-applied before every training iteration.
    - ``unfreeze``: ``requires_grad=True`` and the train mode of the model.

    The optimizer keeps all its parameters and param groups: torch optimizers skip a
    parameter whose ``.grad`` is ``None`` (no momentum, no weight decay), so frozen
    parameters stay bit-identical, and unfrozen ones resume with their optimizer state.
    The stage of the current clock is replayed in ``before_train``, so ``--resume``
    restores the right frozen set (``requires_grad`` is not in checkpoints).

    Under DDP, changing ``requires_grad`` after wrapping needs
    ``model_wrapper_cfg=dict(type='MMDistributedDataParallel',
    find_unused_parameters=True)``, and DDP only synchronises parameters that required
    gradients when the model was wrapped: freeze with this hook (stage ``begin=0``)
    rather than in the model config (e.g. a backbone's ``frozen_stages``) what a later
    stage unfreezes. Both are checked.

    Per-task learning rates are MMEngine's ``paramwise_cfg``, e.g.::

        optim_wrapper = dict(
            optimizer=dict(type='SGD', lr=0.01, momentum=0.9),
            paramwise_cfg=dict(custom_keys={
                'heads.person': dict(lr_mult=0.5),
                'backbone': dict(lr_mult=0.1)}))

    Args:
        stages (list[dict]): ``begin`` (int >= 0, strictly increasing), ``freeze`` and
            ``unfreeze`` (lists of module names; a single str is accepted).
        by_epoch (bool): ``begin`` counts epochs (True) or iterations. Defaults to True.
        eval_mode (str): What a freeze puts in eval mode: ``'norm'`` (default),
            ``'all'`` or ``'none'``.
    """

    priority = 'NORMAL'

    def __init__(self, stages: List[dict], by_epoch: bool = True,
                 eval_mode: str = 'norm') -> None:
        if not isinstance(by_epoch, bool):
            raise TypeError(f'StagedTrainingHook: by_epoch must be True or False, got {by_epoch!r}')
        if eval_mode not in EVAL_MODES:
            raise ValueError(f'StagedTrainingHook: eval_mode must be one of {EVAL_MODES}, '
                             f'got {eval_mode!r}')
        if not isinstance(stages, (list, tuple)) or not stages:
            raise ValueError(f'StagedTrainingHook needs a non-empty list of stage dicts, got '
                             f'{stages!r}')
        self.by_epoch = by_epoch
        self.eval_mode = eval_mode
        self.stages: List[dict] = []
        for i, stage in enumerate(stages):
            where = f'StagedTrainingHook stage {i}'
            if not isinstance(stage, Mapping):
                raise TypeError(f'{where}: must be a dict, got {type(stage).__name__}')
            unknown = sorted(set(stage) - {'begin', 'freeze', 'unfreeze'})
            if unknown:
                raise ValueError(f"{where}: unknown key(s) {unknown}; a stage is dict(begin=..., "
                                 'freeze=[...], unfreeze=[...])')
            begin = stage.get('begin')
            if not isinstance(begin, int) or isinstance(begin, bool) or begin < 0:
                raise ValueError(f"{where}: 'begin' must be a non-negative int "
                                 f"({'epoch' if by_epoch else 'iteration'}), got {begin!r}")
            lists = {}
            for key in ('freeze', 'unfreeze'):
                names = stage.get(key, [])
                names = [names] if isinstance(names, str) else names
                if not isinstance(names, (list, tuple)) or \
                        not all(isinstance(n, str) for n in names):
                    raise TypeError(f'{where}: {key!r} must be a list of module names, '
                                    f'got {names!r}')
                dup = sorted({n for n in names if list(names).count(n) > 1})
                if dup:
                    raise ValueError(f'{where}: {key!r} lists {dup} more than once')
                lists[key] = list(names)
            both = sorted(set(lists['freeze']) & set(lists['unfreeze']))
            if both:
                raise ValueError(f'{where}: {both} both frozen and unfrozen; keep each module '
                                 'in one list (nested paths, e.g. freeze backbone and unfreeze '
                                 'backbone.layer4, are fine)')
            if not lists['freeze'] and not lists['unfreeze']:
                raise ValueError(f"{where}: give 'freeze' and/or 'unfreeze' module names")
            if self.stages and begin <= self.stages[-1]['begin']:
                raise ValueError(f"{where}: stages must be sorted by strictly increasing 'begin', "
                                 f"got {begin} after {self.stages[-1]['begin']}; sort them and "
                                 'merge stages with the same begin')
            self.stages.append(dict(begin=begin, **lists))
        self._model: Optional[nn.Module] = None
        self._applied = 0  # number of stages applied
        self._frozen_modes: Dict[str, nn.Module] = {}  # name -> module kept in eval mode

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _unwrap(runner) -> nn.Module:
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def _clock(self, runner) -> int:
        return int(runner.epoch if self.by_epoch else runner.iter)

    def _check_paths(self, model: nn.Module) -> None:
        names = [n for n, _ in model.named_modules() if n]
        known = set(names)
        for i, stage in enumerate(self.stages):
            for key in ('freeze', 'unfreeze'):
                for path in stage[key]:
                    if path not in known:
                        close = suggest(path, names, n=5, cutoff=0.5)
                        parent = path.rsplit('.', 1)[0] if '.' in path else ''
                        children = [n for n in names if n.startswith(parent + '.') and
                                    n.count('.') == parent.count('.') + 1] if parent in known \
                            else [n for n in names if '.' not in n]
                        raise ValueError(
                            f'StagedTrainingHook stage {i}: {type(model).__name__} has no module '
                            f'{path!r} (in {key!r}). Close names: {close or "none"}; modules '
                            f"under {parent or 'the model'!r}: {children[:30]}")

    @staticmethod
    def _stage_ops(stage: dict) -> List[Tuple[str, str]]:
        ops = [(p, 'freeze') for p in stage['freeze']] + \
              [(p, 'unfreeze') for p in stage['unfreeze']]
        return sorted(ops, key=lambda op: op[0].count('.'))  # parents first (stable)

    def _apply_stage(self, model: nn.Module, stage: dict) -> None:
        for path, op in self._stage_ops(stage):
            module = model.get_submodule(path)
            frozen = op == 'freeze'
            for param in module.parameters():
                param.requires_grad_(not frozen)
                if frozen:
                    param.grad = None
            for name, sub in module.named_modules(prefix=path):
                if frozen:
                    if self.eval_mode == 'all' or (self.eval_mode == 'norm' and _is_norm(sub)):
                        self._frozen_modes[name] = sub
                        sub.training = False  # not recursive: each submodule is listed
                elif name in self._frozen_modes:
                    del self._frozen_modes[name]
                    sub.training = model.training

    def _keep_eval(self) -> None:
        # not ``module.eval()``: with eval_mode='all', a frozen parent's eval() would also
        # switch an unfrozen child; every frozen submodule is listed on its own
        for module in self._frozen_modes.values():
            module.training = False

    def _advance(self, runner, replay: bool) -> None:
        t = self._clock(runner)
        model = self._model
        switched = []
        while self._applied < len(self.stages) and self.stages[self._applied]['begin'] <= t:
            stage = self.stages[self._applied]
            self._apply_stage(model, stage)
            switched.append(stage)
            self._applied += 1
        if switched:
            unit = 'epoch' if self.by_epoch else 'iter'
            n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
            n_all = sum(p.numel() for p in model.parameters())
            what = '; '.join(f"begin={s['begin']}: freeze {s['freeze']}, unfreeze {s['unfreeze']}"
                             for s in (switched if not replay else switched[-1:]))
            runner.logger.info(
                f"StagedTrainingHook: {'applied at' if replay else 'switched at'} {unit} {t} "
                f"({what}{f'; {len(switched)} stage(s) replayed' if replay else ''}); "
                f'{n_train}/{n_all} parameters trainable')
        self._keep_eval()

    def _check_ddp(self, runner, model: nn.Module) -> None:
        wrapper = runner.model
        if not isinstance(wrapper, nn.parallel.DistributedDataParallel):
            return
        if not wrapper.find_unused_parameters:
            raise ValueError("StagedTrainingHook under DDP needs model_wrapper_cfg=dict(type="
                             "'MMDistributedDataParallel', find_unused_parameters=True): frozen "
                             'parameters get no gradient')
        tracked = {id(p) for p in wrapper.parameters() if p.requires_grad}
        for i, stage in enumerate(self.stages):
            for path in stage['unfreeze']:
                untracked = [n for n, p in model.get_submodule(path).named_parameters()
                             if id(p) not in tracked]
                if untracked:
                    raise ValueError(
                        f'StagedTrainingHook stage {i}: unfreezes {path!r}, but DDP was wrapped '
                        f'while {untracked[:5]} did not require gradients, so DDP would never '
                        'synchronise them; freeze them with this hook (a stage with begin=0) '
                        "instead of in the model config (e.g. frozen_stages=-1)")

    # ------------------------------------------------------------------ stages
    def before_train(self, runner) -> None:
        """Check the stages against the model and apply those of the (resumed) clock."""
        from mmengine.runner import IterBasedTrainLoop
        if self.by_epoch and isinstance(runner.train_loop, IterBasedTrainLoop):
            raise ValueError('StagedTrainingHook: by_epoch=True, but training is iteration-based; '
                             'set by_epoch=False and give stage begins in iterations')
        model = self._unwrap(runner)
        self._check_paths(model)
        self._check_ddp(runner, model)
        total = runner.max_epochs if self.by_epoch else runner.max_iters
        late = [s['begin'] for s in self.stages if s['begin'] >= total]
        if late:
            unit = 'epochs' if self.by_epoch else 'iters'
            runner.logger.warning(f'StagedTrainingHook: stages beginning at {late} never run '
                                  f'(training has {total} {unit})')
        self._model = model
        self._applied = 0
        self._frozen_modes = {}
        self._advance(runner, replay=True)

    def before_train_epoch(self, runner) -> None:
        """Switch epoch stages."""
        if self.by_epoch:
            self._advance(runner, replay=False)

    def before_train_iter(self, runner, batch_idx: int, data_batch: DATA_BATCH = None) -> None:
        """Switch iteration stages; keep frozen norm layers in eval mode after model.train()."""
        if not self.by_epoch:
            self._advance(runner, replay=False)
        else:
            self._keep_eval()

    @property
    def frozen_eval_modules(self) -> List[str]:
        """Names of the modules kept in eval mode now."""
        return sorted(self._frozen_modes)


__all__ = ['StagedTrainingHook']
