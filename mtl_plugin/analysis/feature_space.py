"""Feature-space analysis of a multi-source model: how datasets and classes cluster.

:func:`extract_features` runs a model's ``extract_feat`` on a ``MultiSourceDataset`` and
keeps, per image, the globally pooled feature map of one level, and per GT instance its
RoI-aligned, pooled feature on that level. :func:`analyse_features` turns them into
numbers: per-class spread, centroid distances, silhouette (sklearn), Fisher ratio,
Davies-Bouldin (sklearn), and the *domain gap*: how well a cross-validated
``LogisticRegression`` tells the source dataset from image features alone (balanced
accuracy; chance is ``1 / #datasets``). :func:`tsne_embedding` and :func:`plot_tsne` draw
the instance features coloured by dataset and by class. ``tools/analysis/feature_space.py``
is the command line.
"""
import io
import json
import math
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.metrics import davies_bouldin_score, pairwise_distances, silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torchvision.ops import roi_align

from ..io import atomic_write as _atomic_write
from ..progress import collated_batches

__all__ = ['FeatureSpaceError', 'pick_indices', 'extract_features', 'cluster_metrics',
           'fisher_ratio', 'domain_gap', 'analyse_features', 'tsne_embedding', 'plot_tsne',
           'save_outputs']


class FeatureSpaceError(ValueError):
    """Bad input to the feature-space analysis; the message names the culprit and fix."""


def pick_indices(group_ids: np.ndarray, max_images: Optional[int]) -> List[int]:
    """Up to ``max_images`` sample indices, taken round-robin over the groups.

    Args:
        group_ids (np.ndarray): Group id of every sample, shape (N,).
        max_images (int, optional): Cap; None keeps every sample.

    Returns:
        list[int]: Sorted indices, as balanced over groups as the groups' sizes allow.
    """
    group_ids = np.asarray(group_ids)
    if max_images is None or max_images >= len(group_ids):
        return list(range(len(group_ids)))
    queues = [list(np.flatnonzero(group_ids == g)) for g in np.unique(group_ids)]
    picked: List[int] = []
    while len(picked) < max_images:
        for queue in queues:
            if queue and len(picked) < max_images:
                picked.append(int(queue.pop(0)))
    return sorted(picked)


def _class_names(dataset, group: str, labels: Sequence[int]) -> List[str]:
    """Names of a group's local labels in the unified label space (by name)."""
    space = getattr(dataset, 'unified_space', None)
    if space is not None:
        table = space.lookup(group)
        return [space.unified_classes[int(table[lab])] for lab in labels]
    classes = dataset.get_group_metainfo(group).get('classes') or ()
    return [classes[lab] if lab < len(classes) else f'{group}:{lab}' for lab in labels]


def _gt_boxes(dataset, idx: int, scale_factor: Sequence[float]) -> tuple:
    """Non-ignored GT boxes (K, 4) of sample ``idx`` in input pixels, their class names."""
    info = dataset.get_data_info(idx)
    insts = [i for i in info.get('instances', []) if not i.get('ignore_flag', 0)]
    boxes = np.asarray([i['bbox'] for i in insts], dtype=np.float32).reshape(-1, 4)
    # annotations are in original pixels; the network saw the resized image
    boxes = boxes * np.tile(np.asarray(scale_factor, dtype=np.float32)[:2], 2)
    names = _class_names(dataset, info['group_name'], [int(i['bbox_label']) for i in insts])
    return torch.from_numpy(boxes), names


