"""Data maps (Dataset Cartography) from the files of :class:`DataMapHook`.

Per label (a GT instance, or a classification crop), over the recorded epochs E:

- ``confidence``: mean of the model's gold-label confidence;
- ``variability``: its standard deviation (population, ``ddof=0``, as in the paper);
- ``correctness``: fraction of epochs in which the top prediction was the gold label.

Regions (Swayamdipta et al. 2020 name three; the cut-offs are :class:`RegionRule`):
``ambiguous`` whenever variability >= ``ambiguous_variability`` (0.2: the model keeps
changing its mind); otherwise ``hard-to-learn`` when confidence < ``hard_confidence``
(0.33: consistently low, the likely mislabelled ones), ``easy`` when confidence >=
``easy_confidence`` (0.66), and ``ambiguous`` in between.
"""
import csv
import glob
import importlib
import io
import json
import os.path as osp
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from ..io import atomic_write as _atomic_write

REGIONS = ('easy', 'ambiguous', 'hard-to-learn')
CSV_COLUMNS = ('image_id', 'ann_id', 'group', 'class', 'confidence', 'variability',
               'correctness', 'region', 'epochs_seen', 'instance')
Table = Dict[str, np.ndarray]


class DataMapError(Exception):
    """A well-defined problem with the inputs (reported as one line by the tool)."""


@dataclass(frozen=True)
class RegionRule:
    """Cut-offs of the three data-map regions (see the module docstring).

    Args:
        hard_confidence (float): Below it (and not ambiguous): hard-to-learn.
            Defaults to 0.33.
        easy_confidence (float): At or above it (and not ambiguous): easy. Defaults to 0.66.
        ambiguous_variability (float): At or above it: ambiguous. Defaults to 0.2.
    """

    hard_confidence: float = 0.33
    easy_confidence: float = 0.66
    ambiguous_variability: float = 0.2

    def __post_init__(self) -> None:
        if not 0 <= self.hard_confidence <= self.easy_confidence <= 1:
            raise DataMapError('region cut-offs need 0 <= hard_confidence <= easy_confidence '
                               f'<= 1, but got {self.hard_confidence!r} and '
                               f'{self.easy_confidence!r}')
        if not 0 < self.ambiguous_variability <= 0.5:
            raise DataMapError('ambiguous_variability must be in (0, 0.5] (a std of values in '
                               f'[0, 1]), but got {self.ambiguous_variability!r}')

    def assign(self, confidence: np.ndarray, variability: np.ndarray) -> np.ndarray:
        """Region name of each label, shape (L,) like the inputs."""
        region = np.full(confidence.shape, 'ambiguous', dtype=object)
        steady = variability < self.ambiguous_variability
        region[steady & (confidence < self.hard_confidence)] = 'hard-to-learn'
        region[steady & (confidence >= self.easy_confidence)] = 'easy'
        return region


# ---------------------------------------------------------------------- reading
def find_data_dir(path: str) -> str:
    """The folder with ``epoch_*.npz``: ``path`` itself or ``path/data_map``."""
    if not osp.isdir(path):
        raise DataMapError(f'work dir not found: {path!r}')
    for cand in (osp.join(path, 'data_map'), path):
        if glob.glob(osp.join(cand, 'epoch_*.npz')):
            return cand
    raise DataMapError(f'no data map files (data_map/epoch_*.npz) in {path!r}: train with '
                       "custom_hooks=[dict(type='DataMapHook')] for at least 2 epochs")


def load_epochs(data_dir: str) -> Tuple[dict, List[Tuple[int, Table]]]:
    """Read ``meta.json`` and every ``epoch_*.npz`` (sorted by epoch)."""
    meta_path = osp.join(data_dir, 'meta.json')
    if not osp.isfile(meta_path):
        raise DataMapError(f'{meta_path!r} is missing: the folder was not written by '
                           'DataMapHook')
    with open(meta_path) as f:
        meta = json.load(f)
    epochs = []
    for path in sorted(glob.glob(osp.join(data_dir, 'epoch_*.npz'))):
        stem = osp.basename(path)[6:-4]
        if stem.isdigit():
            with np.load(path, allow_pickle=False) as data:
                epochs.append((int(stem), {k: data[k] for k in data.files}))
    if len(epochs) < 2:
        found = [f'epoch_{e:03d}.npz' for e, _ in epochs]
        raise DataMapError(f'a data map needs at least 2 recorded epochs, but {data_dir!r} '
                           f'has {len(epochs)} ({", ".join(found)}): train longer, or lower '
                           'DataMapHook.interval')
    return meta, epochs


