"""The trunk per head: each head's samples get their own backbone / neck pass.

A routed head's loss depends only on its own samples' features, but with one trunk pass
over the whole batch each task's backward (one per task in gradient surgery) runs through
the whole batch's trunk graph. With ``MultiHeadDetector(trunk_per_head=True)`` the trunk
runs once per head on that head's sub-batch: the per-task backwards of
``GradSurgeryOptimWrapper`` then add up to about one full backward. Tasks that see the whole
batch (the dataset head, a shared RPN) get the sub-batch features put back in batch order,
and keep their own full pass.

Where the trunk has no batch coupling (eval-mode / frozen batch norm, group norm: the usual
setting with a pretrained backbone) the features, losses and gradients are those of the
whole-batch pass up to floating-point rounding. With train-mode batch norm each head's
sub-batch is normalised with its own statistics (as if each head had its own smaller
batch): a warning says so once.
"""
import warnings
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

__all__ = ['trunk_features']


def _train_mode_bn(modules: List[Optional[nn.Module]]) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
               for module in modules if module is not None for m in module.modules())


def trunk_features(model: nn.Module, batch_inputs: Tensor,
                   plan: 'OrderedDict[str, List[int]]', per_head: bool
                   ) -> Tuple[Tuple[Tensor, ...], Optional[Dict[str, Tuple[Tensor, ...]]]]:
    """Features of the whole batch, and (``per_head``) of each head's own sub-batch.

    Args:
        model (nn.Module): The detector (``extract_feat``, ``backbone``, ``neck``).
        batch_inputs (Tensor): (B, 3, H, W).
        plan (OrderedDict[str, list[int]]): Head -> positions of its samples.
        per_head (bool): One trunk pass per head.

    Returns:
        tuple: The batch's features (each (B, C, h, w); with ``per_head``, the heads'
        features put back in batch order) and head -> its own features (or None).
    """
    if not per_head or len(plan) < 2:
        return model.extract_feat(batch_inputs), None
    if model.training and _train_mode_bn([model.backbone, model.neck]):
        # shown once per run by Python's default warning filter
        warnings.warn('trunk_per_head=True with train-mode batch norm: each head\'s '
                      'sub-batch is normalised with its own statistics (freeze BN, e.g. '
                      'norm_eval=True, for the whole-batch result)')
    own = OrderedDict((h, model.extract_feat(batch_inputs[idx])) for h, idx in plan.items())
    order = torch.tensor([i for idx in plan.values() for i in idx]).argsort()
    x = tuple(torch.cat(level)[order.to(level[0].device)] for level in zip(*own.values()))
    return x, own
