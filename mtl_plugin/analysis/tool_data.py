"""What the project's tools read: the dataloader's own dataset, pipeline and label spaces.

Every tool that loads data (``tools/consolidate.py``, ``browse_predictions.py``,
``feature_space.py``, ``cross_dataset_eval.py``, ``dataset_report.py``, ``data_map.py``)
goes through this module, so that it sees what training and ``tools/test.py`` saw:

- the dataset is ``<split>_dataloader.dataset`` built with ``DATASETS.build`` under the
  config's default scope, as MMEngine's ``Runner.build_dataloader`` does; wrappers around a
  ``MultiSourceDataset`` (resampling, balancing) are dropped so indices are plain samples;
- the pipeline is the one the dataloader's dataset runs: a source's own ``pipeline``,
  else the ``MultiSourceDataset``'s shared ``pipeline=``. A top-level ``test_pipeline``
  variable of the config (often a stale one from an inherited stock base) is never read.
  For the train split the test dataloader's pipeline (same group, else its shared one)
  replaces the training one, so that no random augmentation moves the boxes;
- batches come from ``Runner.build_dataloader`` with the dataloader's ``collate_fn``
  (in order, no workers);
- label spaces come from the built dataset's metainfo (``group_metainfo[g]['classes']``,
  i.e. each source's ``metainfo.classes`` that training used, and ``label_spaces``) or
  from the model (``model.label_space``), never from an annotation file's ``categories``.
"""
import copy
import os.path as osp
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.registry import DATASETS, DefaultScope

from ..labels import LabelSpace
from ..progress import track

__all__ = ['ToolDataError', 'SPLITS', 'dataset_cfg', 'source_pipelines', 'tool_dataset_cfg',
           'build_tool_dataset', 'tool_batches', 'group_classes', 'own_unified_classes',
           'unified_classes', 'source_files', 'unwrap_source', 'require_groups']

SPLITS = ('train', 'val', 'test')


class ToolDataError(ValueError):
    """A config whose data a tool cannot build; the message names the key and the fix."""


def _type_name(cfg: Any) -> str:
    kind = cfg.get('type') if isinstance(cfg, Mapping) else None
    return str(getattr(kind, '__name__', kind)).split('.')[-1]


def _is_multi_source(cfg: Any) -> bool:
    return _type_name(cfg) == 'MultiSourceDataset'


def require_groups(cfg: Mapping, split: str, fix: str) -> None:
    """Fail before anything is built when ``<split>_dataloader.dataset`` (through
    wrappers) is no ``MultiSourceDataset``; ``fix`` ends the message (what to do)."""
    dataset = dataset_cfg(cfg, split)
    if not _is_multi_source(dataset):
        raise ToolDataError(f'{split}_dataloader.dataset is {_type_name(dataset)!r}, not a '
                            f'MultiSourceDataset: the config has no groups; {fix}')


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ToolDataError(f'split must be one of {SPLITS}, but got {split!r}')


def dataset_cfg(cfg: Mapping, split: str = 'test') -> dict:
    """A copy of ``<split>_dataloader.dataset`` with wrappers around a
    ``MultiSourceDataset`` dropped (a plain dataset is returned as it is).

    Args:
        cfg (Mapping): A loaded config.
        split (str): ``'train'``, ``'val'`` or ``'test'``. Defaults to ``'test'``.

    Returns:
        dict: The dataset config.
    """
    _check_split(split)
    dataset = ((cfg.get(f'{split}_dataloader') or {}).get('dataset'))
    if not isinstance(dataset, Mapping):
        raise ToolDataError(f'the config has no {split}_dataloader.dataset: add one, or '
                            f'pick another split of {SPLITS}')
    dataset = copy.deepcopy(dict(dataset))
    inner = dataset
    while not _is_multi_source(inner) and isinstance(inner.get('dataset'), Mapping):
        inner = inner['dataset']
    return dict(inner) if _is_multi_source(inner) else dataset


def _innermost(entry: Mapping) -> dict:
    """The dataset config that holds ``ann_file`` / ``pipeline`` inside a source entry."""
    inner = entry if 'type' in entry else entry.get('dataset', {})
    while 'ann_file' not in inner and isinstance(inner.get('dataset'), Mapping):
        inner = inner['dataset']
    return inner