# ---------------------------------------------------------------------- statistics
def training_dynamics(epochs: Sequence[Tuple[int, Table]]) -> Table:
    """Per-label confidence, variability, correctness from per-epoch rows.

    A label is ``(group, ann_id)`` when the sample carried an ``ann_id``, otherwise
    ``(group, image_id, inst)``. A label seen twice in one epoch (padding of a
    distributed sampler) counts once, with its mean.

    Args:
        epochs (Sequence[tuple[int, dict]]): ``(epoch, rows)`` as :func:`load_epochs`.

    Returns:
        dict[str, np.ndarray]: One entry per label (L,): ``group``, ``image_id``,
        ``ann_id``, ``inst``, ``label``, ``num_instances``, ``mismatch`` (any epoch),
        ``confidence``, ``variability``, ``correctness``, ``epochs_seen``.
    """
    rows = {k: np.concatenate([r[k] for _, r in epochs]) for k in epochs[0][1]}
    epoch_idx = np.concatenate([np.full(len(r['confidence']), i) for i, (_, r) in
                                enumerate(epochs)])
    by_ann = rows['ann_id'] >= 0
    image = np.where(by_ann, '', rows['image_id'].astype(str))
    inst = np.where(by_ann, 0, rows['inst'])
    keys = rows['group'].astype(str)
    for part in (image, rows['ann_id'].astype(str), inst.astype(str)):
        keys = np.char.add(np.char.add(keys, '\x1f'), part)
    uniq, first, label_idx = np.unique(keys, return_index=True, return_inverse=True)
    shape = (len(uniq), len(epochs))
    count = np.zeros(shape)
    np.add.at(count, (label_idx, epoch_idx), 1)
    seen = count > 0
    per_epoch = {}
    for name in ('confidence', 'correct'):
        total = np.zeros(shape)
        np.add.at(total, (label_idx, epoch_idx), rows[name].astype(np.float64))
        per_epoch[name] = np.where(seen, total / np.maximum(count, 1), np.nan)
    mismatch = np.zeros(len(uniq), dtype=bool)
    np.logical_or.at(mismatch, label_idx, rows['mismatch'])
    out = {k: rows[k][first] for k in ('group', 'image_id', 'ann_id', 'inst', 'label',
                                       'num_instances')}
    out.update(mismatch=mismatch, epochs_seen=seen.sum(1),
               confidence=np.nanmean(per_epoch['confidence'], 1),
               variability=np.nanstd(per_epoch['confidence'], 1),
               correctness=np.nanmean(per_epoch['correct'], 1))
    order = np.lexsort((out['inst'], out['image_id'], out['group'], out['confidence']))
    return {k: v[order] for k, v in out.items()}


# ---------------------------------------------------------------------- annotation ids
def coco_ann_ids(dataset) -> Dict[str, List[int]]:
    """Image id -> ids of the annotations that reach ``gt_instances``, in that order.

    Runs the dataset's own ``load_data_list`` (mmdet ``CocoDataset`` and subclasses),
    asking its ``parse_data_info`` about each annotation alone, so that exactly the
    annotations it keeps (not ignored, not crowd) are listed, in file order.

    Args:
        dataset: A lazily initialised COCO-style dataset with ``parse_data_info``.

    Returns:
        dict[str, list[int]]: ``str(img_id)`` -> annotation ids.
    """
    parse = dataset.parse_data_info
    out: Dict[str, List[int]] = {}

    def kept(info) -> int:
        if not isinstance(info, dict):
            raise DataMapError(f'{type(dataset).__name__}.parse_data_info returns '
                               f'{type(info).__name__}, not one dict per image: ann_ids '
                               'cannot be resolved for it')
        return sum(not inst.get('ignore_flag', 0) for inst in info.get('instances', []))

    def parse_and_list(raw: dict):
        info = parse(raw)
        img = raw['raw_img_info']
        ids = [ann['id'] for ann in raw['raw_ann_info']
               if kept(parse(dict(raw_ann_info=[ann], raw_img_info=img)))]
        if len(ids) != kept(info):
            raise DataMapError(f'image {img["img_id"]}: {type(dataset).__name__} keeps '
                               f'{kept(info)} instances, but {len(ids)} annotations one by '
                               'one; its parse_data_info is not per-annotation')
        out[str(img['img_id'])] = ids
        return info

    dataset.parse_data_info = parse_and_list
    try:
        dataset.load_data_list()
    finally:
        del dataset.parse_data_info
    return out


