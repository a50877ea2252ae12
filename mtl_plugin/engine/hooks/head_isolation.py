"""``HeadIsolationHook``: a head none of whose samples took part in a step is not updated."""
from typing import Dict, List, Optional

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmengine.registry import HOOKS
from torch import nn


@HOOKS.register_module()
class HeadIsolationHook(Hook):
    """Keep idle heads bit-identical: parameters, buffers and optimizer state.

    PyTorch optimizers skip a parameter whose ``.grad`` is ``None``: no momentum, no
    weight decay, no state change. Our multi-head models run a head only on its own
    samples, so an idle head gets no gradient; this hook makes that a guarantee. Just
    before every ``optimizer.step()`` (a torch step pre-hook, so it composes with
    ``AmpOptimWrapper``, gradient accumulation and gradient clipping) it

    1. takes the heads that ran a training forward since the last step (every
       micro-batch of an accumulation window), from the model's routing;
    2. under DDP, all-reduces these flags (max), so a head used on any rank counts as
       active on all ranks (DDP has averaged its gradient over ranks);
    3. sets ``.grad = None`` on every parameter of the other heads.

    Zeroing a loss instead is not enough: a zero gradient still lets momentum and weight
    decay move the parameters. Under DDP the model must be wrapped with
    ``find_unused_parameters=True`` (checked here before training starts).

    It only isolates: label spaces and the heads-vs-groups checks belong to the model,
    which adopts them from the samples it meets (and its checkpoint), hook or no hook.

    Args:
        check_ddp (bool): Fail early when DDP lacks ``find_unused_parameters``.
            Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, check_ddp: bool = True) -> None:
        self.check_ddp = check_ddp
        self._model: Optional[nn.Module] = None
        self._handles: List = []

    @staticmethod
    def _unwrap(runner) -> nn.Module:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not (hasattr(model, 'head_modules') and hasattr(model, 'consume_active_heads')):
            raise TypeError(f'HeadIsolationHook needs a multi-head model (MultiHeadDetector, '
                            f'MultiHeadPoseEstimator), but got {type(model).__name__}')
        return model

    def before_train(self, runner) -> None:
        """Check the DDP settings; hook into the optimizer(s)."""
        model = self._unwrap(runner)
        if self.check_ddp and is_model_wrapper(runner.model) and \
                isinstance(runner.model, nn.parallel.DistributedDataParallel) and \
                not runner.model.find_unused_parameters:
            raise ValueError('multi-head training under DDP needs model_wrapper_cfg='
                             "dict(type='MMDistributedDataParallel', "
                             'find_unused_parameters=True): idle heads have no gradient')
        self._model = model
        wrappers = runner.optim_wrapper.values() if isinstance(
            runner.optim_wrapper, OptimWrapperDict) else [runner.optim_wrapper]
        for handle in self._handles:
            handle.remove()
        self._handles = [w.optimizer.register_step_pre_hook(self._before_step)
                         for w in wrappers]

    def after_train(self, runner) -> None:
        """Remove the optimizer pre-hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _before_step(self, optimizer, args, kwargs) -> None:
        heads: Dict[str, nn.Module] = self._model.head_modules()
        active = self._model.consume_active_heads()
        names = list(heads)
        flags = torch.tensor([float(n in active) for n in names])
        if get_world_size() > 1:
            device = next(self._model.parameters()).device
            flags = flags.to(device)
            all_reduce(flags, op='max')
        # parts the heads share (partitioned heads: the first head's towers) train on
        # every head's samples: never an idle head's own
        partition = getattr(self._model, 'partition', None)
        shared = partition.shared_parameters() if partition is not None else set()
        for name, flag in zip(names, flags.tolist()):
            if flag == 0:
                for param in heads[name].parameters():
                    if id(param) not in shared:
                        param.grad = None