def source_pipelines(cfg: Mapping, split: str = 'test') -> Dict[Optional[str], list]:
    """The pipeline that each source of ``<split>_dataloader.dataset`` runs.

    Args:
        cfg (Mapping): A loaded config.
        split (str): The dataloader. Defaults to ``'test'``.

    Returns:
        dict: Group name -> pipeline (the source's own, else the ``MultiSourceDataset``'s
        shared ``pipeline=``); the key ``None`` holds the shared one (when set), or the
        pipeline of a plain dataset.
    """
    dataset = dataset_cfg(cfg, split)
    if not _is_multi_source(dataset):
        pipeline = _innermost(dataset).get('pipeline')
        if not pipeline:
            raise ToolDataError(f'{split}_dataloader.dataset has no pipeline: set one')
        return {None: list(pipeline)}
    shared = dataset.get('pipeline')
    out: Dict[Optional[str], list] = {} if shared is None else {None: list(shared)}
    for pos, entry in enumerate(dataset.get('datasets') or []):
        own = _innermost(entry).get('pipeline')
        if own is None and shared is None:
            raise ToolDataError(
                f'{split}_dataloader.dataset.datasets[{pos}] ({entry.get("group_name")!r}) '
                'has no pipeline and the MultiSourceDataset shares none: set pipeline=[...] '
                'on the source or on the MultiSourceDataset')
        out[entry.get('group_name')] = list(own if own is not None else shared)
    return out


def _pipeline_for(pipelines: Mapping[Optional[str], list], group: Optional[str],
                  split: str) -> list:
    if group in pipelines:
        return copy.deepcopy(pipelines[group])
    if None in pipelines:
        return copy.deepcopy(pipelines[None])
    distinct = {repr(p): p for p in pipelines.values()}
    if len(distinct) == 1:
        return copy.deepcopy(next(iter(distinct.values())))
    raise ToolDataError(f'{split}_dataloader.dataset has no source {group!r} and no shared '
                        f'pipeline to read it with (its groups: {sorted(map(str, pipelines))})'
                        ': add pipeline=[...] to that MultiSourceDataset')


def tool_dataset_cfg(cfg: Mapping, split: str = 'test',
                     pipeline_split: Optional[str] = None) -> dict:
    """The dataset config a tool builds: ``<split>``'s data, ``pipeline_split``'s pipeline.

    Args:
        cfg (Mapping): A loaded config.
        split (str): Whose sources (annotation files, images, classes). Defaults to
            ``'test'``.
        pipeline_split (str, optional): Whose dataloader pipeline to run. Defaults to the
            split itself, but ``'test'`` (else ``'val'``) for the train split.

    Returns:
        dict: A dataset config; the pipelines are the dataloader's own, unchanged when
        ``pipeline_split == split``.
    """
    dataset = dataset_cfg(cfg, split)
    if pipeline_split is None:
        pipeline_split = split
        if split == 'train':
            pipeline_split = 'test' if cfg.get('test_dataloader') else 'val'
    _check_split(pipeline_split)
    if pipeline_split == split:
        return dataset
    pipelines = source_pipelines(cfg, pipeline_split)
    if not _is_multi_source(dataset):
        _innermost(dataset)['pipeline'] = _pipeline_for(pipelines, None, pipeline_split)
        return dataset
    dataset.pop('pipeline', None)
    for entry in dataset['datasets']:
        _innermost(entry)['pipeline'] = _pipeline_for(pipelines, entry.get('group_name'),
                                                      pipeline_split)
    return dataset


def build_tool_dataset(cfg: Config, split: str = 'test', pipeline_split: Optional[str] = None,
                       lazy_init: bool = False) -> Any:
    """Build :func:`tool_dataset_cfg` as ``Runner.build_dataloader`` builds a dataset.

    Args:
        cfg (Config): A loaded config.
        split (str): See :func:`tool_dataset_cfg`. Defaults to ``'test'``.
        pipeline_split (str, optional): See :func:`tool_dataset_cfg`.
        lazy_init (bool): Build without loading the annotations (metainfo only).
            Defaults to False.

    Returns:
        The dataset (a ``MultiSourceDataset`` for a config with groups).
    """
    ds_cfg = tool_dataset_cfg(cfg, split, pipeline_split)
    if lazy_init:
        ds_cfg['lazy_init'] = True
    import mtl_plugin  # noqa: F401  (registers MultiSourceDataset for a config without imports)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        try:
            dataset = DATASETS.build(ds_cfg)
            if not lazy_init and hasattr(dataset, 'full_init'):
                dataset.full_init()
        except (FileNotFoundError, KeyError, TypeError, ValueError) as err:
            first = str(err).splitlines()[0] if str(err) else ''
            raise ToolDataError(f'the {split} dataset failed to build: '
                                f'{type(err).__name__}: {first}') from err
    return dataset