def _pool_batch(feat: torch.Tensor, scale: float, dataset, chunk: Sequence[int],
                samples: Sequence, roi_size: int, out: Dict[str, list]) -> None:
    """Append one batch's pooled image and RoI features (``feat``: (B, C, h, w)) to ``out``."""
    boxes = []
    for b, (idx, sample) in enumerate(zip(chunk, samples)):
        if sample.metainfo.get('flip', False):
            raise FeatureSpaceError('the pipeline flipped an image: use a test pipeline '
                                    'without RandomFlip so that GT boxes line up')
        h, w = sample.metainfo['img_shape'][:2]
        valid = feat[b, :, :max(1, math.ceil(h * scale)), :max(1, math.ceil(w * scale))]
        out['image_feats'].append(valid.mean((1, 2)).cpu().numpy())  # pad excluded, (C,)
        out['image_groups'].append(sample.metainfo['group_name'])
        img_boxes, names = _gt_boxes(dataset, idx,
                                     sample.metainfo.get('scale_factor', (1.0, 1.0)))
        boxes.append(img_boxes.to(feat.device, feat.dtype))
        out['inst_groups'] += [sample.metainfo['group_name']] * len(names)
        out['inst_classes'] += names
        out['inst_image'] += [len(out['image_groups']) - 1] * len(names)
    rois = roi_align(feat, boxes, output_size=roi_size, spatial_scale=scale,
                     sampling_ratio=2, aligned=True)  # (K, C, roi, roi)
    out['inst_feats'] += list(rois.mean((2, 3)).cpu().numpy())


def _batches(dataset, batch_size: int, indices: Sequence[int], cfg: Optional[Mapping]):
    if cfg is None:
        return collated_batches(dataset, batch_size, indices, 'extracting features')
    from .tool_data import tool_batches
    return tool_batches(cfg, dataset, batch_size, indices, 'extracting features')


@torch.no_grad()
def extract_features(model: torch.nn.Module,
                     dataset,
                     level: int = 0,
                     indices: Optional[Sequence[int]] = None,
                     batch_size: int = 8,
                     roi_size: int = 7,
                     cfg: Optional[Mapping] = None) -> Dict[str, np.ndarray]:
    """Pooled image features and RoI-aligned GT-instance features of one feature level.

    Args:
        model (nn.Module): A model with ``data_preprocessor`` and
            ``extract_feat(inputs (B, 3, H, W)) -> tuple of (B, C, h, w)``.
        dataset (MultiSourceDataset): Samples with a deterministic test pipeline that
            keeps ``scale_factor`` in the packed metainfo.
        level (int): Index of the feature level (negative counts from the end).
            Defaults to 0.
        indices (Sequence[int], optional): Samples to read. Defaults to all.
        batch_size (int): Images per forward pass. Defaults to 8.
        roi_size (int): RoIAlign output size before average pooling. Defaults to 7.
        cfg (Mapping, optional): The config, whose dataloader batches the images
            (:func:`.tool_data.tool_batches`). Defaults to None (``pseudo_collate``).

    Returns:
        dict[str, np.ndarray]: ``image_feats`` (N, C) float32, ``image_groups`` (N,) str,
        ``image_index`` (N,) dataset indices, ``inst_feats`` (M, C), ``inst_groups`` (M,),
        ``inst_classes`` (M,) unified class names, ``inst_image`` (M,) row in the
        image arrays, ``level`` and ``stride`` (input pixels per feature cell).
    """
    if not hasattr(model, 'extract_feat'):
        raise FeatureSpaceError(f'{type(model).__name__} has no extract_feat(): the analysis '
                                'needs a detector-like model with a backbone (and neck)')
    indices = list(range(len(dataset))) if indices is None else list(indices)
    if not indices:
        raise FeatureSpaceError('no images to analyse: the split is empty or --max-images is 0')
    model.eval()
    out: Dict[str, list] = {k: [] for k in ('image_feats', 'image_groups', 'inst_feats',
                                            'inst_groups', 'inst_classes', 'inst_image')}
    stride = None
    for chunk, data in _batches(dataset, batch_size, indices, cfg):
        data = model.data_preprocessor(data, False)
        feats = model.extract_feat(data['inputs'])
        feats = feats if isinstance(feats, (tuple, list)) else (feats, )
        if not -len(feats) <= level < len(feats):
            raise FeatureSpaceError(f'level must index the {len(feats)} feature levels of '
                                    f'the model (0..{len(feats) - 1}), but got {level!r}')
        scale = feats[level].shape[-1] / data['inputs'].shape[-1]
        stride = 1.0 / scale
        _pool_batch(feats[level], scale, dataset, chunk, data['data_samples'], roi_size, out)
    channels = out['image_feats'][0].shape[0]
    return dict(
        image_feats=np.stack(out['image_feats']).astype(np.float32),
        image_groups=np.asarray(out['image_groups'], dtype=str),
        image_index=np.asarray(indices, dtype=np.int64),
        inst_feats=np.asarray(out['inst_feats'], dtype=np.float32).reshape(-1, channels),
        inst_groups=np.asarray(out['inst_groups'], dtype=str),
        inst_classes=np.asarray(out['inst_classes'], dtype=str),
        inst_image=np.asarray(out['inst_image'], dtype=np.int64),
        level=np.asarray(level), stride=np.asarray(stride))


