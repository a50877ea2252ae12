"""Cross-dataset evaluation: a train-group x eval-group matrix of a multi-head detector.

Each head of a ``MultiHeadDetector`` (trained on one group) is evaluated on each eval
dataset over the classes the two share, matched by name after an optional alias map
(``{'crowdpose': {'human': 'person'}}``: per head or dataset name, local class name ->
common name, as ``LabelSpace``'s ``class_mapping``). The metric is pycocotools' COCO bbox
mAP with ``params.catIds`` restricted to the shared categories; a cell with no shared class
is None. :func:`matrix_from_predictions` is the pure part (predictions in, matrix out);
:func:`cross_dataset_matrix` runs the model. ``tools/analysis/cross_dataset_eval.py`` is
the command line.
"""
import contextlib
import copy
import io
import json
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ..progress import collated_batches

__all__ = ['CrossDatasetError', 'complete_coco_gt', 'matrix_from_predictions', 'predict_per_head',
           'cross_dataset_matrix', 'matrix_markdown', 'plot_matrix']

ClassMap = Mapping[str, Mapping[str, str]]


class CrossDatasetError(ValueError):
    """Bad input to the cross-dataset evaluation; the message names the culprit and fix."""


def _quiet_coco(dataset: dict) -> COCO:
    """A ``COCO`` index of a GT dict (pycocotools prints while indexing)."""
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def complete_coco_gt(gt: dict) -> dict:
    """Copy of a COCO GT dict with the ``area`` / ``iscrowd`` that COCOeval and mmdet's
    ``CocoDataset`` need (CrowdPose's files lack ``area``; it becomes the box area)."""
    gt = copy.deepcopy(dict(gt))
    for ann in gt.get('annotations', []):
        ann.setdefault('iscrowd', 0)
        ann.setdefault('area', float(ann['bbox'][2] * ann['bbox'][3]))
    return gt


def _canonical(class_map: ClassMap, source: str, names: Sequence[str]) -> List[str]:
    table = class_map.get(source, {})
    return [table.get(n, n) for n in names]