def sources_from_meta(meta: dict) -> Dict[str, Callable[[], object]]:
    """Group -> builder of its dataset (lazily initialised), from the annotation files
    named in ``meta.json``; built only for groups whose ann ids must be resolved."""
    def builder(group: str, info: dict, src: dict) -> Callable[[], object]:
        def build():
            if not osp.isfile(src['ann_file']):
                raise DataMapError(f'annotation file of group "{group}" not found: '
                                   f'{src["ann_file"]!r} (moved? give --config)')
            module, _, name = src['type'].rpartition('.')
            cls = getattr(importlib.import_module(module), name)
            return cls(ann_file=src['ann_file'], data_prefix=src.get('data_prefix') or {},
                       metainfo=dict(classes=tuple(info['classes'])), pipeline=[],
                       test_mode=True, lazy_init=True, backend_args=src.get('backend_args'))
        return build

    return {group: builder(group, info, info['source'])
            for group, info in meta.get('groups', {}).items()
            if (info.get('source') or {}).get('ann_file')}


def sources_from_config(cfg) -> Dict[str, Callable[[], object]]:
    """Group -> builder of its source dataset (annotations not loaded), built as the
    train dataloader builds it (:func:`.tool_data.build_tool_dataset`): its files, its
    metainfo classes, wrappers around the ``MultiSourceDataset`` looked through."""
    from .tool_data import ToolDataError, build_tool_dataset, unwrap_source
    try:
        dataset = build_tool_dataset(cfg, 'train', pipeline_split='train', lazy_init=True)
    except ToolDataError as err:
        raise DataMapError(str(err)) from err
    if not hasattr(dataset, 'get_group_dataset'):
        return {'': lambda: unwrap_source(dataset)}
    return {g: (lambda src=unwrap_source(dataset.get_group_dataset(g)): src)
            for g in dataset.group_names}


def resolve_ann_ids(table: Table, sources: Dict[str, object]) -> np.ndarray:
    """Annotation id of each label (-1 where unknown), from its group's annotation file.

    Args:
        table (dict): Per-label columns (:func:`training_dynamics`).
        sources (dict): Group -> COCO-style dataset, or a zero-argument builder of one.

    Labels of samples whose instance count differed from the file (``mismatch``) stay
    unknown: the pipeline dropped instances, so position j is not the j-th annotation.
    So do those of groups whose dataset has no per-image ``parse_data_info``.
    """
    ann_id = table['ann_id'].copy()
    cache: Dict[str, Dict[str, List[int]]] = {}
    for i in np.flatnonzero(ann_id < 0):
        group = str(table['group'][i])
        if group not in sources or table['mismatch'][i]:
            continue
        if group not in cache:
            ds = sources[group]() if callable(sources[group]) else sources[group]
            cache[group] = coco_ann_ids(ds) if hasattr(ds, 'parse_data_info') else {}
        ids = cache[group].get(str(table['image_id'][i]))
        if ids is not None and len(ids) == table['num_instances'][i]:
            ann_id[i] = ids[table['inst'][i]]
    return ann_id


def class_names(table: Table, meta: dict) -> np.ndarray:
    """Class name of each label (from the group's or the unified classes)."""
    names = np.full(len(table['label']), '', dtype=object)
    for i, (group, label) in enumerate(zip(table['group'], table['label'])):
        classes = meta.get('classes') if meta.get('label_space') == 'unified' else \
            meta.get('groups', {}).get(str(group), {}).get('classes')
        if classes and 0 <= label < len(classes):
            names[i] = classes[label]
    return names


# ---------------------------------------------------------------------- outputs
def summarise(table: Table, rule: RegionRule, epochs: Sequence[int]) -> dict:
    """Counts per region (overall and per group) and the settings used."""
    def counts(mask):
        return {r: int(((table['region'] == r) & mask).sum()) for r in REGIONS}
    everything = np.ones(len(table['region']), dtype=bool)
    return dict(num_labels=int(len(table['region'])), epochs=[int(e) for e in epochs],
                rule=asdict(rule), regions=counts(everything),
                regions_by_group={str(g): counts(table['group'] == g)
                                  for g in np.unique(table['group'])},
                mean_confidence=float(np.mean(table['confidence'])),
                ann_id_unresolved=int((table['ann_id'] < 0).sum()),
                pipeline_mismatch=int(table['mismatch'].sum()))


