"""Group-weighted heatmap losses for MMPose heatmap heads.

Both losses read the groups of the batch's samples from the group context (see
:mod:`.group_context`) and weight each sample's contribution by its group's weight::

    head = dict(type='HeatmapHead', ...,
                loss=dict(type='GroupWeightedKeypointMSELoss', use_target_weight=True,
                          group_id_weight={1: 2.0}))

Per-sample weights (``B`` samples of the context, ``a_b`` = the weight of sample
``b``'s group in ``group_id_weight``, 1.0 for groups it does not list)::

    w_b = a_b / ref          if normalize  (ref = the dataset's mean weight,
                                            sum_g n_g a_g / sum_g n_g: weights average 1
                                            over the dataset and act in every batch)
    w_b = a_b                otherwise     (raw weighting)

With ``group_id_weight`` ``None`` or empty, both losses are exactly their MMPose
counterparts and need no group context.

Target weights: as MMPose 1.3.2's ``KeypointMSELoss`` / ``FocalHeatmapLoss`` (whose
``_get_mask`` these losses reuse), ``target_weights`` are applied whenever they are
passed (``HeatmapHead`` always passes ``keypoint_weights``); ``use_target_weight`` is
kept for config compatibility.
"""
from typing import Any, Mapping, Optional

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from mmpose.models.losses.heatmap_loss import FocalHeatmapLoss, KeypointMSELoss
from torch import Tensor

from ...config_checks import reject_stock_keys
from .group_context import GroupWeightedMixin

__all__ = ['GroupWeightedKeypointMSELoss', 'GroupWeightedFocalHeatmapLoss']


def _check_normalize(normalize: Any, owner: str) -> bool:
    if not isinstance(normalize, bool):
        raise TypeError(f'{owner}: normalize must be True or False, got {normalize!r}')
    return normalize


def _per_sample_view(w: Tensor, ndim: int) -> Tensor:
    return w.view((-1, ) + (1, ) * (ndim - 1))


class _GroupWeighted(GroupWeightedMixin):
    """Shared by the group-weighted pose losses: settings and per-sample weights."""

    def _init_group(self, group_id_weight: Optional[Mapping], normalize: bool) -> None:
        name = type(self).__name__
        self.set_group_id_weight(group_id_weight)
        self.normalize = _check_normalize(normalize, name)

    def _sample_weights(self, output: Tensor) -> Tensor:
        """(B,) weights of the samples in the group context."""
        return self.group_sample_weights(batch_size=output.shape[0], device=output.device,
                                         dtype=output.dtype)


@MODELS.register_module(force=True)  # over the lazy builder of models/utils.py
class GroupWeightedKeypointMSELoss(_GroupWeighted, KeypointMSELoss):
    """MMPose's ``KeypointMSELoss`` with a per-sample weight from the sample's group.

    Same arguments and ``forward(output, target, target_weights=None, mask=None)`` as
    :class:`mmpose.models.losses.KeypointMSELoss`, plus:

    Args:
        group_id_weight (dict[int | str, float] | None): Weight per group, keyed by group
            id (int, or its digits as a str: ``'1'`` is id 1) or group name (str); unlisted
            groups weigh 1.0. Weights must be finite and > 0. Unknown keys raise
            ``UnknownGroupError`` on the first call, before any update.
        normalize (bool): Divide the per-sample weights by the dataset's mean weight
            (keeps the loss scale over the dataset; never the batch's mean). Defaults
            to True.

    The loss, with ``M`` the mask of MMPose (target weights x ``mask`` x non-empty
    channels; all ones if none), ``E = (output - target)**2 * M`` of shape
    ``(B, K, H, W)`` and ``l_b = mean(E[b])`` (mean over ``K*H*W``)::

        loss = loss_weight * (1/B) * sum_b w_b * l_b

    e.g. groups ``[0, 1]`` with ``{1: 2.0}``: raw ``(1*l0 + 2*l1) / 2``; normalised
    ``(1*l0 + 2*l1) / 1.5 / 2``. All ``w_b = 1`` gives exactly ``KeypointMSELoss``.
    """

    def __init__(self,
                 use_target_weight: bool = False,
                 skip_empty_channel: bool = False,
                 loss_weight: float = 1.,
                 group_id_weight: Optional[Mapping] = None,
                 normalize: bool = True,
                 **kwargs: Any) -> None:
        reject_stock_keys(type(self), kwargs)
        super().__init__(use_target_weight=use_target_weight,
                         skip_empty_channel=skip_empty_channel,
                         loss_weight=loss_weight)
        self._init_group(group_id_weight, normalize)

    def forward(self,
                output: Tensor,
                target: Tensor,
                target_weights: Optional[Tensor] = None,
                mask: Optional[Tensor] = None) -> Tensor:
        if not self.group_id_weight:
            return super().forward(output, target, target_weights, mask)
        w = self._sample_weights(output)
        _mask = self._get_mask(target, target_weights, mask)
        _loss = F.mse_loss(output, target, reduction='none')
        if _mask is not None:
            _loss = _loss * _mask
        loss = (_loss * _per_sample_view(w, _loss.ndim)).mean()
        return loss * self.loss_weight

    def extra_repr(self) -> str:
        return (f'group_id_weight={self.group_id_weight}, normalize={self.normalize}, '
                f'loss_weight={self.loss_weight}')