def _eval_cell(gt: COCO, cat_ids: List[int], dets: List[dict]) -> dict:
    """COCO bbox mAP / mAP@50 of ``dets`` on ``gt``, over ``cat_ids`` only."""
    num_gt = len(gt.getAnnIds(catIds=cat_ids, iscrowd=False))
    cell = dict(num_gt=num_gt, num_dets=len(dets))
    if num_gt == 0:
        return dict(cell, bbox_mAP=None, bbox_mAP_50=None,
                    reason='the eval set has no GT instance of the shared classes')
    if not dets:  # pycocotools' loadRes cannot read an empty list; nothing found = 0
        return dict(cell, bbox_mAP=0.0, bbox_mAP_50=0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(copy.deepcopy(dets)), 'bbox')
        ev.params.catIds = list(cat_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return dict(cell, bbox_mAP=float(ev.stats[0]), bbox_mAP_50=float(ev.stats[1]))


def matrix_from_predictions(predictions: Mapping[str, Mapping[str, Sequence[dict]]],
                            head_classes: Mapping[str, Sequence[str]],
                            ground_truths: Mapping[str, dict],
                            class_map: Optional[ClassMap] = None) -> dict:
    """Head x eval-dataset COCO bbox mAP over the classes each pair shares.

    Args:
        predictions (Mapping): ``predictions[head][eval_name]`` = detections of that head
            on that eval set's images, COCO results format with the head's own label:
            ``dict(image_id=int, bbox=[x, y, w, h], score=float, label=int)``. A missing
            entry means no detection.
        head_classes (Mapping[str, Sequence[str]]): Head -> its class names, in label order.
        ground_truths (Mapping[str, dict]): Eval name -> COCO GT dict (``images``,
            ``annotations``, ``categories``).
        class_map (Mapping, optional): Per head / eval name, local class name -> common
            name. Unlisted names map to themselves.

    Returns:
        dict: ``heads``, ``evals``, ``metric`` (``'bbox_mAP'``), ``matrix`` (rows = heads,
        columns = eval sets; None where nothing is shared or the eval set has no GT of
        the shared classes) and ``cells[head][eval]`` with ``bbox_mAP``, ``bbox_mAP_50``,
        ``shared_classes``, ``num_gt``, ``num_dets``.
    """
    class_map = dict(class_map or {})
    unknown = set(class_map) - set(head_classes) - set(ground_truths)
    if unknown:
        raise CrossDatasetError(f'class map names {sorted(unknown)}, which are neither heads '
                                f'{list(head_classes)} nor eval sets {list(ground_truths)}')
    unknown = set(predictions) - set(head_classes)
    if unknown:
        raise CrossDatasetError(f'predictions of heads {sorted(unknown)} that have no '
                                f'head_classes; heads: {list(head_classes)}')
    cells: Dict[str, Dict[str, dict]] = OrderedDict((h, OrderedDict()) for h in head_classes)
    for ev_name, gt_dict in ground_truths.items():
        gt = _quiet_coco(complete_coco_gt(gt_dict))
        cats = gt.loadCats(gt.getCatIds())
        names = _canonical(class_map, ev_name, [c['name'] for c in cats])
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise CrossDatasetError(f'eval set "{ev_name}" has several categories named '
                                    f'{dup} (after the class map): merge or rename them')
        cat_of = dict(zip(names, (c['id'] for c in cats)))
        for head, classes in head_classes.items():
            common = _canonical(class_map, head, classes)
            shared = [n for n in names if n in set(common)]
            if not shared:
                cells[head][ev_name] = dict(bbox_mAP=None, bbox_mAP_50=None, shared_classes=[],
                                            reason='no shared class')
                continue
            dets = _to_eval_categories(predictions.get(head, {}).get(ev_name, ()), common,
                                       cat_of, head)
            cell = _eval_cell(gt, [cat_of[n] for n in shared], dets)
            cells[head][ev_name] = dict(cell, shared_classes=shared)
    evals = list(ground_truths)
    return dict(heads=list(head_classes), evals=evals, metric='bbox_mAP',
                matrix=[[cells[h][e]['bbox_mAP'] for e in evals] for h in head_classes],
                cells=cells)


def _to_eval_categories(dets: Sequence[dict], common: List[str], cat_of: Dict[str, int],
                        head: str) -> List[dict]:
    """Head-label detections -> eval ``category_id``; classes the eval set lacks dropped."""
    out = []
    for det in dets:
        label = int(det['label'])
        if not 0 <= label < len(common):
            raise CrossDatasetError(f'head "{head}" has {len(common)} classes but a detection '
                                    f'has label {label!r}')
        if common[label] in cat_of:
            out.append(dict(image_id=int(det['image_id']), bbox=[float(v) for v in det['bbox']],
                            score=float(det['score']), category_id=cat_of[common[label]]))
    return out


@torch.no_grad()
def predict_per_head(model: torch.nn.Module, dataset, batch_size: int = 4) -> Dict[str, list]:
    """Run every head of a ``MultiHeadDetector`` on every image of ``dataset``.

    ``model.predict_per_head`` on every batch: the backbone / neck (and shared RPN) run
    once, each head predicts on the whole batch in its own label space (with its own copy
    of a ``SoftParameterSharing`` neck), boxes rescaled to the original image.

    Args:
        model (MultiHeadDetector): The model.
        dataset (BaseDataset): A dataset with a test pipeline keeping ``img_id`` and
            ``scale_factor`` in the packed metainfo.
        batch_size (int): Images per forward pass. Defaults to 4.

    Returns:
        dict[str, list[dict]]: Head -> detections ``dict(image_id, bbox=[x, y, w, h], score,
        label)`` (label in the head's classes).
    """
    heads = getattr(model, 'heads', None)
    if not isinstance(heads, torch.nn.ModuleDict) or \
            not callable(getattr(model, 'predict_per_head', None)):
        raise CrossDatasetError(f'{type(model).__name__} has no heads ModuleDict: the cross-'
                                'dataset matrix needs a MultiHeadDetector')
    model.eval()
    out: Dict[str, list] = {h: [] for h in heads}
    for _, data in collated_batches(dataset, batch_size, description='predicting'):
        data = model.data_preprocessor(data, False)
        samples = data['data_samples']
        per_head = model.predict_per_head(data['inputs'], samples, rescale=True)
        for name, results in per_head.items():
            for sample, res in zip(samples, results):
                xyxy = res.bboxes.cpu().numpy().astype(np.float64)
                for box, score, label in zip(xyxy, res.scores.tolist(), res.labels.tolist()):
                    out[name].append(dict(
                        image_id=int(sample.metainfo['img_id']), score=float(score),
                        label=int(label), bbox=[box[0], box[1], box[2] - box[0],
                                                box[3] - box[1]]))
    return out


def _restricted_gt(dataset) -> dict:
    """The dataset's COCO GT dict, categories limited to its metainfo classes."""
    with open(dataset.ann_file) as f:
        gt = json.load(f)
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    if classes:
        keep = {c['id'] for c in gt['categories'] if c['name'] in set(classes)}
        gt['categories'] = [c for c in gt['categories'] if c['id'] in keep]
        gt['annotations'] = [a for a in gt['annotations'] if a['category_id'] in keep]
    return gt


def cross_dataset_matrix(model: torch.nn.Module,
                         datasets: Mapping[str, object],
                         class_map: Optional[ClassMap] = None,
                         batch_size: int = 4) -> dict:
    """Evaluate every head of ``model`` on every dataset of ``datasets``.

    Args:
        model (MultiHeadDetector): Model whose ``dataset_meta`` is set (so that
            ``head_classes()`` gives real class names).
        datasets (Mapping[str, BaseDataset]): Eval name -> mmdet ``CocoDataset`` (test
            pipeline, ``ann_file`` read for the GT).
        class_map (Mapping, optional): See :func:`matrix_from_predictions`.
        batch_size (int): Images per forward pass. Defaults to 4.

    Returns:
        dict: As :func:`matrix_from_predictions`.
    """
    if not datasets:
        raise CrossDatasetError('no eval dataset given')
    if not hasattr(model, 'head_classes'):
        raise CrossDatasetError(f'{type(model).__name__} is not a multi-head model: the '
                                'cross-dataset matrix needs a MultiHeadDetector')
    head_classes = model.head_classes()
    predictions: Dict[str, Dict[str, list]] = {h: {} for h in head_classes}
    for name, dataset in datasets.items():
        for head, dets in predict_per_head(model, dataset, batch_size).items():
            predictions[head][name] = dets
    gts = {name: _restricted_gt(ds) for name, ds in datasets.items()}
    return matrix_from_predictions(predictions, head_classes, gts, class_map)


def matrix_markdown(result: dict, digits: int = 3) -> str:
    """The matrix as a Markdown table (rows = heads / train groups, '-' = no shared class)."""
    lines = ['| train \\ eval | ' + ' | '.join(result['evals']) + ' |',
             '|' + '---|' * (len(result['evals']) + 1)]
    for head, row in zip(result['heads'], result['matrix']):
        vals = ['-' if v is None else f'{v:.{digits}f}' for v in row]
        lines.append(f'| {head} | ' + ' | '.join(vals) + ' |')
    return '\n'.join(lines) + '\n'


def plot_matrix(result: dict) -> bytes:
    """Heatmap of the matrix with its values written in the cells (PNG bytes)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    values = np.array([[np.nan if v is None else v for v in row] for row in result['matrix']],
                      dtype=float).reshape(len(result['heads']), len(result['evals']))
    fig, ax = plt.subplots(figsize=(2.6 + 1.1 * len(result['evals']),
                                    1.6 + 0.6 * len(result['heads'])))
    image = ax.imshow(np.ma.masked_invalid(values), cmap='viridis', vmin=0.0, vmax=1.0)
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, 'n/a' if np.isnan(v) else f'{v:.3f}', ha='center', va='center',
                color='grey' if np.isnan(v) else ('black' if v > 0.6 else 'white'), fontsize=9)
    ax.set_xticks(range(len(result['evals'])), result['evals'], rotation=20, ha='right')
    ax.set_yticks(range(len(result['heads'])), result['heads'])
    ax.set_xlabel('eval dataset')
    ax.set_ylabel('head (train group)')
    ax.set_title(f'cross-dataset {result["metric"]}', fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=110)
    plt.close(fig)
    return buf.getvalue()
