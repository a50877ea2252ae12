"""Draw each head's predictions next to the ground truth, image by image and group by group.

The model is left untouched: a ``MultiHeadDetector`` gives every head's own predictions
(``model.predict_per_head``: shared features, each head's neck copy, the shared RPN's
proposals for two-stage heads), each in its own class names.
A stock mmdet detector gives one panel from ``model.predict``. The ground truth is read
from the dataset's annotations (original image coordinates, the group's own classes),
and the original image is drawn, so every panel is in the same coordinates.
"""
import copy
import json
import logging
import os
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import MODELS
from mmengine.runner import load_checkpoint
from mmengine.structures import InstanceData
from torch import nn

from ..io import atomic_write
from ..progress import collated_batches
from ..validation import check_int
from .tool_data import ToolDataError, build_tool_dataset, tool_batches

__all__ = ['BrowseError', 'build_browse_dataset', 'build_model', 'group_indices',
           'select_images', 'head_predictions', 'browse']


class BrowseError(ValueError):
    """Bad input (missing checkpoint, unknown image id, not a detector); says why."""


def build_browse_dataset(cfg: Config, split: str = 'val'):
    """The dataset of ``<split>_dataloader``, read with the dataloader's own pipeline
    (the test dataloader's for the train split): see :mod:`.tool_data`.

    Wrappers around a ``MultiSourceDataset`` (resampling, balancing) are dropped, so
    indices are the plain sources' samples.
    """
    try:
        return build_tool_dataset(cfg, split)
    except ToolDataError as err:
        raise BrowseError(str(err)) from err


def build_model(cfg: Config, checkpoint: Optional[str], dataset_meta: dict,
                device: str = 'cpu') -> nn.Module:
    """Build ``cfg.model``, load ``checkpoint`` (or keep the random init), eval mode.

    Raises:
        BrowseError: missing checkpoint file, or a model that is not a detector.
    """
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise BrowseError(f'checkpoint {checkpoint!r} does not exist (omit it to browse a '
                          'randomly initialised model)')
    model = MODELS.build(cfg.model)
    if not hasattr(model, 'extract_feat') or not callable(getattr(model, 'predict', None)):
        raise BrowseError(f'browse_predictions draws detectors, but the config builds a '
                          f'{type(model).__name__}')
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs every parameter at INFO
    try:
        if checkpoint is None:
            model.init_weights()
        else:
            load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    except Exception as err:  # a truncated / foreign file: one line, not a traceback
        raise BrowseError(f'checkpoint {checkpoint!r} cannot be loaded into the config\'s '
                          f'model: {type(err).__name__}: {str(err).splitlines()[0][:300]}'
                          ) from err
    finally:
        logger.setLevel(level)
    try:
        model.dataset_meta = copy.deepcopy(dataset_meta)
    except (KeyError, ValueError) as err:  # the heads do not fit the dataset's groups
        raise BrowseError(str(err).strip('"\'')) from err
    return model.to(device).eval()


def group_indices(dataset) -> Dict[str, List[int]]:
    """Group name -> dataset indices (one group ``'all'`` for a plain dataset)."""
    if hasattr(dataset, 'group_names') and hasattr(dataset, 'cumulative_sizes'):
        ends = list(dataset.cumulative_sizes)
        return {g: list(range(s, e)) for g, s, e in zip(dataset.group_names, [0] + ends, ends)}
    return {'all': list(range(len(dataset)))}


def select_images(dataset, num_images: Optional[int] = None,
                  img_ids: Optional[Sequence[int]] = None,
                  seed: Optional[int] = None) -> Dict[str, List[int]]:
    """Indices to draw per group: the first ``num_images`` (random ones with ``seed``),
    or the samples whose ``img_id`` is in ``img_ids`` (ids are per annotation file, so
    an id may select one image in several groups)."""
    groups = group_indices(dataset)
    if img_ids is not None:
        wanted = set(int(i) for i in img_ids)
        chosen = {g: [i for i in idx if dataset.get_data_info(i).get('img_id') in wanted]
                  for g, idx in groups.items()}
        found = {dataset.get_data_info(i)['img_id'] for idx in chosen.values() for i in idx}
        if wanted - found:
            raise BrowseError(f'--img-ids {sorted(wanted - found)} are in no group of the '
                              f'dataset (groups: {list(groups)})')
        return {g: idx for g, idx in chosen.items() if idx}
    check_int(num_images, 'num_images', minimum=1, error=BrowseError)
    rng = np.random.default_rng(seed)
    return {g: sorted(rng.choice(idx, min(num_images, len(idx)), replace=False).tolist())
            if seed is not None else idx[:num_images] for g, idx in groups.items()}


@torch.no_grad()
def head_predictions(model: nn.Module, data: dict) -> List[Dict[str, InstanceData]]:
    """Per image, head name -> its predictions (``InstanceData`` with ``bboxes`` (N, 4)
    xyxy in original image pixels, ``scores`` (N,), ``labels`` (N,) in the head's own
    classes). A model without ``heads`` gives one entry named after its class."""
    data = model.data_preprocessor(data, False)
    inputs, samples = data['inputs'], data['data_samples']
    if not _is_multi_head(model):
        results = model.predict(inputs, samples)
        return [{type(model).__name__: r.pred_instances} for r in results]
    per_head = model.predict_per_head(inputs, samples, rescale=True)
    return [{name: results[i] for name, results in per_head.items()}
            for i in range(len(samples))]


