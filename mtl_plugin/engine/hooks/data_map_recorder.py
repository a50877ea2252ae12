"""DataMapRecorder: what a model reports from its training forward for the data map."""
import logging
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import torch
from mmdet.structures.bbox import bbox_overlaps, get_box_tensor
from mmengine.config import ConfigDict
from mmengine.logging import print_log
from mmengine.structures import InstanceData
from torch import Tensor

from ...validation import check_int

__all__ = ['DataMapRecorder', 'gold_confidence', 'sample_key', 'SUPPORTED_MODELS']

SUPPORTED_MODELS = ('MultiHeadDetector (dense heads)', 'HierarchicalClassifier')
DEFAULT_PREDICT_CFG = dict(nms_pre=1000, min_bbox_size=0,
                           nms=dict(type='nms', iou_threshold=0.5))
EPOCH_FILE = 'epoch_{:03d}.npz'
COMPACT = 256  # samples whose values are gathered into one tensor and moved to the CPU
SampleKey = Tuple[str, str, str]  # (group, 'ann' | 'img', id)


def sample_key(meta: dict) -> SampleKey:
    """Identity of a sample: its group and its ``ann_id``, ``img_id`` or ``sample_idx``."""
    group = str(meta.get('group_name', ''))
    for field, kind in (('ann_id', 'ann'), ('img_id', 'img'), ('sample_idx', 'img')):
        if meta.get(field) is not None:
            return group, kind, str(meta[field])
    raise KeyError("a data sample has none of 'ann_id', 'img_id', 'sample_idx' in its "
                   "metainfo, so its labels cannot be identified: add 'img_id' to the "
                   f'meta_keys of the pack transform (metainfo keys: {sorted(meta)})')


def gold_confidence(pred: InstanceData, gt_bboxes: Tensor, gt_labels: Tensor,
                    iou_thr: float = 0.5) -> Tuple[Tensor, Tensor]:
    """Gold confidence and correctness of each GT box from a detector's predictions.

    Args:
        pred (InstanceData): Predictions with ``bboxes`` (P, 4), ``scores`` (P,) and
            ``labels`` (P,), in the same space as the GT boxes.
        gt_bboxes (Tensor): GT boxes (G, 4), x1y1x2y2.
        gt_labels (Tensor): GT labels (G,), in the predictions' label space.
        iou_thr (float): IoU at which a prediction covers a GT box. Defaults to 0.5.

    Returns:
        tuple[Tensor, Tensor]: ``confidence`` (G,) float, the highest score among the
        predictions of the gold class with IoU >= ``iou_thr`` (0 when none), and
        ``correct`` (G,) bool, whether the highest-scoring prediction with IoU >=
        ``iou_thr`` has the gold label.
    """
    gt_bboxes = get_box_tensor(gt_bboxes)
    num_gt = gt_bboxes.shape[0]
    if num_gt == 0 or len(pred) == 0:
        return gt_bboxes.new_zeros(num_gt), torch.zeros(num_gt, dtype=torch.bool,
                                                        device=gt_bboxes.device)
    scores = pred.scores.detach().to(gt_bboxes.dtype)
    covers = bbox_overlaps(gt_bboxes, pred.bboxes.detach().to(gt_bboxes.dtype)) >= iou_thr
    gold = pred.labels[None, :] == gt_labels[:, None]  # (G, P)
    confidence = torch.where(covers & gold, scores[None], scores.new_zeros(())).amax(1)
    best = torch.where(covers, scores[None], scores.new_full((), -1.0)).argmax(1)  # (G,)
    correct = covers.any(1) & (pred.labels[best] == gt_labels)
    return confidence, correct


