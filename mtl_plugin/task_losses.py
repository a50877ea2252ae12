"""``MultiTaskLoss``: the total loss of a step, carrying its per-task terms.

The hand-off from a multi-task model to a task-aware optim wrapper
(:class:`~mtl_plugin.engine.optim_wrappers.GradSurgeryOptimWrapper`). MMEngine's train
steps, ``BaseModel.train_step`` and ``MMDistributedDataParallel.train_step`` alike, do::

    parsed_loss, log_vars = model.parse_losses(losses)
    optim_wrapper.update_params(parsed_loss)

so the per-task losses travel *in* ``parsed_loss``: the multi-task ``parse_losses``
(:class:`~mtl_plugin.models.multitask.MultiTaskLossMixin`) returns a
:class:`MultiTaskLoss`, a () tensor (the total, with its graph) that also holds
``task_losses``. Every other optim wrapper sees an ordinary tensor (any operation on it
returns a plain :class:`torch.Tensor`), so nothing else changes; nothing is stored on the
model, so there is no stale state between steps.

Imports nothing from the package, so models (which make it) and engine (which reads it)
both may use it.
"""
from collections import OrderedDict
from typing import Mapping, Optional

import torch
from torch import Tensor

__all__ = ['MultiTaskLoss', 'task_losses_of']


class MultiTaskLoss(Tensor):
    """A () total loss with its per-task terms in :attr:`task_losses`.

    Build it with :meth:`of`; operations on it (``loss / 2``, ``loss.detach()``) return
    plain tensors, so the terms never travel further than intended.

    Attributes:
        task_losses (OrderedDict[str, Tensor]): Task -> () loss (with graph when the task
            has a loss in this step), in task order; the terms sum to the total.
    """

    __torch_function__ = torch._C._disabled_torch_function_impl
    task_losses: 'OrderedDict[str, Tensor]'

    @staticmethod
    def of(task_losses: Mapping[str, Tensor], total: Optional[Tensor] = None) -> 'MultiTaskLoss':
        """The total ``total`` (default: the sum of the terms) carrying ``task_losses``.

        Args:
            task_losses (Mapping[str, Tensor]): Task -> () loss, non-empty.
            total (Tensor, optional): The total, shape () (e.g. MMEngine's own sum of the
                loss keys). Defaults to None: ``sum(task_losses.values())``.

        Returns:
            MultiTaskLoss: Shares ``total``'s value and autograd graph.
        """
        if not task_losses:
            raise ValueError('MultiTaskLoss.of needs at least one task loss, but got none')
        if total is None:
            total = sum(task_losses.values())
        if not isinstance(total, Tensor) or total.dim() != 0:
            raise TypeError(f'the total of a MultiTaskLoss must be a () tensor, but got '
                            f'{total!r}')
        out = total.as_subclass(MultiTaskLoss)
        out.task_losses = OrderedDict(task_losses)
        return out


def task_losses_of(loss: Tensor) -> Optional['OrderedDict[str, Tensor]']:
    """The per-task terms ``loss`` carries (a :class:`MultiTaskLoss`), else None."""
    return loss.task_losses if isinstance(loss, MultiTaskLoss) else None
