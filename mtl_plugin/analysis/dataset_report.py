"""Statistics of the annotation files of a multi-source dataset, read without images.

Each source is a COCO-format file (detection or keypoints). :func:`source_stats` reads it
with ``json.load`` and makes one pass over the annotation list that builds numpy arrays
(in chunks, for a progress bar); everything else is vectorised numpy. :func:`build_report`
adds the label-space overlap of the sources, :func:`write_report` writes ``report.json``
and :func:`plot_report` the PNG charts.

Sources come from a config (:func:`sources_from_config`: the ``MultiSourceDataset`` of a
split, built as its dataloader builds it, annotations not loaded: each source's resolved
``ann_file`` and its metainfo ``classes``) or from ``NAME=path.json`` pairs
(:func:`parse_ann_args`). As in mmdet's ``CocoDataset``, ``metainfo.classes`` keeps only
those categories (in file order); the annotations of other categories are counted as
``ignored_annotations`` and left out of every other number.
"""
import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from ..io import atomic_write
from ..progress import progress_bar

__all__ = ['DatasetReportError', 'AnnSource', 'sources_from_config', 'parse_ann_args',
           'source_stats', 'label_overlap', 'build_report', 'write_report', 'plot_report',
           'SIZE_EDGES', 'ASPECT_EDGES']

#: Bin edges of the relative box size sqrt(w * h / (W * H)) (values above 1 go to the last).
SIZE_EDGES = np.linspace(0.0, 1.0, 21)
#: Bin edges of the aspect ratio w / h, log-spaced from 1/8 to 8 (outside: the end bins).
ASPECT_EDGES = 2.0 ** np.linspace(-3.0, 3.0, 25)
CHUNK = 50_000  # annotations per step of the array-building pass (progress bar unit)


class DatasetReportError(ValueError):
    """Bad input (missing file, not COCO, config without groups); the message says why."""


@dataclass
class AnnSource:
    """One source of the report.

    Args:
        name (str): Group name.
        ann_file (str): Path of its COCO-format annotation file.
        classes (Sequence[str], optional): Class names to keep (``metainfo.classes`` of
            the dataset config). Defaults to every category of the file.
    """
    name: str
    ann_file: str
    classes: Optional[Sequence[str]] = None


# ---------------------------------------------------------------------- inputs
def sources_from_config(cfg: Mapping, split: str = 'train') -> List[AnnSource]:
    """The sources of the ``MultiSourceDataset`` of ``<split>_dataloader.dataset``, as the
    dataloader builds them (:func:`.tool_data.build_tool_dataset`, annotations not loaded).

    Each source's ``ann_file`` is the one the built dataset resolved (``data_root``
    joined) and its classes are the built source's ``metainfo['classes']``: the classes
    training keeps (mmdet's ``CocoDataset`` without ``metainfo.classes`` keeps its 80 COCO
    classes), whatever the file's ``categories`` list.

    Args:
        cfg (Mapping): A loaded config (``mmengine.Config``).
        split (str): ``'train'``, ``'val'`` or ``'test'``. Defaults to ``'train'``.

    Returns:
        list[AnnSource]: One per group, in the config's order.
    """
    from .tool_data import ToolDataError, build_tool_dataset, require_groups, source_files
    try:
        require_groups(cfg, split, 'give the annotation files as --ann NAME=path.json instead')
        dataset = build_tool_dataset(cfg, split, pipeline_split=split, lazy_init=True)
    except ToolDataError as err:
        raise DatasetReportError(str(err)) from err
    return [AnnSource(s['name'], s['ann_file'], tuple(s['classes']) or None)
            for s in source_files(dataset)]


def parse_ann_args(items: Sequence[str]) -> List[AnnSource]:
    """``['person=a.json', 'animal=b.json']`` -> sources (names unique, paths given)."""
    sources: List[AnnSource] = []
    for item in items:
        name, sep, path = item.partition('=')
        if not sep or not name or not path:
            raise DatasetReportError(f'--ann takes NAME=path.json, but got {item!r}')
        if name in [s.name for s in sources]:
            raise DatasetReportError(f'--ann name {name!r} is given twice; names must be unique')
        sources.append(AnnSource(name, path))
    return sources