@MODELS.register_module(force=True)  # over the lazy builder of models/utils.py
class GroupWeightedFocalHeatmapLoss(_GroupWeighted, FocalHeatmapLoss):
    """CornerNet / CenterNet focal heatmap loss with per-sample group weights.

    Builds on MMPose's :class:`~mmpose.models.losses.FocalHeatmapLoss` (same maths,
    same mask handling), adding the clamp of the prediction to ``(eps, 1 - eps)`` and
    the group weights. With ``p = clamp(output, eps, 1 - eps)``, ``t = target``, ``M``
    the MMPose mask (target weights ``(B, K)`` or ``(B, K, H, W)`` x ``mask`` x
    non-empty channels; ones if none)::

        pos = (t == 1) * M,   neg = (t < 1) * M
        S_b = -sum_{k,h,w} [ pos * (1 - p)**alpha * log(p)
                             + neg * (1 - t)**beta * p**alpha * log(1 - p) ]   (sample b)
        N   = sum(pos)  (whole batch, not group-weighted)
        loss = loss_weight * sum_b w_b * S_b / (N if N > 0 else 1)

    All ``w_b = 1`` gives exactly MMPose's ``FocalHeatmapLoss`` on the clamped
    prediction.

    The heatmaps must be probabilities: a value outside ``[0, 1]`` on the first call
    raises ``ValueError``, before any backward. The stock ``HeatmapHead`` outputs raw values, which
    the clamp would cut off with no gradient (a peak starting below 0 is never learnt):
    pair this loss with :class:`~mtl_plugin.models.pose.SigmoidHeatmapHead`.

    Args:
        alpha (float): Focusing exponent. Defaults to 2.0.
        beta (float): Exponent of the negatives' ``(1 - t)`` penalty reduction.
            Defaults to 4.0.
        use_target_weight (bool): Kept for config compatibility (see module doc).
        loss_weight (float): Defaults to 1.0.
        group_id_weight (dict[int | str, float] | None): Weight per group (see
            :class:`GroupWeightedKeypointMSELoss`).
        normalize (bool): Divide the per-sample weights by the dataset's mean weight.
        skip_empty_channel (bool): As in MMPose. Defaults to False.
        eps (float): Clamp of the prediction. Defaults to 1e-6.
    """

    def __init__(self,
                 alpha: float = 2.0,
                 beta: float = 4.0,
                 use_target_weight: bool = False,
                 loss_weight: float = 1.0,
                 group_id_weight: Optional[Mapping] = None,
                 normalize: bool = True,
                 skip_empty_channel: bool = False,
                 eps: float = 1e-6,
                 **kwargs: Any) -> None:
        reject_stock_keys(type(self), kwargs)
        super().__init__(alpha=alpha, beta=beta, use_target_weight=use_target_weight,
                         skip_empty_channel=skip_empty_channel, loss_weight=loss_weight)
        name = type(self).__name__
        if not 0 < eps < 0.5:
            raise ValueError(f'{name}: eps must be in (0, 0.5), got {eps!r}')
        self.eps = eps
        self._range_checked = False
        self._init_group(group_id_weight, normalize)

    def _check_probabilities(self, output: Tensor) -> None:
        """Raise ``ValueError`` unless ``output`` lies in ``[0, 1]`` (once per module: the
        head's output range is fixed by the config; no device sync on later calls)."""
        low, high = torch.aminmax(output.detach())
        if low < 0 or high > 1:
            raise ValueError(
                f'{type(self).__name__}: the heatmaps must be probabilities in [0, 1], but '
                f'they range over [{float(low):.4g}, {float(high):.4g}]; the stock '
                "HeatmapHead outputs raw values: use head=dict(type='SigmoidHeatmapHead', "
                '...) (a sigmoid on the output), or a loss for raw heatmaps')
        self._range_checked = True

    def forward(self,
                output: Tensor,
                target: Tensor,
                target_weights: Optional[Tensor] = None,
                mask: Optional[Tensor] = None) -> Tensor:
        """``output`` / ``target``: ``(B, K, H, W)`` heatmaps (``output`` in [0, 1],
        e.g. after a sigmoid); ``target_weights``: ``(B, K)`` or ``(B, K, H, W)``;
        ``mask``: ``(B|1, K|1, H, W)``."""
        if not self._range_checked:  # a config error: checked on the first call only
            self._check_probabilities(output)
        p = output.clamp(min=self.eps, max=1 - self.eps)
        if not self.group_id_weight:
            return super().forward(p, target, target_weights, mask)
        w = self._sample_weights(output)
        _mask = self._get_mask(target, target_weights, mask)
        pos_inds = target.eq(1).float()
        neg_inds = target.lt(1).float()
        if _mask is not None:
            pos_inds = pos_inds * _mask
            neg_inds = neg_inds * _mask
        neg_weights = torch.pow(1 - target, self.beta)
        pos_loss = torch.log(p) * torch.pow(1 - p, self.alpha) * pos_inds
        neg_loss = torch.log(1 - p) * torch.pow(p, self.alpha) * neg_weights * neg_inds
        per_elem = pos_loss + neg_loss
        loss = -(per_elem * _per_sample_view(w, per_elem.ndim)).sum()
        num_pos = pos_inds.sum()
        if num_pos > 0:
            loss = loss / num_pos
        return loss * self.loss_weight

    def extra_repr(self) -> str:
        return (f'alpha={self.alpha}, beta={self.beta}, '
                f'group_id_weight={self.group_id_weight}, normalize={self.normalize}, '
                f'loss_weight={self.loss_weight}')
