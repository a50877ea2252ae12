"""``inference_topdown_routed``: mmpose's ``inference_topdown`` with a head per box."""
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmpose.structures import PoseDataSample
from mmpose.structures.bbox import bbox_xywh2xyxy
from PIL import Image
from torch import nn

PerBox = Optional[Union[str, Sequence[Optional[str]]]]


def _boxes(img: Union[np.ndarray, str], bboxes: Optional[Union[list, np.ndarray]],
           bbox_format: str) -> np.ndarray:
    """(N, 4) xyxy boxes; the whole image when none is given (as mmpose does)."""
    if bbox_format not in ('xyxy', 'xywh'):
        raise ValueError(f"bbox_format must be 'xyxy' or 'xywh', but got {bbox_format!r}")
    if bboxes is None or len(bboxes) == 0:
        w, h = Image.open(img).size if isinstance(img, str) else img.shape[1::-1]
        return np.array([[0, 0, w, h]], dtype=np.float32)
    boxes = np.asarray(bboxes, dtype=np.float32).reshape(-1, 4)
    return bbox_xywh2xyxy(boxes) if bbox_format == 'xywh' else boxes


def _per_box(value: PerBox, n: int, what: str) -> List[Optional[str]]:
    """One entry per box from a single name, a sequence of names (or None), or None."""
    if value is None or isinstance(value, str):
        return [value] * n
    value = list(value)
    if len(value) != n:
        raise ValueError(f'{what} must name one entry per box ({n}), but got {len(value)}: '
                         f'{value!r}')
    return value


def inference_topdown_routed(model: nn.Module,
                             img: Union[np.ndarray, str],
                             bboxes: Optional[Union[list, np.ndarray]] = None,
                             groups: PerBox = None,
                             heads: PerBox = None,
                             bbox_scores: Optional[Sequence[float]] = None,
                             bbox_format: str = 'xyxy') -> List[PoseDataSample]:
    """mmpose's ``inference_topdown``, each box predicted by the head it is routed to.

    A box with a group is predicted by that group's head, one with a head by that head;
    one with neither by every head (``pred_instances`` from the model's
    ``default_head``, each head's as ``pred_instances_<head>``), as with mmpose's own
    ``inference_topdown``.

    Args:
        model (nn.Module): A :class:`MultiHeadPoseEstimator` from mmpose's ``init_model``.
        img (np.ndarray | str): The image (BGR array) or its path.
        bboxes (list | np.ndarray, optional): (N, 4) boxes. Defaults to the whole image.
        groups (str | Sequence[str | None], optional): The group of every box, or of
            each box (the pose datasets' group names). Defaults to None.
        heads (str | Sequence[str | None], optional): The head of every box, or of
            each box (wins over ``groups``). Defaults to None.
        bbox_scores (Sequence[float], optional): (N,) box scores kept in the predictions.
            Defaults to ones.
        bbox_format (str): ``'xyxy'`` or ``'xywh'``. Defaults to ``'xyxy'``.

    Returns:
        list[PoseDataSample]: One per box, with ``pred_instances`` (keypoints (1, K, 2)
        in image space, K the head's) and metainfo ``pred_head`` / ``pred_group``.
    """
    scope = model.cfg.get('default_scope', 'mmpose')
    if scope is not None:
        init_default_scope(scope)
    pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
    boxes = _boxes(img, bboxes, bbox_format)
    groups, heads = _per_box(groups, len(boxes), 'groups'), _per_box(heads, len(boxes), 'heads')
    scores = np.ones(len(boxes), np.float32) if bbox_scores is None else np.asarray(
        bbox_scores, np.float32).reshape(-1)
    if len(scores) != len(boxes):
        raise ValueError(f'bbox_scores must have one score per box ({len(boxes)}), but got '
                         f'{len(scores)}')
    data_list = []
    for box, score, group, head in zip(boxes, scores, groups, heads):
        info = dict(img_path=img) if isinstance(img, str) else dict(img=img)
        info.update(bbox=box[None], bbox_score=score[None])
        info.update(model.dataset_meta or {})
        data = pipeline(info)
        route = {k: v for k, v in (('group_name', group), ('head', head)) if v is not None}
        data['data_samples'].set_metainfo(route)
        data_list.append(data)
    with torch.no_grad():
        return model.test_step(pseudo_collate(data_list))