def _load_coco(path: str) -> dict:
    if not osp.isfile(path):
        raise DatasetReportError(f'annotation file {path!r} does not exist (check ann_file / '
                                 'data_root, e.g. with --cfg-options)')
    try:
        with open(path, 'rb') as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetReportError(f'{path!r} is not valid JSON: {err}') from err
    if not isinstance(data, dict) or not all(
            isinstance(data.get(k), list) for k in ('images', 'annotations', 'categories')):
        raise DatasetReportError(f'{path!r} is not a COCO file: it needs "images", '
                                 '"annotations" and "categories" lists')
    return data


# ---------------------------------------------------------------------- arrays
def _ann_arrays(anns: List[dict], kpt_len: int, path: str, advance=None):
    """One pass over the annotations: (N, 7) float64 [image_id, category_id, iscrowd,
    x, y, w, h] and, when ``kpt_len`` > 0, (N, K) visibilities (-1: no keypoints)."""
    rows, vis = [], []
    missing = [-1.0] * (3 * kpt_len)  # visibility -1: not counted
    for start in range(0, len(anns), CHUNK):
        chunk = anns[start:start + CHUNK]
        try:
            rows.append(np.array([(a['image_id'], a['category_id'], a.get('iscrowd', 0),
                                   *a['bbox']) for a in chunk], np.float64).reshape(-1, 7))
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetReportError(f'{path!r}: {_culprit(chunk, start)} ({err})') from err
        if kpt_len:
            kps = [a.get('keypoints') or missing for a in chunk]
            try:
                vis.append(np.array(kps, np.float64)[:, 2::3])
            except ValueError:  # some lengths differ from the categories' keypoints
                vis.append(np.array([k if len(k) == 3 * kpt_len else missing for k in kps],
                                    np.float64)[:, 2::3])
        if advance is not None:
            advance()
    arr = np.concatenate(rows) if rows else np.zeros((0, 7))
    return arr, (np.concatenate(vis) if vis else np.zeros((len(arr), kpt_len)))


def _culprit(chunk: List[dict], offset: int) -> str:
    for i, a in enumerate(chunk):
        ok = isinstance(a, dict) and all(k in a for k in ('image_id', 'category_id', 'bbox'))
        if not ok or not isinstance(a['bbox'], (list, tuple)) or len(a['bbox']) != 4:
            return (f'annotation #{offset + i} needs image_id, category_id and a 4-number '
                    f'bbox, but got {a!r}'[:300])
    return f'annotations #{offset}..{offset + len(chunk) - 1} hold non-numeric values'


def _lookup(sorted_ids: np.ndarray, ids: np.ndarray):
    """Positions of ``ids`` in ``sorted_ids`` and a mask of those found."""
    pos = np.searchsorted(sorted_ids, ids).clip(max=max(len(sorted_ids) - 1, 0))
    found = sorted_ids[pos] == ids if len(sorted_ids) else np.zeros(len(ids), bool)
    return pos, found


def _hist(values: np.ndarray, edges: np.ndarray) -> dict:
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), edges)
    return dict(bin_edges=edges.round(6).tolist(), counts=counts.tolist(),
                median=float(np.median(values)) if len(values) else None)


