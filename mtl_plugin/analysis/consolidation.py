"""Dataset consolidation by pseudo-labels, and suspicious-label flags (tools/consolidate.py).

Each source annotates only its own classes. Given predictions of a model trained on all
sources (a ``MultiHeadDetector`` merged into the unified label space), every source gets a
new COCO file over *all* classes:

- its ground truth, unchanged (same ids; categories remapped by name);
- for each class it does not annotate: a prediction with ``score >= high[c]`` becomes an
  annotation (``"pseudo": true, "score": s``); ``low[c] <= score < high[c]`` becomes an
  ignore region (``"iscrowd": 1``: mmdet's ``CocoDataset`` turns it into
  ``ignore_flag=1``, so it is neither foreground nor background); a prediction overlapping
  any ground-truth box by IoU >= ``dup_iou`` is dropped, so ground truth is never
  duplicated.

For its own classes it flags (review rows, nothing is changed):

- ``missing_detection``: a GT box with no prediction of its class at IoU >= ``match_iou``
  and score >= low (the label may be wrong, or the object hard);
- ``possibly_missing_label``: a prediction of an own class with score >= high and no GT box
  of any own class at IoU >= ``match_iou``;
- ``label_mismatch``: a GT box whose best-overlapping confident prediction has another own
  class and which no confident prediction of its own class matches.

Box calibration: a model draws a class it never saw boxed on a source's look with a
systematic bias (too small, shifted); :func:`box_pairs` + :func:`fit_box_calibration` learn
each class's median correction on fully labelled held-out images, and
``consolidate_source(calibration=...)`` applies it to that class's pseudo boxes.

Every review row also carries cleanlab's per-image label quality score
(``cleanlab.object_detection.rank.get_label_quality_scores`` on the own classes: lower =
more suspicious), to compare with the per-label flags.
"""
import copy
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from mmdet.evaluation.functional import bbox_overlaps

__all__ = ['ConsolidationError', 'Thresholds', 'box_iou', 'consolidate_source',
           'tune_thresholds', 'cleanlab_image_scores', 'xywh_to_xyxy', 'match_predictions',
           'thresholds_from_matches', 'box_pairs', 'fit_box_calibration', 'calibrated_boxes']

#: predictions of one image: ``bboxes`` (N, 4) xyxy, ``scores`` (N,), ``labels`` (N,) int
#: indices into the unified class list
Pred = Mapping[str, np.ndarray]


class ConsolidationError(ValueError):
    """Bad inputs for consolidation; the message names the culprit and the fix."""


@dataclass
class Thresholds:
    """Per-class score thresholds (class name -> value); ``default_*`` for the others."""
    default_high: float = 0.8
    default_low: float = 0.3
    high: Dict[str, float] = field(default_factory=dict)
    low: Dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in set(self.high) | set(self.low) | {None}:
            lo, hi = self.get(name) if name else (self.default_low, self.default_high)
            if not (0.0 <= lo <= hi <= 1.0) or np.isnan(lo) or np.isnan(hi):
                raise ConsolidationError(f'thresholds of {name or "default"!r} need 0 <= low '
                                         f'<= high <= 1, but got low={lo!r}, high={hi!r}')

    def get(self, name: str) -> Tuple[float, float]:
        """(low, high) of a class."""
        return self.low.get(name, self.default_low), self.high.get(name, self.default_high)


def xywh_to_xyxy(boxes: Sequence[Sequence[float]]) -> np.ndarray:
    """(N, 4) COCO ``[x, y, w, h]`` -> (N, 4) ``[x1, y1, x2, y2]`` (float32)."""
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes (zeros when either side is empty)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    return bbox_overlaps(a.astype(np.float32), b.astype(np.float32))


