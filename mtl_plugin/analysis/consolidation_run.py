"""Running consolidation end to end: predictions (model or dump), files, review report."""
import csv
import io
import json
import os
import os.path as osp
import pickle
import shutil
import tempfile
from collections import defaultdict
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .consolidation import (ConsolidationError, Match, Thresholds, cleanlab_image_scores,
                            consolidate_source, match_predictions)
from ..io import atomic_write
from ..progress import collated_batches

__all__ = ['predict_dataset', 'load_dumped_predictions', 'run_consolidation',
           'match_labelled']

#: (group name, image id) -> predictions of that image
Predictions = Dict[Tuple[str, int], Dict[str, np.ndarray]]


def _entry(sample) -> Tuple[Tuple[str, int], Dict[str, np.ndarray]]:
    """One prediction (a DetDataSample or DumpResults' dict) -> key and numpy arrays."""
    if hasattr(sample, 'metainfo'):
        meta, inst = sample.metainfo, sample.pred_instances
        get = lambda k: getattr(inst, k)  # noqa: E731
    else:
        meta, inst = sample, sample.get('pred_instances')
        if inst is None:
            raise ConsolidationError('a dumped prediction has no pred_instances: dump a '
                                     'detector\'s test results (tools/test.py --out)')
        get = inst.__getitem__
    arrays = {k: np.asarray(get(k).cpu() if hasattr(get(k), 'cpu') else get(k))
              for k in ('bboxes', 'scores', 'labels')}
    return (str(meta.get('group_name', '')), int(meta['img_id'])), arrays


def predict_dataset(model, dataset, batch_size: int = 4, cfg: Optional[Mapping] = None,
                    split: str = 'test') -> Predictions:
    """Run ``model.test_step`` over a (Multi-Source) dataset, with a progress bar.

    Args:
        model: The detector (eval mode).
        dataset: The dataset (e.g. :func:`~mtl_plugin.analysis.tool_data.build_tool_dataset`).
        batch_size (int): Images per batch. Defaults to 4.
        cfg (Mapping, optional): The config: batches come from ``Runner.build_dataloader``
            with its ``<split>_dataloader``'s ``collate_fn``
            (:func:`~mtl_plugin.analysis.tool_data.tool_batches`). Defaults to None
            (``pseudo_collate``).
        split (str): Whose dataloader settings. Defaults to ``'test'``.

    Returns:
        Predictions: (group name, image id) -> ``bboxes``, ``scores``, ``labels``.
    """
    import torch

    from .tool_data import tool_batches
    out: Predictions = {}
    batches = collated_batches(dataset, batch_size, description='predicting') if cfg is None \
        else tool_batches(cfg, dataset, batch_size, split=split)
    with torch.no_grad():
        for _, batch in batches:
            for sample in model.test_step(batch):
                key, arrays = _entry(sample)
                out[key] = arrays
    return out


def load_dumped_predictions(path: str) -> Predictions:
    """Predictions dumped by ``tools/test.py --out preds.pkl`` (MMEngine DumpResults)."""
    if not osp.isfile(path):
        raise ConsolidationError(f'predictions file {path!r} does not exist')
    try:
        with open(path, 'rb') as f:
            dumped = pickle.load(f)
    except Exception as err:  # truncated / not a pickle
        raise ConsolidationError(f'predictions file {path!r} cannot be read: '
                                 f'{type(err).__name__}: {err}') from err
    if not isinstance(dumped, list):
        raise ConsolidationError(f'{path!r} is not a list of predictions (tools/test.py --out)')
    return dict(_entry(s) for s in dumped)


def _review_png(rows: List[dict], images: Mapping[Tuple[str, int], str], top: int) -> bytes:
    """A grid of crops of the first ``top`` flagged rows, each titled with its kind."""
    import cv2
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = rows[:top]
    cols = 8
    n = max(len(rows), 1)
    fig, axes = plt.subplots((n + cols - 1) // cols, cols, figsize=(cols * 1.6, 1.9 * ((n + cols - 1) // cols)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis('off')
    for ax, row in zip(axes.flat, rows):
        img = cv2.imread(images.get((row['source'], row['image_id']), ''))
        if img is None:
            continue
        x, y, w, h = row['bbox']
        pad = 0.15 * max(w, h)
        y0, x0 = int(max(y - pad, 0)), int(max(x - pad, 0))
        crop = img[y0:int(y + h + pad) + 1, x0:int(x + w + pad) + 1, ::-1]
        if crop.size:
            ax.imshow(crop)
        score = '' if row['score'] is None else f' {row["score"]:.2f}'
        ax.set_title(f'{row["kind"]}\n{row["class"]}{score}', fontsize=6)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=100)
    plt.close(fig)
    return buf.getvalue()


REVIEW_ORDER = ('label_mismatch', 'possibly_missing_label', 'missing_detection', 'pseudo',
                'ignore')