def _csv_bytes(table: Table) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerow(CSV_COLUMNS)
    for i in range(len(table['region'])):
        ann = int(table['ann_id'][i])
        writer.writerow([table['image_id'][i], ann if ann >= 0 else '', table['group'][i],
                         table['class'][i], f'{table["confidence"][i]:.6f}',
                         f'{table["variability"][i]:.6f}', f'{table["correctness"][i]:.6f}',
                         table['region'][i], int(table['epochs_seen'][i]),
                         int(table['inst'][i])])
    return buf.getvalue().encode()


def _png_bytes(table: Table, rule: RegionRule, title: str) -> bytes:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    points = ax.scatter(table['variability'], table['confidence'], c=table['correctness'],
                        cmap='coolwarm_r', vmin=0, vmax=1, s=8, alpha=0.7, rasterized=True)
    fig.colorbar(points, ax=ax, label='correctness')
    ax.axhline(rule.hard_confidence, color='grey', lw=0.8, ls='--')
    ax.axhline(rule.easy_confidence, color='grey', lw=0.8, ls='--')
    ax.axvline(rule.ambiguous_variability, color='grey', lw=0.8, ls=':')
    box = dict(facecolor='white', alpha=0.8, edgecolor='none', pad=1)
    for text, x, y in (('easy', 0.01, 0.99), ('hard-to-learn', 0.01, 0.01),
                       ('ambiguous', 0.99, 0.5)):
        ax.text(x, y, text, transform=ax.transAxes, fontsize=9, color='dimgrey', bbox=box,
                ha='left' if x < 0.5 else 'right', va={0.99: 'top', 0.01: 'bottom'}.get(
                    y, 'center'))
    ax.set(xlabel='variability', ylabel='confidence', title=title, ylim=(-0.02, 1.02),
           xlim=(-0.01, max(0.5, float(np.max(table['variability'], initial=0)) + 0.01)))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write_outputs(out_dir: str, table: Table, rule: RegionRule,
                  summary: dict) -> Dict[str, str]:
    """Write ``scored_labels.csv``, ``data_map.png`` and ``summary.json`` atomically.

    Args:
        out_dir (str): Output folder (created).
        table (dict): Per-label columns, with ``class`` and ``region`` added.
        rule (RegionRule): The cut-offs (drawn on the plot).
        summary (dict): Written as ``summary.json``.

    Returns:
        dict[str, str]: Kind -> path written.
    """
    paths = dict(csv=osp.join(out_dir, 'scored_labels.csv'),
                 png=osp.join(out_dir, 'data_map.png'),
                 json=osp.join(out_dir, 'summary.json'))
    title = f'data map: {len(table["region"])} labels, {len(summary["epochs"])} epochs'
    _atomic_write(paths['csv'], _csv_bytes(table))
    _atomic_write(paths['png'], _png_bytes(table, rule, title))
    _atomic_write(paths['json'], json.dumps(dict(summary, files=paths), indent=2).encode())
    return paths


def score_labels(work_dir: str, rule: Optional[RegionRule] = None,
                 sources: Optional[Dict[str, object]] = None) -> Tuple[Table, dict]:
    """Everything but writing: read, compute, resolve ann ids, assign regions.

    Args:
        work_dir (str): The training work dir (or its ``data_map`` folder).
        rule (RegionRule, optional): Region cut-offs. Defaults to ``RegionRule()``.
        sources (dict, optional): Group -> dataset (or a builder of one) to resolve ann
            ids with. Defaults to the annotation files named in ``meta.json``.

    Returns:
        tuple[dict, dict]: The per-label table (sorted by confidence, ascending) and the
        summary.
    """
    rule = rule or RegionRule()
    meta, epochs = load_epochs(find_data_dir(work_dir))
    table = training_dynamics(epochs)
    if sources is None:
        sources = sources_from_meta(meta)
    table['ann_id'] = resolve_ann_ids(table, sources)
    table['class'] = class_names(table, meta)
    table['region'] = rule.assign(table['confidence'], table['variability'])
    return table, summarise(table, rule, [e for e, _ in epochs])