def fisher_ratio(x: np.ndarray, labels: np.ndarray) -> Optional[float]:
    """trace(S_between) / trace(S_within) of features ``x`` (N, D) grouped by ``labels``.

    The trace of a scatter matrix is its sum of squared deviations, so neither D x D
    matrix is formed: trace(S_W) = sum_c sum_{i in c} |x_i - mu_c|^2 and
    trace(S_B) = sum_c n_c |mu_c - mu|^2.

    Returns:
        float | None: The ratio; None when every class is a single point (S_W = 0).
    """
    x, labels = np.asarray(x, dtype=np.float64), np.asarray(labels)
    mu = x.mean(0)
    within = between = 0.0
    for name in np.unique(labels):
        xc = x[labels == name]
        mu_c = xc.mean(0)
        within += float(np.square(xc - mu_c).sum())
        between += len(xc) * float(np.square(mu_c - mu).sum())
    return between / within if within > 0 else None


def cluster_metrics(x: np.ndarray, labels: np.ndarray) -> Optional[dict]:
    """How the points of each label cluster.

    Args:
        x (np.ndarray): Features, shape (N, D).
        labels (np.ndarray): Label of each row, shape (N,).

    Returns:
        dict | None: ``labels`` (sorted), ``counts``, ``spread`` (label -> mean Euclidean
        distance to its centroid), ``centroid_distances`` (L x L, sklearn
        ``pairwise_distances``), ``silhouette`` and ``davies_bouldin`` (sklearn; None
        unless 2 <= L <= N - 1) and ``fisher_ratio``. None for zero rows.
    """
    x, labels = np.asarray(x, dtype=np.float64), np.asarray(labels)
    if len(x) != len(labels):
        raise FeatureSpaceError(f'{len(x)} feature rows but {len(labels)} labels')
    if len(x) == 0:
        return None
    names, counts = np.unique(labels, return_counts=True)
    centroids = np.stack([x[labels == n].mean(0) for n in names])
    spread = {str(n): float(np.linalg.norm(x[labels == n] - c, axis=1).mean())
              for n, c in zip(names, centroids)}
    scorable = 2 <= len(names) <= len(x) - 1
    return dict(
        labels=[str(n) for n in names], counts=[int(c) for c in counts], spread=spread,
        centroid_distances=pairwise_distances(centroids).tolist(),
        silhouette=float(silhouette_score(x, labels)) if scorable else None,
        davies_bouldin=float(davies_bouldin_score(x, labels)) if scorable else None,
        fisher_ratio=fisher_ratio(x, labels))


def domain_gap(x: np.ndarray, groups: np.ndarray, folds: int = 5, seed: int = 0) -> dict:
    """Cross-validated balanced accuracy of ``LogisticRegression`` predicting the group.

    1.0 means the datasets are perfectly separable from the features; ``chance``
    (``1 / #groups``) means they are indistinguishable.

    Args:
        x (np.ndarray): Image features, shape (N, D).
        groups (np.ndarray): Source dataset of each row, shape (N,).
        folds (int): Stratified folds, capped by the smallest group. Defaults to 5.
        seed (int): Seed of the fold split. Defaults to 0.

    Returns:
        dict: ``balanced_accuracy`` (mean over folds; None if it cannot be measured, with
        ``reason``), ``std``, ``chance``, ``folds``, ``num_samples``.
    """
    names, counts = np.unique(groups, return_counts=True)
    result = dict(balanced_accuracy=None, std=None, chance=1.0 / max(len(names), 1),
                  folds=0, num_samples=int(len(x)))
    if len(names) < 2:
        return dict(result, reason=f'needs at least 2 datasets, got {names.tolist()}')
    k = int(min(folds, counts.min()))
    if k < 2:
        return dict(result, reason='every dataset needs at least 2 images for cross-'
                    f'validation, got counts {dict(zip(names.tolist(), counts.tolist()))}')
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    scores = cross_val_score(clf, x, groups, cv=cv, scoring='balanced_accuracy')
    return dict(result, balanced_accuracy=float(scores.mean()), std=float(scores.std()),
                folds=k)