def run_consolidation(sources: Sequence[dict], classes: Sequence[str], preds: Predictions,
                      thresholds: Thresholds, out_dir: str, review_top: int = 48,
                      tuned: Optional[dict] = None,
                      calibration: Optional[dict] = None) -> dict:
    """Consolidate every source and write the files and the review report.

    Args:
        sources (Sequence[dict]): ``name``, ``ann_file``, ``img_dir`` of each source, and
            optionally ``own``: the classes it annotates, local name -> unified name (its
            ``metainfo.classes``; default: every category of its file).
        classes (Sequence[str]): Unified classes (prediction labels index them).
        preds (Predictions): (group, image id) -> predictions.
        thresholds (Thresholds): Score thresholds.
        out_dir (str): Output folder: ``<source>_consolidated.json``, ``review.csv``,
            ``review.png``, ``summary.json``. The whole set is written atomically: into a
            staging folder beside it, then moved in with ``summary.json`` last (a stale
            ``summary.json`` is removed first), so an interrupted run never leaves new
            and stale files under a summary.
        review_top (int): Crops in the PNG. Defaults to 48.
        tuned (dict, optional): Tuned thresholds, recorded in the summary.
        calibration (dict, optional): Class -> box correction of its pseudo boxes
            (:func:`~mtl_plugin.analysis.consolidation.fit_box_calibration`), applied and
            recorded in the summary.

    Returns:
        dict: The summary (counts per source and kind, paths, thresholds; ``gt``: the
        file's annotations, ``own_gt``: those of the source's own classes, kept).
    """
    os.makedirs(out_dir, exist_ok=True)
    staging = tempfile.mkdtemp(dir=out_dir, prefix='.staging-')
    try:
        summary = _consolidate_all(sources, classes, preds, thresholds, staging, review_top,
                                   tuned, calibration)
        _publish(staging, out_dir, summary)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary


def _publish(staging: str, out_dir: str, summary: dict) -> None:
    """Move the staged files into ``out_dir``: the old summary out first, the new last."""
    for src in summary['sources'].values():
        src['file'] = osp.join(out_dir, osp.basename(src['file']))
    atomic_write(osp.join(staging, 'summary.json'), json.dumps(summary, indent=1).encode())
    final = osp.join(out_dir, 'summary.json')
    if osp.exists(final):
        os.remove(final)
    for name in sorted(os.listdir(staging), key=lambda n: n == 'summary.json'):
        os.replace(osp.join(staging, name), osp.join(out_dir, name))


def _consolidate_all(sources: Sequence[dict], classes: Sequence[str], preds: Predictions,
                     thresholds: Thresholds, out_dir: str, review_top: int,
                     tuned: Optional[dict], calibration: Optional[dict]) -> dict:
    """Write every output but ``summary.json`` into ``out_dir``; return the summary."""
    rows_all: List[dict] = []
    images: Dict[Tuple[str, int], str] = {}
    summary = dict(classes=list(classes), thresholds=dict(
        default_high=thresholds.default_high, default_low=thresholds.default_low,
        high=thresholds.high, low=thresholds.low), tuned=tuned,
        box_calibration=calibration, sources={})
    for src in sources:
        try:
            with open(src['ann_file']) as f:
                coco = json.load(f)
        except (OSError, ValueError) as err:
            raise ConsolidationError(f"source {src['name']!r}: annotation file "
                                     f"{src['ann_file']!r} cannot be read: {err}") from err
        mine = {img_id: p for (g, img_id), p in preds.items() if g == src['name']}
        if coco['images'] and not mine:
            raise ConsolidationError(
                f"no prediction matches source {src['name']!r}: the predictions' group names "
                f'are {sorted({g for g, _ in preds})}')
        missing = {im['id'] for im in coco['images']} - set(mine)
        if len(missing) == len(coco['images']) and coco['images']:
            raise ConsolidationError(f"the predictions do not match {src['ann_file']!r}: no "
                                     'image id in common')
        new, rows = consolidate_source(coco, classes, mine, thresholds, src['name'],
                                       own=src.get('own'), calibration=calibration)
        quality = cleanlab_image_scores(coco, classes, mine, src.get('own'))
        for r in rows:
            r['cleanlab_image_score'] = quality.get(r['image_id'])
        for im in coco['images']:
            images[(src['name'], im['id'])] = osp.join(src['img_dir'], im['file_name'])
        path = osp.join(out_dir, f"{src['name']}_consolidated.json")
        atomic_write(path, json.dumps(new).encode())
        counts = defaultdict(int)
        for r in rows:
            counts[r['kind']] += 1
        summary['sources'][src['name']] = dict(file=path, images=len(coco['images']),
                                               images_without_predictions=len(missing),
                                               gt=len(coco['annotations']),
                                               own_gt=sum(a.get('pseudo') is None for a in
                                                          new['annotations']), **counts)
        rows_all += rows
    _write_review(rows_all, images, review_top, out_dir)
    return summary


def _write_review(rows: List[dict], images: Mapping[Tuple[str, int], str], top: int,
                  out_dir: str) -> None:
    """``review.csv`` (every row, most suspicious first) and ``review.png`` (crops)."""
    rows.sort(key=lambda r: (REVIEW_ORDER.index(r['kind']),
                             -(r['score'] or 0.0) if r['kind'] != 'missing_detection'
                             else (r['cleanlab_image_score'] or 0.0)))
    _write_csv(rows, osp.join(out_dir, 'review.csv'))
    flagged = [r for r in rows if r['kind'] not in ('ignore', )]
    atomic_write(osp.join(out_dir, 'review.png'), _review_png(flagged, images, top))


def _write_csv(rows: List[dict], path: str) -> None:
    buf = io.StringIO()
    cols = ['image_id', 'ann_id', 'source', 'class', 'kind', 'score', 'cleanlab_image_score',
            'bbox']
    writer = csv.DictWriter(buf, cols)
    writer.writeheader()
    for r in rows:
        writer.writerow({**r, 'bbox': ' '.join(str(v) for v in r['bbox'])})
    atomic_write(path, buf.getvalue().encode())


def match_labelled(coco_full_path: str, classes: Sequence[str], preds: Predictions
                   ) -> List[Match]:
    """:func:`~mtl_plugin.analysis.consolidation.match_predictions` on a labelled COCO
    file, predictions of any group: what threshold tuning and box calibration read."""
    with open(coco_full_path) as f:
        coco = json.load(f)
    by_image = {img_id: p for (_, img_id), p in preds.items()}
    return match_predictions(coco, classes, by_image)