def _index(coco: dict, classes: Sequence[str], own: Optional[Mapping[str, str]] = None
           ) -> Tuple[dict, Dict[int, list]]:
    """Category id -> unified class index of the categories the source annotates, and
    image id -> its annotations of those categories.

    ``own`` (local class name -> unified name, the source's ``metainfo.classes``) picks
    the categories, as mmdet's ``CocoDataset`` does: a file that lists every category
    still annotates only these. Without it, every category of the file is the source's.
    """
    cats = coco['categories']
    if own is None:
        own = {c['name']: c['name'] for c in cats}
    unknown = [u for u in own.values() if u not in classes]
    if unknown:
        raise ConsolidationError(f'classes {unknown} are not in the unified classes '
                                 f'{list(classes)}')
    cat_to_cls = {c['id']: list(classes).index(own[c['name']]) for c in cats
                  if c['name'] in own}
    per_image: Dict[int, list] = {im['id']: [] for im in coco['images']}
    for ann in coco['annotations']:
        if ann['category_id'] in cat_to_cls:
            per_image.setdefault(ann['image_id'], []).append(ann)
    return cat_to_cls, per_image


def _own_indices(classes: Sequence[str], own: Optional[Mapping[str, str]],
                 cat_to_cls: Mapping[int, int]) -> List[int]:
    """Unified indices of the classes a source annotates (even those its file lacks)."""
    if own is None:
        return sorted(set(cat_to_cls.values()))
    return sorted({list(classes).index(u) for u in own.values()})


def _remapped(coco: dict, classes: Sequence[str], cat_to_cls: Mapping[int, int]) -> dict:
    """A copy of ``coco`` over the unified categories, with the source's own annotations."""
    out = copy.deepcopy(coco)
    out['categories'] = [dict(id=i + 1, name=c, supercategory=c) for i, c in enumerate(classes)]
    out['annotations'] = [dict(a, category_id=cat_to_cls[a['category_id']] + 1)
                          for a in out['annotations'] if a['category_id'] in cat_to_cls]
    return out


def consolidate_source(coco: dict, classes: Sequence[str], preds: Mapping[int, Pred],
                       thresholds: Thresholds, source: str = '', dup_iou: float = 0.7,
                       match_iou: float = 0.5, own: Optional[Mapping[str, str]] = None,
                       calibration: Optional[Mapping[str, Optional[Sequence[float]]]] = None
                       ) -> Tuple[dict, List[dict]]:
    """New COCO dict of one source over all ``classes``, and its review rows.

    Args:
        coco (dict): The source's COCO dict (its own classes only); not modified.
        classes (Sequence[str]): The unified classes; prediction labels index them.
        preds (Mapping[int, Pred]): Image id -> predictions (original image coordinates).
            Images without an entry get no pseudo-labels and no flags.
        thresholds (Thresholds): Per-class score thresholds.
        source (str): Name written into the review rows.
        dup_iou (float): A pseudo box with IoU >= this to any GT box is dropped.
        match_iou (float): IoU that counts as a match for the flags.
        own (Mapping[str, str], optional): The classes the source annotates (its
            ``metainfo.classes``: local -> unified name); annotations of other categories
            are left out, as in training. Defaults to every category of the file.
        calibration (Mapping, optional): Class -> box correction
            (:func:`fit_box_calibration`), applied to the predictions of the classes the
            source does not annotate (the pseudo boxes and ignore regions) before anything
            else; the flags on its own classes use the predictions as they are.

    Returns:
        tuple[dict, list[dict]]: The consolidated COCO dict and the review rows
        (``image_id``, ``ann_id``, ``source``, ``class``, ``kind``, ``score``, ``bbox``).
    """
    cat_to_cls, per_image = _index(coco, classes, own)
    own = _own_indices(classes, own, cat_to_cls)
    out = _remapped(coco, classes, cat_to_cls)
    next_id = max([a['id'] for a in coco['annotations']], default=0) + 1
    rows: List[dict] = []
    shapes = {im['id']: (im['height'], im['width']) for im in coco['images']
              if 'height' in im and 'width' in im}
    for image_id, anns in per_image.items():
        pred = preds.get(image_id)
        if pred is None:
            continue
        gt_box = xywh_to_xyxy([a['bbox'] for a in anns])
        gt_cls = np.array([cat_to_cls[a['category_id']] for a in anns], dtype=np.int64)
        boxes = np.asarray(pred['bboxes'], np.float32).reshape(-1, 4)
        scores = np.asarray(pred['scores'], np.float32).reshape(-1)
        labels = np.asarray(pred['labels'], np.int64).reshape(-1)
        if calibration:
            other = ~np.isin(labels, own)
            boxes = boxes.copy()
            boxes[other] = calibrated_boxes(boxes[other], labels[other], classes, calibration,
                                            shapes.get(image_id))
        iou = box_iou(boxes, gt_box)  # (P, G)
        added, added_rows = _pseudo(image_id, boxes, scores, labels, iou, own, classes,
                                    thresholds, dup_iou, next_id, source)
        next_id += len(added)
        out['annotations'] += added
        rows += added_rows
        rows += _flags(anns, gt_box, gt_cls, boxes, scores, labels, iou, own, classes,
                       thresholds, source, image_id, match_iou)
    return out, rows


