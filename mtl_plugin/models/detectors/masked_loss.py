"""The masked union mode's loss: classes a sample's dataset does not annotate get no
gradient on that sample (UniDet's partial-label loss, for sigmoid dense heads), except
inside the sample's ``label_regions`` (objects ``CrossSourcePaste`` brought in from
another source), where that source's classes count as annotated."""
from typing import List, Mapping, Optional, Sequence, Tuple

import torch
from mmdet.models.utils import unpack_gt_instances
from mmdet.structures import SampleList
from mmengine.config import ConfigDict
from torch import Tensor, nn

__all__ = ['masked_dense_loss', 'regions_in_input']


def regions_in_input(meta: Mapping, table: Optional[Tensor] = None) -> Tensor:
    """A sample's ``label_regions`` mapped to the network input.

    ``CrossSourcePaste`` records the rows ``[class, x1, y1, x2, y2]`` in the loaded
    image's pixels; the transforms that may follow it only resize and flip, which the
    sample's ``scale_factor`` / ``flip`` / ``flip_direction`` / ``img_shape`` record.

    Args:
        meta (Mapping): The sample's metainfo.
        table (Tensor, optional): Maps the rows' (unified) class to the head's class
            (-1: the head does not predict it; the row is dropped). Defaults to None.

    Returns:
        Tensor: (K, 5) float rows ``[head class, x1, y1, x2, y2]`` in input pixels.
    """
    rows = torch.as_tensor(meta.get('label_regions', ()), dtype=torch.float32).reshape(-1, 5)
    if not len(rows):
        return rows
    rows = rows.clone()
    sx, sy = (meta.get('scale_factor') or (1.0, 1.0))[:2]
    rows[:, 1:] *= torch.tensor([sx, sy, sx, sy], dtype=torch.float32)
    h, w = meta['img_shape'][:2]
    direction = meta.get('flip_direction') if meta.get('flip') else None
    if direction in ('horizontal', 'diagonal'):
        rows[:, [1, 3]] = w - rows[:, [3, 1]]
    if direction in ('vertical', 'diagonal'):
        rows[:, [2, 4]] = h - rows[:, [4, 2]]
    if table is not None:
        cls = table[rows[:, 0].long()]
        rows = torch.cat([cls[:, None].float(), rows[:, 1:]], 1)[cls >= 0]
    return rows


def _level_mask(annotated: Tensor, regions: Sequence[Tensor], shape: Tuple[int, int],
                stride: Tuple[float, float], offset: float) -> Tensor:
    """(B, C, h, w) bool: annotated for the whole image, or at the cells whose prior
    centre lies inside one of the image's regions of that class."""
    b, c = annotated.shape
    mask = annotated[:, :, None, None].expand(b, c, *shape).clone()
    xs = (torch.arange(shape[1], dtype=torch.float32) + offset) * stride[0]
    ys = (torch.arange(shape[0], dtype=torch.float32) + offset) * stride[1]
    for i, rows in enumerate(regions):
        for cls, x1, y1, x2, y2 in rows.tolist():
            inside_y = (ys >= y1) & (ys < y2)
            inside_x = (xs >= x1) & (xs < x2)
            mask[i, int(cls)] |= (inside_y[:, None] & inside_x[None, :]).to(mask.device)
    return mask


def masked_dense_loss(head: nn.Module, annotated: Tensor, x: Tuple[Tensor, ...],
                      samples: SampleList, predict_cfg: Optional[ConfigDict] = None,
                      regions: Optional[List[Tensor]] = None
                      ) -> Tuple[dict, Optional[list]]:
    """Dense-head loss whose unannotated classes get no gradient, per image (and per
    prior outside ``regions``), and (with ``predict_cfg``, for the data map) the
    predictions of the same outputs.

    Args:
        head (nn.Module): A dense head with ``cls_out_channels`` (scores channel =
            anchor * C + class) and a ``prior_generator``.
        annotated (Tensor): (B, C) bool, True where sample b's dataset annotates class c.
        x (tuple[Tensor]): The head's input features, each (B, C_in, h, w).
        samples (list[DetDataSample]): The B samples, GT in the head's classes.
        predict_cfg (ConfigDict, optional): Also predict from the same outputs.
        regions (list[Tensor], optional): Per sample, (K, 5) rows ``[head class, x1, y1,
            x2, y2]`` (input pixels) where that class is annotated too. Defaults to None.

    Returns:
        tuple[dict, list | None]: The losses, and the predictions (or None).
    """
    outs = list(head(x))
    mask = annotated.to(x[0].device)
    num_classes = head.cls_out_channels
    with_regions = regions is not None and any(len(r) for r in regions)
    generator = getattr(head, 'prior_generator', None)
    masked = []
    for level, cls_score in enumerate(outs[0]):  # (B, A*C, h, w), channel = anchor * C + class
        repeats = cls_score.shape[1] // num_classes
        if with_regions:
            stride = tuple(float(v) for v in generator.strides[level])
            offset = float(getattr(generator, 'center_offset', getattr(generator, 'offset', 0)))
            level_mask = _level_mask(mask, regions, tuple(cls_score.shape[2:]), stride, offset)
            channel_mask = level_mask.repeat(1, repeats, 1, 1)
        else:
            channel_mask = mask.repeat(1, repeats)[:, :, None, None].expand_as(cls_score)
        masked.append(torch.where(channel_mask, cls_score, cls_score.detach()))
    outs[0] = masked
    gt, gt_ignore, metas = unpack_gt_instances(samples)
    losses = head.loss_by_feat(*outs, gt, metas, gt_ignore)
    if predict_cfg is None:
        return losses, None
    return losses, head.predict_by_feat(*outs, batch_img_metas=metas, cfg=predict_cfg)