def analyse_features(feats: Dict[str, np.ndarray], seed: int = 0) -> dict:
    """All metrics of :func:`extract_features`' output (JSON-ready).

    Returns:
        dict: ``num_images``, ``num_instances``, ``level``, ``stride``, ``image``
        (``by_dataset`` cluster metrics, ``domain_gap``) and ``instance`` (``by_class``,
        ``by_dataset`` cluster metrics; None without instances).
    """
    img, inst = feats['image_feats'], feats['inst_feats']
    return dict(
        num_images=int(len(img)), num_instances=int(len(inst)),
        level=int(feats['level']), stride=float(feats['stride']),
        image=dict(by_dataset=cluster_metrics(img, feats['image_groups']),
                   domain_gap=domain_gap(img, feats['image_groups'], seed=seed)),
        instance=dict(by_class=cluster_metrics(inst, feats['inst_classes']),
                      by_dataset=cluster_metrics(inst, feats['inst_groups'])))


def tsne_embedding(x: np.ndarray, seed: int = 0) -> Optional[np.ndarray]:
    """2-D t-SNE of ``x`` (N, D) -> (N, 2); perplexity min(30, (N - 1) / 3). None if N < 4."""
    if len(x) < 4:
        return None
    perplexity = min(30.0, (len(x) - 1) / 3.0)
    tsne = TSNE(n_components=2, perplexity=perplexity, init='pca', random_state=seed)
    return tsne.fit_transform(np.asarray(x, dtype=np.float64)).astype(np.float32)


def plot_tsne(embedding: Optional[np.ndarray], by_dataset: np.ndarray, by_class: np.ndarray,
              title: str = 'instance features (t-SNE)') -> bytes:
    """Two scatter panels of a 2-D embedding (N, 2): coloured by dataset, by class (PNG)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, labels, name in zip(axes, (by_dataset, by_class), ('dataset', 'class')):
        ax.set_title(f'{title}, by {name}', fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if embedding is None:
            ax.text(0.5, 0.5, 'fewer than 4 instances', ha='center', transform=ax.transAxes)
            continue
        names = np.unique(labels)
        cmap = plt.get_cmap('tab10' if len(names) <= 10 else 'tab20')
        for i, n in enumerate(names):
            pts = embedding[labels == n]
            ax.scatter(pts[:, 0], pts[:, 1], s=10, color=cmap(i % cmap.N), label=str(n))
        ax.legend(fontsize=7, markerscale=1.5, loc='best')
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=110)
    plt.close(fig)
    return buf.getvalue()


def save_outputs(out_dir: str, feats: Dict[str, np.ndarray], report: dict,
                 embedding: Optional[np.ndarray]) -> Dict[str, str]:
    """Write ``features.npz``, ``feature_space.json`` and ``tsne.png`` atomically.

    Returns:
        dict[str, str]: Kind (``npz``, ``json``, ``png``) -> path written.
    """
    paths = dict(npz=osp.join(out_dir, 'features.npz'),
                 json=osp.join(out_dir, 'feature_space.json'),
                 png=osp.join(out_dir, 'tsne.png'))
    buf = io.BytesIO()
    tsne = embedding if embedding is not None else np.zeros((0, 2), np.float32)
    np.savez_compressed(buf, tsne=tsne, **feats)
    _atomic_write(paths['npz'], buf.getvalue())
    _atomic_write(paths['json'], json.dumps(report, indent=1, allow_nan=False).encode())
    _atomic_write(paths['png'], plot_tsne(embedding, feats['inst_groups'],
                                          feats['inst_classes']))
    return paths