def _is_multi_head(model: nn.Module) -> bool:
    return isinstance(getattr(model, 'heads', None), nn.ModuleDict) and \
        callable(getattr(model, 'predict_per_head', None))


def _head_classes(model: nn.Module, dataset_meta: dict) -> Dict[str, tuple]:
    if _is_multi_head(model):
        return dict(model.head_classes())
    return {type(model).__name__: tuple(dataset_meta.get('classes') or ())}


def _gt(dataset, idx: int, group: str) -> dict:
    info = dataset.get_data_info(idx)
    meta = dataset.metainfo
    classes = (meta.get('group_metainfo') or {}).get(group, meta).get('classes') or ()
    inst = [i for i in info.get('instances', []) if not i.get('ignore_flag', 0)]
    labels = [int(i['bbox_label']) for i in inst]
    return dict(img_id=info.get('img_id'), img_path=info['img_path'],
                gt=dict(bboxes=[[round(float(v), 2) for v in i['bbox']] for i in inst],
                        labels=labels, label_names=[classes[k] for k in labels]))


def _preds(res, classes: Sequence[str], score_thr: float) -> dict:
    keep = res.scores >= score_thr
    labels = res.labels[keep].tolist()
    return dict(bboxes=res.bboxes[keep].round(decimals=2).tolist(),
                scores=[round(s, 4) for s in res.scores[keep].tolist()], labels=labels,
                label_names=[classes[k] if k < len(classes) else str(k) for k in labels])


def _draw(rows: List[dict], heads: Sequence[str], group: str, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import mmcv
    names = sorted({n for r in rows for part in [r['gt'], *r['predictions'].values()]
                    for n in part['label_names']})
    colour = {n: plt.cm.tab10(i % 10) for i, n in enumerate(names)}
    fig, axes = plt.subplots(len(rows), 1 + len(heads), squeeze=False,
                             figsize=(3.2 * (1 + len(heads)), 3.2 * len(rows)))
    for ax_row, row in zip(axes, rows):
        img = mmcv.imread(row['img_path'], channel_order='rgb')
        panels = [('GT', row['gt'])] + [(h, row['predictions'][h]) for h in heads]
        for ax, (title, part) in zip(ax_row, panels):
            ax.imshow(img)
            scores = part.get('scores') or [None] * len(part['bboxes'])
            for (x1, y1, x2, y2), name, score in zip(part['bboxes'], part['label_names'],
                                                     scores):
                ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False,
                                           edgecolor=colour[name], linewidth=1.5))
                text = name if score is None else f'{name} {score:.2f}'
                ax.text(x1, y1, text, fontsize=6, color='w', va='bottom',
                        bbox=dict(facecolor=colour[name], alpha=0.7, pad=1, lw=0))
            ax.set_title(f'head {title} ({len(part["bboxes"])})' if title != 'GT' else
                         f'{group} img {row["img_id"]}: GT ({len(part["bboxes"])})', fontsize=8)
            ax.axis('off')
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format='png', dpi=90))
    plt.close(fig)


def browse(model: nn.Module, dataset, selection: Mapping[str, Sequence[int]], out_dir: str,
           score_thr: float = 0.3, batch_size: int = 4,
           cfg: Optional[Mapping] = None) -> Dict[str, str]:
    """Predict the selected images, draw one PNG per group, write ``predictions.json``.

    Args:
        model (nn.Module): A detector in eval mode with ``dataset_meta`` set.
        dataset: The dataset (test pipeline), e.g. from :func:`build_browse_dataset`.
        selection (Mapping[str, Sequence[int]]): Group -> dataset indices
            (:func:`select_images`).
        out_dir (str): Output folder (created).
        score_thr (float): Predictions below it are neither drawn nor listed.
            Defaults to 0.3.
        batch_size (int): Images per forward pass. Defaults to 4.
        cfg (Mapping, optional): The config, whose test dataloader's ``collate_fn``
            batches the images (:func:`.tool_data.tool_batches`). Defaults to None
            (``pseudo_collate``).

    Returns:
        dict[str, str]: Group name (and ``'json'``) -> written path.
    """
    if not 0.0 <= score_thr <= 1.0:
        raise BrowseError(f'score_thr must be in [0, 1], but got {score_thr!r}')
    check_int(batch_size, 'batch_size', minimum=1, error=BrowseError)
    os.makedirs(out_dir, exist_ok=True)
    classes = _head_classes(model, dataset.metainfo)
    report = dict(score_thr=score_thr, heads={h: list(c) for h, c in classes.items()},
                  groups={})
    paths = {}
    for group, indices in selection.items():
        rows = []
        batches = collated_batches(dataset, batch_size, indices, f'browsing {group}') \
            if cfg is None else tool_batches(cfg, dataset, batch_size, indices,
                                             f'browsing {group}')
        for chunk, data in batches:
            preds = head_predictions(model, data)
            for idx, per_head in zip(chunk, preds):
                rows.append(dict(_gt(dataset, idx, group), predictions={
                    h: _preds(res.cpu(), classes.get(h, ()), score_thr)
                    for h, res in per_head.items()}))
        report['groups'][group] = rows
        if rows:
            paths[group] = osp.join(out_dir, f'{group}.png')
            _draw(rows, list(classes), group, paths[group])
    paths['json'] = osp.join(out_dir, 'predictions.json')
    atomic_write(paths['json'], json.dumps(report, indent=1))
    return paths
