"""The masked union mode's loss: classes a sample's dataset does not annotate get no
gradient on that sample (UniDet's partial-label loss, for sigmoid dense heads)."""
from typing import Optional, Tuple

import torch
from mmdet.models.utils import unpack_gt_instances
from mmdet.structures import SampleList
from mmengine.config import ConfigDict
from torch import Tensor, nn

__all__ = ['masked_dense_loss']


def masked_dense_loss(head: nn.Module, annotated: Tensor, x: Tuple[Tensor, ...],
                      samples: SampleList, predict_cfg: Optional[ConfigDict] = None
                      ) -> Tuple[dict, Optional[list]]:
    """Dense-head loss whose unannotated classes get no gradient, per image, and (with
    ``predict_cfg``, for the data map) the predictions of the same outputs.

    Args:
        head (nn.Module): A dense head with ``cls_out_channels`` (scores channel =
            anchor * C + class).
        annotated (Tensor): (B, C) bool, True where sample b's dataset annotates class c.
        x (tuple[Tensor]): The head's input features, each (B, C_in, h, w).
        samples (list[DetDataSample]): The B samples, GT in the head's classes.
        predict_cfg (ConfigDict, optional): Also predict from the same outputs.

    Returns:
        tuple[dict, list | None]: The losses, and the predictions (or None).
    """
    outs = list(head(x))
    mask = annotated.to(x[0].device)
    num_classes = head.cls_out_channels
    masked = []
    for cls_score in outs[0]:  # (B, A*C, h, w), channel = anchor * C + class
        channel_mask = mask.repeat(1, cls_score.shape[1] // num_classes)
        channel_mask = channel_mask[:, :, None, None].expand_as(cls_score)
        masked.append(torch.where(channel_mask, cls_score, cls_score.detach()))
    outs[0] = masked
    gt, gt_ignore, metas = unpack_gt_instances(samples)
    losses = head.loss_by_feat(*outs, gt, metas, gt_ignore)
    if predict_cfg is None:
        return losses, None
    return losses, head.predict_by_feat(*outs, batch_img_metas=metas, cfg=predict_cfg)
