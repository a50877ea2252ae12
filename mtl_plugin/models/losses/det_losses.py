"""``GroupWeightedLoss``: weight any MMDetection loss per sample by the sample's group.

Example (a RetinaNet head whose group 1 weighs twice as much)::

    bbox_head=dict(
        type='RetinaHead', ...,
        loss_cls=dict(type='GroupWeightedLoss', use_sigmoid=True,
                      loss=dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0,
                                alpha=0.25, loss_weight=1.0),
                      group_id_weight={1: 2.0}),
        loss_bbox=dict(type='GroupWeightedLoss',
                       loss=dict(type='mmdet.L1Loss', loss_weight=1.0),
                       group_id_weight={1: 2.0}))

Note ``use_sigmoid=True`` next to ``type='GroupWeightedLoss'``: MMDetection heads read
``use_sigmoid`` from the loss *config dict* (``loss_cls.get('use_sigmoid')``) before
building it, to choose the number of class channels; the wrapper checks it matches the
wrapped loss.
"""
from typing import Any, Mapping, Optional

import torch
from mmengine.registry import MODELS
from torch import Tensor, nn

from ...config_checks import reject_stock_keys
from ..utils import build_with_mmdet_fallback
from .group_context import GroupWeightedMixin

__all__ = ['GroupWeightedLoss', 'check_row_layouts']