def _pseudo(image_id, boxes, scores, labels, iou, own, classes, thresholds, dup_iou, next_id,
            source) -> Tuple[List[dict], List[dict]]:
    """One image's pseudo annotations (score >= high) and ignore regions (low <= score <
    high) of the classes the source does not own, highest score first, never over a GT box
    nor over a higher-scored added box (IoU >= ``dup_iou``); and their review rows."""
    added: List[dict] = []
    rows: List[dict] = []
    kept = np.zeros((0, 4), np.float32)  # boxes added so far (pseudo and ignore)
    for p in np.argsort(-scores, kind='stable'):
        c = int(labels[p])
        if c in own:
            continue
        low, high = thresholds.get(classes[c])
        if scores[p] < low or (iou.shape[1] and iou[p].max() >= dup_iou) or \
                (len(kept) and box_iou(boxes[p:p + 1], kept).max() >= dup_iou):
            continue
        kept = np.concatenate([kept, boxes[p:p + 1]])
        x1, y1, x2, y2 = (round(float(v), 2) for v in boxes[p])
        ann = dict(id=next_id + len(added), image_id=image_id, category_id=c + 1,
                   bbox=[x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)],
                   area=round((x2 - x1) * (y2 - y1), 2), iscrowd=int(scores[p] < high),
                   pseudo=True, score=round(float(scores[p]), 4))
        added.append(ann)
        rows.append(_row(image_id, None, source, classes[c],
                         'pseudo' if scores[p] >= high else 'ignore', scores[p], ann['bbox']))
    return added, rows


def _row(image_id, ann_id, source, cls, kind, score, bbox) -> dict:
    return dict(image_id=image_id, ann_id=ann_id, source=source, **{'class': cls}, kind=kind,
                score=None if score is None else round(float(score), 4),
                bbox=[round(float(v), 2) for v in bbox])


def _flags(anns, gt_box, gt_cls, boxes, scores, labels, iou, own, classes, thresholds,
           source, image_id, match_iou) -> List[dict]:
    """Suspicious-label rows of one image (own classes only)."""
    rows = []
    lows = np.array([thresholds.get(classes[c])[0] for c in labels], np.float32)
    highs = np.array([thresholds.get(classes[c])[1] for c in labels], np.float32)
    is_own = np.isin(labels, own)
    for g, ann in enumerate(anns):
        same = (labels == gt_cls[g]) & (iou[:, g] >= match_iou)
        confident = (scores >= highs) & is_own & (iou[:, g] >= match_iou)
        if not (same & (scores >= lows)).any():
            best = np.flatnonzero(confident)
            if len(best) and labels[best[np.argmax(iou[best, g])]] != gt_cls[g]:
                p = best[np.argmax(iou[best, g])]
                rows.append(_row(image_id, ann['id'], source, classes[gt_cls[g]],
                                 'label_mismatch', scores[p], ann['bbox']))
            else:
                rows.append(_row(image_id, ann['id'], source, classes[gt_cls[g]],
                                 'missing_detection', None, ann['bbox']))
    own_gt = iou[:, np.isin(gt_cls, own)] if iou.shape[1] else iou
    unmatched = ~(own_gt >= match_iou).any(axis=1) if own_gt.shape[1] else \
        np.ones(len(boxes), bool)
    for p in np.flatnonzero(is_own & (scores >= highs) & unmatched):
        x1, y1, x2, y2 = boxes[p]
        rows.append(_row(image_id, None, source, classes[labels[p]], 'possibly_missing_label',
                         scores[p], [x1, y1, x2 - x1, y2 - y1]))
    return rows