def tool_batches(cfg: Mapping, dataset: Any, batch_size: int,
                 indices: Optional[Sequence[int]] = None, description: str = 'predicting',
                 split: str = 'test') -> Iterator[Tuple[List[int], dict]]:
    """Batches of ``dataset`` from ``Runner.build_dataloader`` (the ``<split>_dataloader``'s
    ``collate_fn``; in order, no workers), with a progress bar.

    Args:
        cfg (Mapping): The config (its dataloader gives the ``collate_fn``).
        dataset: The dataset (e.g. from :func:`build_tool_dataset`).
        batch_size (int): Samples per batch.
        indices (Sequence[int], optional): Dataset indices, in order. Defaults to all.
        description (str): The bar's label. Defaults to 'predicting'.
        split (str): Whose dataloader settings. Defaults to ``'test'``.

    Yields:
        tuple[list[int], dict]: The batch's dataset indices and the collated batch, for
        ``model.test_step`` or ``model.data_preprocessor``.
    """
    from mmengine.runner import Runner
    from torch.utils.data import Subset
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ToolDataError(f'batch_size must be an int >= 1, but got {batch_size!r}')
    indices = list(range(len(dataset))) if indices is None else [int(i) for i in indices]
    loader_cfg = dict(cfg.get(f'{split}_dataloader') or cfg.get('val_dataloader') or {})
    loader = Runner.build_dataloader(dict(
        dataset=Subset(dataset, indices), batch_size=batch_size, num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
        collate_fn=copy.deepcopy(loader_cfg.get('collate_fn', dict(type='pseudo_collate')))))
    chunks = [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]
    for chunk, batch in zip(track(chunks, description), loader):
        yield chunk, batch


def group_classes(dataset: Any) -> Dict[str, Tuple[str, ...]]:
    """Group -> its own classes (``metainfo.classes`` of the source, as training used).

    A plain dataset gives one entry ``''`` with its ``metainfo['classes']``.
    """
    if hasattr(dataset, 'group_names') and hasattr(dataset, 'get_group_metainfo'):
        # per source, without loading the annotations (a lazily built dataset stays lazy)
        return {g: tuple(dataset.get_group_metainfo(g).get('classes') or ())
                for g in dataset.group_names}
    meta = dataset.metainfo
    groups = meta.get('group_metainfo')
    if groups:
        return {g: tuple(m.get('classes') or ()) for g, m in groups.items()}
    return {'': tuple(meta.get('classes') or ())}


def unified_classes(dataset: Any, model: Optional[Any] = None) -> Tuple[str, ...]:
    """The classes prediction labels index: the model's unified label space when it has
    one (``model.label_space``), else the dataset's ``unified_classes`` / ``classes``."""
    space = getattr(model, 'label_space', None) if model is not None else None
    if isinstance(space, LabelSpace):
        return tuple(space.unified_classes)
    meta = dataset.metainfo
    return tuple(meta.get('unified_classes') or meta.get('classes') or ())


def own_unified_classes(dataset: Any) -> Dict[str, Dict[str, str]]:
    """Group -> {local class name: unified class name} of the classes it annotates."""
    meta = dataset.metainfo
    space = meta.get('label_spaces')
    space = LabelSpace.from_dict(space) if space else None
    out = {}
    for group, classes in group_classes(dataset).items():
        names = space.unified_names(group) if space is not None and group in \
            space.group_classes else classes
        out[group] = dict(zip(classes, names))
    return out


def unwrap_source(dataset: Any) -> Any:
    """The dataset inside source wrappers (``RepeatDataset``...): the one with ``ann_file``."""
    while not hasattr(dataset, 'ann_file') and hasattr(dataset, 'dataset'):
        dataset = dataset.dataset
    return dataset


def source_files(dataset: Any) -> List[dict]:
    """Per source of a built dataset: ``name``, ``ann_file``, ``img_dir`` (data_root joined,
    as the dataset resolved them) and ``classes`` (its metainfo classes)."""
    classes = group_classes(dataset)
    if hasattr(dataset, 'get_group_dataset'):
        pairs = [(g, unwrap_source(dataset.get_group_dataset(g))) for g in dataset.group_names]
    else:
        pairs = [('', unwrap_source(dataset))]
    out = []
    for name, src in pairs:
        prefix = getattr(src, 'data_prefix', None) or {}
        img_dir = prefix.get('img', prefix.get('img_path', ''))
        out.append(dict(name=name, ann_file=getattr(src, 'ann_file', ''),
                        img_dir=img_dir if img_dir else osp.dirname(getattr(src, 'ann_file', '')),
                        classes=classes.get(name, ())))
    return out