def _categories(source: AnnSource, data: dict) -> tuple:
    """``(names, keep, kpt_names)``: every category's name, the indices of those the
    source keeps, and the keypoint names (``kpt_<j>`` when the categories name none)."""
    names = [c.get('name', str(c.get('id'))) for c in data['categories']]
    keep = [i for i, n in enumerate(names) if source.classes is None or n in source.classes]
    if source.classes is not None and not keep:
        raise DatasetReportError(f'{source.ann_file!r} has none of the classes '
                                 f'{tuple(source.classes)}; its categories: {names[:20]}')
    kpt_names = max((c.get('keypoints') or [] for c in data['categories']), key=len,
                    default=[])
    if not kpt_names:  # keypoints without names in the categories
        first = next((a['keypoints'] for a in data['annotations'][:1000]
                      if a.get('keypoints')), [])
        kpt_names = [f'kpt_{j}' for j in range(len(first) // 3)]
    return names, keep, kpt_names


def _image_table(source: AnnSource, data: dict) -> np.ndarray:
    """(N, 3) float64 ``id, width, height`` of the images (NaN where a size is missing)."""
    try:
        return np.array([(im['id'], im.get('width') or np.nan, im.get('height') or np.nan)
                         for im in data['images']], np.float64).reshape(-1, 3)
    except (KeyError, TypeError, ValueError) as err:
        raise DatasetReportError(f'{source.ann_file!r}: every image needs a numeric "id" '
                                 f'(and width, height) ({type(err).__name__}: {err})') from err


def _keypoint_visibility(kpt_names: Sequence[str], vis: np.ndarray) -> Optional[dict]:
    """Per keypoint, the counts of v = 0 / 1 / 2 (None without keypoints)."""
    if not (kpt_names and len(vis) and (vis >= 0).any()):
        return None
    return dict(names=list(kpt_names), visibility={
        n: {str(v): int((vis[:, j] == v).sum()) for v in (0, 1, 2)}
        for j, n in enumerate(kpt_names)})


# ---------------------------------------------------------------------- statistics
def source_stats(source: AnnSource, advance=None) -> dict:
    """Statistics of one source (see the module docstring for what is kept).

    Args:
        source (AnnSource): The source.
        advance (callable, optional): Called once after loading and once per chunk of
            :data:`CHUNK` annotations (a progress bar's step).

    Returns:
        dict: ``num_images``, ``num_annotations``, ``classes``, ``instances_per_class``,
        ``imbalance_ratio`` (max / min over classes with instances), ``classes_without_
        instances``, ``boxes_per_image`` (``mean``, ``max``, ``hist``), ``box_size`` and
        ``aspect_ratio`` (histograms), ``keypoints`` (per-keypoint v=0/1/2 counts, or None),
        ``crowd``, ``empty_images``, ``degenerate_boxes``, ``ignored_annotations``,
        ``unlisted_category_annotations`` (id -> count of ids ``categories`` do not list)
        and ``annotations_without_image``.
    """
    data = _load_coco(source.ann_file)
    _ = advance() if advance is not None else None
    cats = data['categories']
    names, keep, kpt_names = _categories(source, data)
    imgs = _image_table(source, data)
    arr, vis = _ann_arrays(data['annotations'], len(kpt_names), source.ann_file, advance)
    unlisted = _unlisted(cats, arr)
    order = np.argsort(imgs[:, 0], kind='stable')
    img_pos, has_img = _lookup(imgs[order, 0], arr[:, 0])
    img_idx = order[img_pos] if len(order) else img_pos
    cat_ids = np.array([cats[i]['id'] for i in keep], np.float64)
    cat_order = np.argsort(cat_ids, kind='stable')
    cat_pos, kept = _lookup(cat_ids[cat_order], arr[:, 1])
    labels = cat_order[cat_pos] if len(cat_order) else cat_pos
    valid = kept & has_img
    arr, vis, labels, img_idx = arr[valid], vis[valid], labels[valid], img_idx[valid]

    per_class = np.bincount(labels, minlength=len(keep))
    per_image = np.bincount(img_idx, minlength=len(imgs))
    w, h = arr[:, 5], arr[:, 6]
    good = (w > 0) & (h > 0)
    img_area = imgs[img_idx, 1] * imgs[img_idx, 2]
    sized = good & (img_area > 0)
    nonzero = per_class[per_class > 0]
    kpts = _keypoint_visibility(kpt_names, vis)
    classes = [names[i] for i in keep]
    return dict(
        name=source.name, ann_file=source.ann_file, num_images=len(imgs),
        num_annotations=int(valid.sum()), classes=classes,
        instances_per_class={c: int(n) for c, n in zip(classes, per_class)},
        imbalance_ratio=float(nonzero.max() / nonzero.min()) if len(nonzero) else None,
        classes_without_instances=[c for c, n in zip(classes, per_class) if n == 0],
        boxes_per_image=dict(mean=float(per_image.mean()) if len(imgs) else 0.0,
                             max=int(per_image.max(initial=0)),
                             hist=np.bincount(per_image).tolist()),
        box_size=dict(_hist(np.sqrt(w[sized] * h[sized] / img_area[sized]), SIZE_EDGES),
                      definition='sqrt(w * h / (image width * image height))'),
        aspect_ratio=dict(_hist(w[good] / h[good], ASPECT_EDGES), definition='w / h'),
        keypoints=kpts, crowd=int((arr[:, 2] != 0).sum()),
        empty_images=int((per_image == 0).sum()), degenerate_boxes=int((~good).sum()),
        ignored_annotations=int((~kept).sum()),
        unlisted_category_annotations=unlisted,
        annotations_without_image=int((kept & ~has_img).sum()))


def _unlisted(cats: Sequence[dict], arr: np.ndarray) -> Dict[str, int]:
    """Category id -> annotations of ids the file's ``categories`` do not list (mmdet
    drops them silently; ``MultiSourceDataset`` refuses them by default)."""
    ids, counts = np.unique(arr[:, 1], return_counts=True)
    listed = {float(c['id']) for c in cats}
    return {str(int(i)) if float(i).is_integer() else str(i): int(n)
            for i, n in zip(ids, counts) if float(i) not in listed}


def label_overlap(classes: Mapping[str, Sequence[str]]) -> dict:
    """Shared class names and Jaccard index of every pair of sources.

    Args:
        classes (Mapping[str, Sequence[str]]): Source name -> its class names.

    Returns:
        dict: ``sources`` (S names), ``shared`` (S x S counts of shared names), ``jaccard``
        (S x S, |A & B| / |A | B|, 0 for two empty sets) and ``shared_classes``
        (``'a|b'`` -> sorted shared names, for pairs a != b).
    """
    names = list(classes)
    sets = [set(classes[n]) for n in names]
    shared = [[len(a & b) for b in sets] for a in sets]
    jaccard = [[len(a & b) / len(a | b) if a | b else 0.0 for b in sets] for a in sets]
    pairs = {f'{names[i]}|{names[j]}': sorted(sets[i] & sets[j])
             for i in range(len(names)) for j in range(i + 1, len(names))}
    return dict(sources=names, shared=shared, jaccard=jaccard, shared_classes=pairs)


def build_report(sources: Sequence[AnnSource], progress: bool = False) -> dict:
    """Statistics of every source plus their label-space overlap.

    Args:
        sources (Sequence[AnnSource]): The sources (unique names).
        progress (bool): Show a rich progress bar on stderr. Defaults to False.

    Returns:
        dict: ``sources`` (name -> :func:`source_stats`) and ``overlap``
        (:func:`label_overlap`).
    """
    if not sources:
        raise DatasetReportError('no sources: give a config with a MultiSourceDataset or '
                                 '--ann NAME=path.json')
    stats = {}
    with progress_bar(disable=not progress) as bar:
        for src in sources:
            size = osp.getsize(src.ann_file) if osp.isfile(src.ann_file) else 0
            # a rough chunk count from the file size (about 280 bytes per annotation)
            task = bar.add_task(f'{src.name}: {osp.basename(src.ann_file)}',
                                total=1 + max(1, -(-size // (280 * CHUNK))))
            stats[src.name] = source_stats(src, lambda t=task: bar.advance(t))
            bar.update(task, completed=bar.tasks[task].total)
    return dict(sources=stats, overlap=label_overlap({n: s['classes'] for n, s in stats.items()}))


# ---------------------------------------------------------------------- outputs
def write_report(report: dict, out_dir: str) -> str:
    """Write ``<out_dir>/report.json`` atomically and return its path."""
    path = osp.join(out_dir, 'report.json')
    atomic_write(path, json.dumps(report, indent=1))
    return path


def plot_report(report: dict, out_dir: str, max_classes: int = 40) -> Dict[str, str]:
    """Write the charts of a report as PNGs (matplotlib, Agg).

    Args:
        report (dict): Output of :func:`build_report`.
        out_dir (str): Output folder (created).
        max_classes (int): Most frequent classes shown per source. Defaults to 40.

    Returns:
        dict[str, str]: Chart name -> PNG path (``class_counts``, ``box_size``,
        ``aspect_ratio``, ``boxes_per_image``, ``overlap``, and ``keypoint_visibility``
        when a source has keypoints).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    os.makedirs(out_dir, exist_ok=True)
    stats = report['sources']
    paths = {}

    def save(fig, name):
        paths[name] = osp.join(out_dir, f'{name}.png')
        fig.tight_layout()
        atomic_write(paths[name], lambda tmp: fig.savefig(tmp, format='png', dpi=90))
        plt.close(fig)

    save(_plot_class_counts(plt, stats, max_classes), 'class_counts')
    for key, fig in _plot_box_histograms(plt, stats):
        save(fig, key)
    save(_plot_boxes_per_image(plt, stats), 'boxes_per_image')
    if any(s['keypoints'] for s in stats.values()):
        save(_plot_keypoint_visibility(plt, stats), 'keypoint_visibility')
    save(_plot_overlap(plt, report['overlap']), 'overlap')
    return paths


def _plot_class_counts(plt, stats: dict, max_classes: int):
    """Instances per class (the ``max_classes`` most frequent), one panel per source."""
    fig, axes = plt.subplots(1, len(stats), figsize=(4.5 * len(stats), 0.25 * min(
        max_classes, max(len(s['classes']) for s in stats.values())) + 1.5), squeeze=False)
    for ax, (name, s) in zip(axes[0], stats.items()):
        top = sorted(s['instances_per_class'].items(), key=lambda kv: -kv[1])[:max_classes]
        ax.barh([c for c, _ in top][::-1], [n for _, n in top][::-1])
        shown = f'top {len(top)} of {len(s["classes"])}' if len(top) < len(s['classes']) else ''
        ax.set_title(f'{name}: instances per class {shown}'.strip(), fontsize=9)
    return fig


def _plot_box_histograms(plt, stats: dict) -> list:
    """``[('box_size', fig), ('aspect_ratio', fig)]``: box-shape histograms per source."""
    figs = []
    for key, xlabel, log in (('box_size', 'sqrt(box area / image area)', False),
                             ('aspect_ratio', 'aspect ratio w / h', True)):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for name, s in stats.items():
            counts = np.asarray(s[key]['counts'], float)
            ax.stairs(counts / max(counts.sum(), 1), s[key]['bin_edges'], label=name)
        ax.set(xlabel=xlabel, ylabel='fraction of boxes')
        if log:
            ax.set_xscale('log', base=2)
            ax.set_xticks([2.0 ** k for k in range(-3, 4)],
                          ['1/8', '1/4', '1/2', '1', '2', '4', '8'])
            ax.minorticks_off()
        ax.legend()
        figs.append((key, fig))
    return figs


def _plot_boxes_per_image(plt, stats: dict):
    """Histogram of the number of boxes per image, per source."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, s in stats.items():
        hist = np.asarray(s['boxes_per_image']['hist'], float)
        ax.stairs(hist / max(hist.sum(), 1), np.arange(len(hist) + 1) - 0.5,
                  label=f'{name} (mean {s["boxes_per_image"]["mean"]:.2f})')
    ax.set(xlabel='boxes per image', ylabel='fraction of images')
    ax.legend()
    return fig


def _plot_keypoint_visibility(plt, stats: dict):
    """Stacked visibility counts per keypoint, one panel per source with keypoints."""
    with_kpts = {n: s['keypoints'] for n, s in stats.items() if s['keypoints']}
    fig, axes = plt.subplots(len(with_kpts), 1, squeeze=False,
                             figsize=(7, 2.8 * len(with_kpts)))
    for ax, (name, k) in zip(axes[:, 0], with_kpts.items()):
        bottom = np.zeros(len(k['names']))
        for v, label in (('2', 'visible (2)'), ('1', 'occluded (1)'), ('0', 'unlabelled (0)')):
            counts = np.array([k['visibility'][n][v] for n in k['names']], float)
            ax.bar(k['names'], counts, bottom=bottom, label=label)
            bottom += counts
        ax.set_title(f'{name}: keypoint visibility', fontsize=9)
        ax.tick_params(axis='x', labelrotation=60, labelsize=7)
        ax.legend(fontsize=7)
    return fig


def _plot_overlap(plt, ov: dict):
    """The sources' label-space Jaccard matrix with the shared-class counts."""
    n = len(ov['sources'])
    fig, ax = plt.subplots(figsize=(1.2 * n + 2.5, 1.0 * n + 1.8))
    im = ax.imshow(np.asarray(ov['jaccard'], float), vmin=0, vmax=1, cmap='viridis')
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{ov['jaccard'][i][j]:.2f}\n({ov['shared'][i][j]} shared)",
                    ha='center', va='center', fontsize=7,
                    color='k' if ov['jaccard'][i][j] > 0.6 else 'w')
    ax.set_xticks(range(n), ov['sources'])
    ax.set_yticks(range(n), ov['sources'])
    ax.set_title('label-space overlap (Jaccard)', fontsize=9)
    fig.colorbar(im, ax=ax)
    return fig