def cleanlab_image_scores(coco: dict, classes: Sequence[str], preds: Mapping[int, Pred],
                          own: Optional[Mapping[str, str]] = None) -> Dict[int, float]:
    """cleanlab's label quality score of each image with predictions (own classes only;
    ``own`` as in :func:`consolidate_source`)."""
    from cleanlab.object_detection.rank import get_label_quality_scores
    cat_to_cls, per_image = _index(coco, classes, own)
    own = _own_indices(classes, own, cat_to_cls)
    local = {c: i for i, c in enumerate(own)}
    ids, labels, predictions = [], [], []
    for image_id, anns in per_image.items():
        pred = preds.get(image_id)
        if pred is None:
            continue
        ids.append(image_id)
        labels.append(dict(bboxes=xywh_to_xyxy([a['bbox'] for a in anns]),
                           labels=np.array([local[cat_to_cls[a['category_id']]] for a in anns],
                                           dtype=np.int64)))
        boxes = np.asarray(pred['bboxes'], np.float32).reshape(-1, 4)
        scores = np.asarray(pred['scores'], np.float32).reshape(-1, 1)
        lab = np.asarray(pred['labels'], np.int64).reshape(-1)
        per_class = [np.concatenate([boxes, scores], 1)[lab == c] for c in own]
        if len(per_class) == 3:  # cleanlab would read 3 arrays as (boxes, labels, scores)
            per_class.append(np.zeros((0, 5), np.float32))
        predictions.append(per_class)
    if not ids:
        return {}
    scores = get_label_quality_scores(labels, predictions, verbose=False)
    return {i: round(float(s), 4) for i, s in zip(ids, scores)}


#: one prediction on a fully labelled split: (class index, score, xyxy box, matched object's
#: xyxy box or None)
Match = Tuple[int, float, np.ndarray, Optional[np.ndarray]]


def match_predictions(coco_full: dict, classes: Sequence[str], preds: Mapping[int, Pred],
                      match_iou: float = 0.5) -> List[Match]:
    """Every prediction on a fully labelled split with the object it matches (or None):
    one-to-one matches at ``match_iou``, highest score first, as COCO matches (crowd boxes
    are not objects). What :func:`thresholds_from_matches` and :func:`box_pairs` read, so a
    split is matched once for both."""
    cat_to_cls, per_image = _index(coco_full, classes)
    out = []
    for image_id, anns in per_image.items():
        pred = preds.get(image_id)
        if pred is None:
            continue
        objects = [a for a in anns if not a.get('iscrowd', 0)]
        gt_box = xywh_to_xyxy([a['bbox'] for a in objects])
        gt_cls = np.array([cat_to_cls[a['category_id']] for a in objects], np.int64)
        boxes = np.asarray(pred['bboxes'], np.float32).reshape(-1, 4)
        scores = np.asarray(pred['scores'], np.float32).reshape(-1)
        labels = np.asarray(pred['labels'], np.int64).reshape(-1)
        iou = box_iou(boxes, gt_box)
        taken = np.zeros(len(gt_box), bool)
        for p in np.argsort(-scores, kind='stable'):
            ok = (gt_cls == labels[p]) & ~taken & (iou[p] >= match_iou if len(gt_box) else False)
            match = None
            if ok.any():
                g = np.flatnonzero(ok)[np.argmax(iou[p][ok])]
                taken[g] = True
                match = gt_box[g]
            out.append((int(labels[p]), float(scores[p]), boxes[p], match))
    return out


def tune_thresholds(coco_full: dict, classes: Sequence[str], preds: Mapping[int, Pred],
                    target_precision: float = 0.9, match_iou: float = 0.5,
                    candidates: Optional[Sequence[float]] = None) -> Dict[str, Optional[float]]:
    """Per class, the lowest candidate ``high`` threshold whose predictions reach
    ``target_precision`` on a fully labelled split (one-to-one matches at ``match_iou``,
    highest score first, as COCO matches). None: no candidate reaches it.
    """
    return thresholds_from_matches(match_predictions(coco_full, classes, preds, match_iou),
                                   classes, target_precision, candidates)