@MODELS.register_module()
class GroupWeightedLoss(GroupWeightedMixin, nn.Module):
    """Wrap a loss so that each row of the prediction weighs as its sample's group.

    ``forward(pred, target, weight=None, avg_factor=None, reduction_override=None,
    **kwargs)`` computes per-sample weights ``w_b`` from the group context (``B``
    samples; ``a_b`` = the weight of sample ``b``'s group in ``group_id_weight``, 1.0
    for unlisted groups; ``w_b = a_b / ref`` if ``normalize`` else ``a_b``, where ``ref``
    is the dataset's mean weight, see :func:`~.group_context.weight_reference`), turns
    them into per-row weights and calls the wrapped loss with::

        weight' = weight * r       r_i = w_{i // (N // B)}  (row i of N rows)

    (``weight'`` = ``r`` when ``weight`` is None) and the same ``target``,
    ``avg_factor``, ``reduction_override`` and ``kwargs``. ``avg_factor`` is passed
    unchanged, so with the usual ``reduction='mean'`` and an ``avg_factor`` the loss
    is ``loss_weight * sum_i weight_i * r_i * l_i / avg_factor``.

    Supported layout: ``pred`` has ``N = B * R`` rows (dim 0), image-major: rows
    ``[b*R, (b+1)*R)`` belong to sample ``b`` of the context. That is the layout of the
    per-level ``loss_by_feat_single`` of ``AnchorHead`` / ``RetinaHead`` / ``RPNHead``
    (``cls_score.permute(0, 2, 3, 1).reshape(-1, C)``, both losses), and of the
    classification loss of ``ATSSHead`` and ``GFLHead`` (their bbox / centerness / DFL
    losses see only the positive rows, which do not follow this layout: do not wrap
    those). Heads that concatenate all levels level-major (``FCOSHead`` and other
    ``AnchorFreeHead`` subclasses), that call the loss per image (``SSDHead``) or on
    matched queries (DETR family), or RoI heads, do not fit the layout: the wrapper
    cannot check that, except ``N % B == 0``, which raises an error when it fails.

    Shapes of ``weight'``: with a ``weight`` of shape ``(N, ...)`` the row weights are
    broadcast over its trailing dims (``(N,)`` label weights, ``(N, C)``, ``(N, 4)``
    bbox weights). Without one, ``r`` has ``pred``'s shape when ``target`` is a tensor
    of that shape (regression / soft targets: ``L1Loss``, ``SmoothL1Loss``,
    ``GIoULoss``...), else shape ``(N,)`` (class-index targets: ``FocalLoss``,
    ``CrossEntropyLoss``; tuple targets: ``QualityFocalLoss``).

    Args:
        loss (dict): Config of the wrapped loss, built through ``MODELS`` (e.g.
            ``dict(type='mmdet.FocalLoss', use_sigmoid=True)``); it must accept a
            ``weight`` argument.
        group_id_weight (dict[int | str, float]): Weight per group, keyed by group id
            (int, or its digits as a str: ``'1'`` is id 1) or group name (str); unlisted
            groups weigh 1.0. Weights must be finite and > 0. The keys are checked
            against the dataset's groups (carried by the group context) on the first
            call: an unknown one raises ``UnknownGroupError`` before any update. Empty:
            no weighting (no group context needed).
        normalize (bool): Divide the per-sample weights by the mean weight of the
            dataset's samples (``sum_g n_g a_g / sum_g n_g``, from the samples'
            ``metainfo['group_sizes']``): weights average 1 over the dataset and act in
            every batch, single-group batches included. Defaults to True.
        use_sigmoid (bool, optional): Only for the head's config reading (see the
            module doc); must equal the wrapped loss's ``use_sigmoid``. Required
            (``True``) when the wrapped loss has ``use_sigmoid=True``.

    Attributes the head reads from its loss (``use_sigmoid``, ``loss_weight``,
    ``custom_cls_channels``, ``get_activation``...) are delegated to the wrapped loss.
    """

    def __init__(self,
                 loss: Mapping,
                 group_id_weight: Mapping,
                 normalize: bool = True,
                 use_sigmoid: Optional[bool] = None,
                 **kwargs: Any) -> None:
        reject_stock_keys(type(self), kwargs)  # a stock FocalLoss's gamma: names the fix
        super().__init__()
        name = type(self).__name__
        if isinstance(loss, nn.Module):
            built = loss
        elif isinstance(loss, Mapping) and 'type' in loss:
            built = build_with_mmdet_fallback(loss)
        else:
            raise TypeError(f"{name}: loss must be a loss config dict with a 'type' (e.g. "
                            "dict(type='mmdet.FocalLoss', use_sigmoid=True)), got "
                            f'{loss!r}')
        if group_id_weight is None or not isinstance(group_id_weight, Mapping):
            raise TypeError(f'{name}: group_id_weight must be a dict {{group_id (int) or '
                            f'group_name (str): weight}}, e.g. {{1: 2.0}}; got '
                            f'{group_id_weight!r}')
        if not isinstance(normalize, bool):
            raise TypeError(f'{name}: normalize must be True or False, got {normalize!r}')
        self.loss = built
        self.set_group_id_weight(group_id_weight)
        self.normalize = normalize
        inner_sigmoid = getattr(built, 'use_sigmoid', None)
        if use_sigmoid is not None:
            if not isinstance(use_sigmoid, bool):
                raise TypeError(f'{name}: use_sigmoid must be True or False, got '
                                f'{use_sigmoid!r}')
            if inner_sigmoid is not None and bool(inner_sigmoid) != use_sigmoid:
                raise ValueError(
                    f'{name}: use_sigmoid={use_sigmoid} but the wrapped '
                    f'{type(built).__name__} has use_sigmoid={inner_sigmoid}; make them '
                    'equal')
        elif inner_sigmoid:
            raise ValueError(
                f'{name}: the wrapped {type(built).__name__} has use_sigmoid=True, so '
                f"add use_sigmoid=True next to type='{name}' as well: MMDetection heads "
                "read use_sigmoid from the loss config dict (loss_cls.get('use_sigmoid'))"
                ' to choose their number of class channels, before building the loss')

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == 'loss' or name.startswith('__'):
                raise
            modules = self.__dict__.get('_modules', {})
            if 'loss' not in modules:
                raise
            return getattr(modules['loss'], name)

    def row_weights(self, pred: Tensor, target: Any = None,
                    weight: Optional[Tensor] = None) -> Tensor:
        """Per-row group weights shaped to multiply ``weight`` (see class doc)."""
        name = type(self).__name__
        if pred.dim() == 0:
            raise ValueError(f'{name}: pred must have a row dim (N, ...), got a scalar')
        n = pred.shape[0]
        w = self.group_sample_weights(device=pred.device,
                                      dtype=pred.dtype if pred.is_floating_point() else
                                      torch.float32)
        b = w.numel()
        if b == 0 or n % b != 0:
            raise ValueError(
                f'{name}: pred has {n} rows but the group context holds {b} samples; '
                'the wrapper needs N = B * R rows, image-major (rows [b*R, (b+1)*R) of '
                'sample b), as in the per-level loss of AnchorHead / RetinaHead / '
                "ATSSHead's and GFLHead's loss_cls. This head calls the loss with another "
                'layout (or the context does not hold exactly the samples of this head): '
                'do not wrap this loss')
        rows = w.repeat_interleave(n // b)
        if weight is not None:
            if weight.dim() == 0 or weight.shape[0] != n:
                raise ValueError(f'{name}: weight of shape {tuple(weight.shape)} does not '
                                 f'have the {n} rows of pred')
            return rows.view((n, ) + (1, ) * (weight.dim() - 1))
        if isinstance(target, Tensor) and target.shape == pred.shape:
            return rows.view((n, ) + (1, ) * (pred.dim() - 1)).expand_as(pred)
        return rows

    def forward(self,
                pred: Tensor,
                target: Any,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        if self.group_id_weight:
            rows = self.row_weights(pred, target, weight)
            weight = rows if weight is None else weight * rows.to(weight.dtype)
        return self.loss(pred, target, weight=weight, avg_factor=avg_factor,
                         reduction_override=reduction_override, **kwargs)

    def extra_repr(self) -> str:
        return f'group_id_weight={self.group_id_weight}, normalize={self.normalize}'


def _image_major_layouts() -> list:
    """(loss_by_feat_single, accepted loss_by_feat, wrappable loss attributes) of the mmdet
    heads whose losses see rows image-major within each level (see GroupWeightedLoss)."""
    from mmdet.models.dense_heads import AnchorHead, ATSSHead, GFLHead, RPNHead
    return [(AnchorHead.loss_by_feat_single, (AnchorHead.loss_by_feat, RPNHead.loss_by_feat),
             ('loss_cls', 'loss_bbox')),
            (ATSSHead.loss_by_feat_single, (ATSSHead.loss_by_feat, ), ('loss_cls', )),
            (GFLHead.loss_by_feat_single, (GFLHead.loss_by_feat, ), ('loss_cls', ))]


def check_row_layouts(model: nn.Module, owner: str) -> None:
    """Refuse, when the model is built, a ``GroupWeightedLoss`` its head calls on rows that
    are not image-major (the weights would land on the wrong rows, silently).

    Accepted: ``loss_cls`` and ``loss_bbox`` of heads that keep ``AnchorHead``'s per-level
    loss (``AnchorHead``, ``RetinaHead``, ``RPNHead``...), ``loss_cls`` of ``ATSSHead`` and
    ``GFLHead``. Refused: every other place (FCOS-style heads concatenate the levels
    first, RTMDet / YOLOX flatten all priors per image and score positives only, RoI heads
    score sampled RoIs, ATSS / GFL box losses see positives only).

    Args:
        model (nn.Module): The model (or a head) to check.
        owner (str): The model's name, for the error.

    Raises:
        TypeError: A ``GroupWeightedLoss`` in an unsupported place, named with the fix.
    """
    modules = dict(model.named_modules())
    layouts = None
    for name, module in modules.items():
        if not isinstance(module, GroupWeightedLoss):
            continue
        layouts = layouts or _image_major_layouts()
        parent, _, attr = name.rpartition('.')
        head = type(modules[parent])
        if any(getattr(head, 'loss_by_feat_single', None) is single
               and getattr(head, 'loss_by_feat', None) in whole and attr in attrs
               for single, whole, attrs in layouts):
            continue
        raise TypeError(
            f'{owner}: {name} is a GroupWeightedLoss, but {head.__name__} does not call its '
            f'{attr} with image-major rows, so the group weights would land on the wrong '
            'rows. GroupWeightedLoss supports loss_cls and loss_bbox of AnchorHead / '
            'RetinaHead / RPNHead and loss_cls of ATSSHead / GFLHead; give this head its '
            'stock loss (weight its groups with a sampler or the multi-task weighting)')
