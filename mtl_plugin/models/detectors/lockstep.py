"""DDP: every rank takes part in every head's loss collectives, in the same order.

Many mmdet heads normalise their loss by a count reduced over ranks (``reduce_mean`` of
the positives in FCOS, ATSS, GFL, RTMDet, YOLOX, ...). A routed multi-head model runs a
head only on the ranks that hold its samples, so the collectives of different heads
would pair up across ranks (head a normalised by head b's positives), or mismatch in
size and abort. Under DDP the model therefore visits every head, in the order of its
``heads``, on every rank; a rank without samples for a head runs that head's loss once on
one image with no ground truth, in eval mode and without gradient, and contributes zeros
to every ``all_reduce`` that loss makes (mmdet counts an image without positives as one,
so the image's own counts would not be zero): the head's normalisation counts its own
samples only, across ranks, and the head gets no gradient and no buffer update from it.
In a single process nothing changes.
"""
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.distributed as torch_dist
from mmengine.dist import get_world_size
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ..losses import group_context

__all__ = ['lockstep_plan', 'join_head_collectives']


def lockstep_plan(heads: Sequence[str], plan: 'OrderedDict[str, List[int]]'
                  ) -> List[Tuple[str, List[int]]]:
    """The heads to visit, with their samples' positions: ``plan`` itself in a single
    process; under DDP every head, in the order of ``heads`` (empty where absent)."""
    if get_world_size() <= 1:
        return list(plan.items())
    return [(name, plan.get(name, [])) for name in heads]


def _without_gt(sample: Any) -> Any:
    """A copy of ``sample`` with no ground-truth (and no ignored) instances."""
    empty = sample.clone()
    for key in ('gt_instances', 'ignored_instances'):
        if key in empty:
            old = empty.get(key)
            bboxes = old.bboxes if 'bboxes' in old else torch.zeros(0, 4)
            labels = old.labels if 'labels' in old else torch.zeros(0, dtype=torch.long)
            setattr(empty, key, InstanceData(bboxes=bboxes[:0], labels=labels[:0]))
    return empty


@contextmanager
def _contributing_zeros() -> Iterator[None]:
    """Every ``torch.distributed.all_reduce`` in the block reduces zeros from this rank
    (mmdet's ``reduce_mean`` and mmengine's ``all_reduce`` call it through the module)."""
    real = torch_dist.all_reduce

    def zeroed(tensor: Tensor, *args: Any, **kwargs: Any) -> Any:
        tensor.zero_()
        return real(tensor, *args, **kwargs)

    torch_dist.all_reduce = zeroed
    try:
        yield
    finally:
        torch_dist.all_reduce = real


def join_head_collectives(head: nn.Module, feats: Tuple[Tensor, ...], sample: Any,
                          proposal: Optional[InstanceData] = None) -> None:
    """Run ``head``'s loss on one image without ground truth, for its collectives only.

    Eval mode (no batch-norm statistics move), ``torch.no_grad`` (no gradient reaches the
    head, so the optimizer and ``HeadIsolationHook`` see an idle head), zeros in every
    ``all_reduce``; the losses are discarded.

    Args:
        head (nn.Module): The head this rank holds no samples for.
        feats (tuple[Tensor]): Its input features of one image, each (1, C, h, w).
        sample (DetDataSample): That image's sample (its GT is dropped here).
        proposal (InstanceData, optional): The image's RPN proposals (RoI heads).
    """
    empty = _without_gt(sample)
    if proposal is not None:  # RoI heads turn the proposals' bboxes into priors, in place
        proposal = proposal.clone()
        if 'bboxes' not in proposal and 'priors' in proposal:
            proposal.bboxes = proposal.priors
    was_training = head.training
    head.eval()
    try:
        with torch.no_grad(), group_context([empty]), _contributing_zeros():
            if proposal is not None:
                head.loss(feats, [proposal], [empty])
            else:
                head.loss(feats, [empty])
    finally:
        head.train(was_training)