def thresholds_from_matches(matches: Sequence[Match], classes: Sequence[str],
                            target_precision: float = 0.9,
                            candidates: Optional[Sequence[float]] = None
                            ) -> Dict[str, Optional[float]]:
    """:func:`tune_thresholds` on the output of :func:`match_predictions`."""
    if not 0.0 < target_precision <= 1.0:
        raise ConsolidationError(f'target_precision must be in (0, 1], but got '
                                 f'{target_precision!r}')
    candidates = np.round(np.arange(0.05, 1.0, 0.05), 2) if candidates is None else candidates
    out: Dict[str, Optional[float]] = {}
    for c, name in enumerate(classes):
        s = np.array([m[1] for m in matches if m[0] == c], np.float32)
        hit = np.array([m[3] is not None for m in matches if m[0] == c], bool)
        out[name] = next((float(t) for t in sorted(candidates)
                          if (s >= t).any() and hit[s >= t].mean() >= target_precision), None)
    return out


def box_pairs(matches: Sequence[Match], classes: Sequence[str], high: Mapping[str, float]
              ) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """Per class in ``high``: its predictions with ``score >= high[class]`` that matched an
    object (``matches`` from :func:`match_predictions`), and those objects' boxes,
    ``((N, 4), (N, 4))`` xyxy: what :func:`fit_box_calibration` learns from."""
    unknown = sorted(set(high) - set(classes))
    if unknown:
        raise ConsolidationError(f'box_pairs: classes {unknown} are not in the unified '
                                 f'classes {list(classes)}')
    out = {}
    for name, thr in high.items():
        c = list(classes).index(name)
        got = [(m[2], m[3]) for m in matches if m[0] == c and m[1] >= thr and m[3] is not None]
        out[name] = (np.array([g[0] for g in got], np.float32).reshape(-1, 4),
                     np.array([g[1] for g in got], np.float32).reshape(-1, 4))
    return out


def fit_box_calibration(pairs: Mapping[str, Tuple[np.ndarray, np.ndarray]],
                        min_pairs: int = 10) -> Dict[str, Optional[List[float]]]:
    """Per class, the median box correction from confident predictions to the objects they
    match, as mmdet's ``DeltaXYWHBBoxCoder`` deltas ``[dx, dy, dw, dh]`` (centre shift in
    box widths / heights, log size ratio): a model whose boxes are systematically too small
    on a look it never saw boxed (the other source's classes) passes that bias on to every
    pseudo box; :func:`consolidate_source` applies the correction. The median resists the
    odd bad match.

    Args:
        pairs (Mapping[str, tuple]): Class -> (predicted boxes, matched object boxes), xyxy,
            e.g. from :func:`box_pairs`.
        min_pairs (int): Fewer pairs than this: no correction for the class (None).

    Returns:
        dict: Class -> ``[dx, dy, dw, dh]`` (rounded to 4 decimals) or None.
    """
    import torch
    from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
    if min_pairs < 1:
        raise ConsolidationError(f'min_pairs must be >= 1, but got {min_pairs!r}')
    coder = DeltaXYWHBBoxCoder()
    out: Dict[str, Optional[List[float]]] = {}
    for name, (pred, gt) in pairs.items():
        if len(pred) != len(gt):
            raise ConsolidationError(f'class {name!r}: {len(pred)} predicted boxes but '
                                     f'{len(gt)} matched objects')
        if len(pred) < min_pairs:
            out[name] = None
            continue
        deltas = coder.encode(torch.as_tensor(pred), torch.as_tensor(gt))
        out[name] = [round(float(v), 4) for v in deltas.median(dim=0).values]
    return out


def calibrated_boxes(boxes: np.ndarray, labels: np.ndarray, classes: Sequence[str],
                     calibration: Mapping[str, Optional[Sequence[float]]],
                     shape: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """``boxes`` (xyxy) with each class's correction from :func:`fit_box_calibration`
    applied (classes without one unchanged), clipped to ``shape`` (h, w) if given."""
    import torch
    from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
    unknown = sorted(set(calibration) - set(classes))
    if unknown:
        raise ConsolidationError(f'box calibration of classes {unknown}, which are not in '
                                 f'the unified classes {list(classes)}')
    out = np.array(boxes, np.float32).reshape(-1, 4)
    coder = DeltaXYWHBBoxCoder()
    for name, delta in calibration.items():
        sel = labels == list(classes).index(name)
        if delta is None or not sel.any():
            continue
        fixed = coder.decode(torch.as_tensor(out[sel]),
                             torch.as_tensor(delta, dtype=torch.float32).expand(
                                 int(sel.sum()), 4), max_shape=shape)
        out[sel] = fixed.numpy()
    return out