class DataMapRecorder:
    """Collects every training label's gold confidence, reported by the model.

    Models that support recording have a ``data_map_recorder`` attribute (None when off)
    and, in ``loss()``, call :meth:`record` with one value per GT instance, in
    ``gt_instances`` order (one value for a classification sample).

    Args:
        iou_thr (float): IoU at which a detection covers a GT box. Defaults to 0.5.
        score_thr (float): ``score_thr`` of the light test config of recording
            detectors. Defaults to 0.01.
        max_per_img (int): ``max_per_img`` of that config. Defaults to 100.
        nms_pre (int): Cap on the head's ``nms_pre`` (candidates per level before NMS)
            in that config: at initialisation nearly every anchor scores above 0.01,
            and NMS over thousands of boxes would cost more than 5 % of a step.
            Defaults to 200.
        expected_counts (dict, optional): Sample key -> number of non-ignored instances
            in the annotation file, to detect pipelines that drop instances.
        subset (set, optional): Only samples with these keys are recorded.
    """

    def __init__(self, iou_thr: float = 0.5, score_thr: float = 0.01, max_per_img: int = 100,
                 nms_pre: int = 200, expected_counts: Optional[Dict[SampleKey, int]] = None,
                 subset: Optional[Set[SampleKey]] = None) -> None:
        if not 0 < iou_thr <= 1:
            raise ValueError(f'iou_thr must be in (0, 1], but got {iou_thr!r}')
        if not 0 <= score_thr < 1:
            raise ValueError(f'score_thr must be in [0, 1), but got {score_thr!r}')
        for name, value in (('max_per_img', max_per_img), ('nms_pre', nms_pre)):
            check_int(value, name, minimum=1)
        self.iou_thr, self.score_thr, self.max_per_img = iou_thr, score_thr, max_per_img
        self.nms_pre = nms_pre
        self.expected_counts = expected_counts or {}
        self.subset = subset
        self.mismatch_warned = False
        self._cfgs: Dict[int, ConfigDict] = {}
        self._meta: List[tuple] = []  # (key, image id, mismatch, N) per sample
        self._values: List[Tuple[Tensor, ...]] = []  # (confidence, correct, label) per sample
        self._chunks: List[Tuple[Tensor, ...]] = []  # the same, concatenated, on the CPU

    def predict_cfg(self, test_cfg: Optional[dict]) -> ConfigDict:
        """The head's test config (or a default one) made light for recording:
        ``score_thr``, ``max_per_img`` and ``nms_pre`` of the recorder."""
        key = id(test_cfg)
        if key not in self._cfgs:
            cfg = dict(test_cfg) if test_cfg else dict(DEFAULT_PREDICT_CFG)
            cfg.update(score_thr=self.score_thr, max_per_img=self.max_per_img,
                       nms_pre=min(cfg.get('nms_pre', self.nms_pre), self.nms_pre))
            self._cfgs[key] = ConfigDict(cfg)
        return self._cfgs[key]

    def record(self, data_samples: Sequence, confidences: Sequence[Tensor],
               correct: Sequence[Tensor]) -> None:
        """Store the gold confidence and correctness of each sample's labels.

        Args:
            data_samples (Sequence): The B samples (metainfo with ``group_name`` and
                ``img_id`` / ``sample_idx`` / ``ann_id``; GT in ``gt_instances`` or
                ``gt_label``).
            confidences (Sequence[Tensor]): B tensors (N_i,), the model's probability of
                each gold label, in ``gt_instances`` order.
            correct (Sequence[Tensor]): B bool tensors (N_i,), whether the model's top
                prediction is the gold label.
        """
        if not len(data_samples) == len(confidences) == len(correct):
            raise ValueError(f'record() needs one entry per sample, but got '
                             f'{len(data_samples)} samples, {len(confidences)} confidences '
                             f'and {len(correct)} correct')
        for sample, conf, corr in zip(data_samples, confidences, correct):
            if conf.dim() != 1 or conf.shape != corr.shape:
                raise ValueError('record() needs 1-D tensors (N_i,) of equal length per '
                                 f'sample, but got shapes {tuple(conf.shape)} and '
                                 f'{tuple(corr.shape)}')
            key = sample_key(sample.metainfo)
            if self.subset is not None and key not in self.subset:
                continue
            meta = sample.metainfo
            image_id = meta.get('img_id', meta.get('sample_idx', ''))
            self._meta.append((key, str(image_id), self._check(key, len(conf)), len(conf)))
            # kept on the device, moved in chunks: one synchronisation per COMPACT samples
            self._values.append((conf.detach().float(), corr.detach().bool(),
                                 _gold_labels(sample, conf)))
        if len(self._values) >= COMPACT:
            self._compact()

    def _compact(self) -> None:
        if self._values:
            self._chunks.append(tuple(torch.cat([v[i] for v in self._values]).cpu()
                                      for i in range(3)))
            self._values = []

    def record_detections(self, data_samples: Sequence, head_samples: Sequence,
                          predictions: Optional[Sequence[InstanceData]]) -> None:
        """Record a detection head's samples from its predictions (see
        :func:`gold_confidence`).

        Args:
            data_samples (Sequence): The samples as the dataset gave them (their labels
                are stored).
            head_samples (Sequence): The same samples with GT labels in the head's label
                space, as the head was trained on them.
            predictions (Sequence[InstanceData], optional): The head's predictions from
                the training forward, boxes in the input space; None when the head
                cannot predict in ``loss()``.
        """
        if predictions is None:
            raise TypeError('DataMapHook: this head cannot predict from its training '
                            'forward (no loss_and_predict); recording supports the dense '
                            'heads of MultiHeadDetector (RetinaHead, FCOSHead, ...), not '
                            'two-stage RoI heads')
        pairs = [gold_confidence(pred, s.gt_instances.bboxes, s.gt_instances.labels,
                                 self.iou_thr) for pred, s in zip(predictions, head_samples)]
        self.record(data_samples, [c for c, _ in pairs], [k for _, k in pairs])

    def _check(self, key: SampleKey, count: int) -> bool:
        expected = self.expected_counts.get(key)
        if expected is None or expected == count:
            return False
        if not self.mismatch_warned:
            self.mismatch_warned = True
            print_log(f'DataMapHook: sample {key[2]!r} of group "{key[0]}" reached the model '
                      f'with {count} instances, but its annotation file has {expected}: the '
                      'train pipeline drops or adds instances (RandomCrop, '
                      'FilterAnnotations, Mosaic, ...), so instance j no longer is the j-th '
                      'annotation. Such samples are flagged and get no ann_id in '
                      'tools/analysis/data_map.py (warned once).', logger='current',
                      level=logging.WARNING)
        return True

    def __len__(self) -> int:
        return len(self._meta)

    def pop(self) -> Dict[str, np.ndarray]:
        """The rows recorded since the last call, one per label (then forgets them)."""
        self._compact()
        meta, chunks = self._meta, self._chunks
        self._meta, self._chunks = [], []
        columns = [torch.cat([c[i] for c in chunks]).numpy() if chunks else np.zeros(0)
                   for i in range(3)]
        rows: Dict[str, list] = dict(group=[], image_id=[], ann_id=[], inst=[],
                                     num_instances=[], mismatch=[])
        for (group, kind, ident), image_id, mismatch, n in meta:
            rows['group'] += [group] * n
            rows['image_id'] += [image_id] * n
            rows['ann_id'] += [int(ident) if kind == 'ann' else -1] * n
            rows['inst'] += range(n)
            rows['num_instances'] += [n] * n
            rows['mismatch'] += [mismatch] * n
        out = {k: np.asarray(v, dtype=COLUMN_DTYPES[k]) for k, v in rows.items()}
        out.update(confidence=columns[0].astype(np.float32), correct=columns[1].astype(bool),
                   label=columns[2].astype(np.int64))
        return out


COLUMN_DTYPES = dict(group=str, image_id=str, ann_id=np.int64, inst=np.int32, label=np.int64,
                     num_instances=np.int32, mismatch=bool)


def _gold_labels(sample, conf: Tensor) -> Tensor:
    """The sample's gold labels (N,), or -1s when it has none of length N."""
    labels = None
    if 'gt_instances' in sample and 'labels' in sample.gt_instances:
        labels = sample.gt_instances.labels
    elif 'gt_label' in sample:
        labels = torch.as_tensor(sample.gt_label).reshape(-1)
    if labels is None or labels.numel() != conf.numel():
        return torch.full_like(conf, -1, dtype=torch.long)
    return labels.detach().to(conf.device, torch.long)
