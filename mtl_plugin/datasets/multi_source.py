"""``MultiSourceDataset``: several independent datasets, every sample tagged with its group."""
import bisect
import copy
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.registry import DATASETS
from mmengine.structures import BaseDataElement
from torch.utils.data import Dataset

from ..config_checks import reject_stock_keys
from ..groups import Groups, check_group_name
from ..labels import LabelSpace
from .cross_source import bind_cross_source_paste
from .category_check import (UNKNOWN_CATEGORY_POLICIES, report_unknown_categories,
                             watching_categories)
from .transforms import check_pipeline_groups

GROUP_KEYS = ('group_id', 'group_name')


class _InjectGroup:
    """First transform of each source's pipeline: puts the group into ``results``.

    Transforms (``GroupBasedAugmentation``, group-weighted losses' targets) read
    ``results['group_id']`` / ``results['group_name']``. With a unified label space it
    also shifts each instance's ``bbox_label`` into that space.
    """

    def __init__(self, group_id: int, group_name: str, label_map: Optional[np.ndarray]) -> None:
        self.group_id = group_id
        self.group_name = group_name
        self.label_map = label_map

    def __call__(self, results: dict) -> dict:
        results['group_id'] = self.group_id
        results['group_name'] = self.group_name
        if self.label_map is not None and 'instances' in results:
            results['instances'] = [
                dict(inst, bbox_label=int(self.label_map[inst['bbox_label']]))
                if 'bbox_label' in inst else inst for inst in results['instances']]
        return results

    def __repr__(self) -> str:
        return f'InjectGroup(group_id={self.group_id}, group_name={self.group_name!r})'


def _meta(dataset: Any) -> dict:
    """A copy of a source's metainfo (empty for plain sequences)."""
    return copy.deepcopy(dict(getattr(dataset, 'metainfo', None) or {}))


def _empty_after_load(dataset: Any) -> bool:
    """Whether a source whose ``full_init`` raised did load, and was left empty.

    ``data_list`` is ``[]`` both when loading failed and when loading / filtering gave no
    sample (mmengine then fails to serialize it), so the annotations are read once more:
    a load error propagates from here with its own message.
    """
    if getattr(dataset, 'data_list', None) != [] or not hasattr(dataset, 'load_data_list'):
        return False
    try:
        loaded = dataset.load_data_list()
    except Exception:
        return False
    return not loaded or (hasattr(dataset, 'filter_data') and _filters_all(dataset, loaded))


def _filters_all(dataset: Any, loaded: list) -> bool:
    dataset.data_list = loaded
    try:
        return not dataset.filter_data()
    finally:
        dataset.data_list = []


def attach_group(data: Any, group_id: int, group_name: str,
                 extra: Optional[Mapping[str, Any]] = None) -> Any:
    """Set ``group_id`` / ``group_name`` on the data samples of one packed sample.

    Stock packers (``PackDetInputs``, ``PackPoseInputs``) keep only their ``meta_keys``,
    so the group is set after the pipeline instead of asking users to edit every
    pipeline's ``meta_keys``.

    Args:
        data (Any): Output of a dataset pipeline, usually ``dict(inputs, data_samples)``.
        group_id (int): The group's integer id.
        group_name (str): The group's name.
        extra (Mapping, optional): More metainfo to set (``MultiSourceDataset`` adds
            ``groups``, the dataset's ``{name: id}``, and ``label_space``, the serialised
            :class:`LabelSpace`, so that a model meets the dataset's groups and label
            spaces with every batch, with no hook). Defaults to None.

    Returns:
        Any: ``data``, with the group set on every ``BaseDataElement`` it holds.
    """
    meta = dict(extra or {}, group_id=group_id, group_name=group_name)
    if isinstance(data, dict):
        samples = data.get('data_samples')
        for sample in samples if isinstance(samples, (list, tuple)) else [samples]:
            if isinstance(sample, BaseDataElement):
                sample.set_metainfo(meta)
            elif isinstance(sample, dict):
                sample.update(meta)
    return data


@DATASETS.register_module()
class MultiSourceDataset(Dataset):
    """Concatenation of independent datasets in which every sample knows its group.

    Each source is a dataset config (any registered dataset of the current scope:
    mmdet's ``CocoDataset``, mmpose's ``CocoDataset``, ...) with two extra keys:
    ``group_name`` (required) and ``group_id`` (optional, defaults to the source's
    position). Guarantees:

    - ``data_samples.metainfo['group_id']`` (int) and ``['group_name']`` (str) on every
      sample, and ``results['group_id']`` / ``['group_name']`` for every transform;
    - :attr:`group_ids`, one integer per sample, from the annotation files only;
    - each source keeps its own label space (:meth:`get_group_metainfo`); with
      ``label_space='unified'``, instance labels are shifted into one unified space
      (for a single head over the union of the classes, or a ``MultiHeadDetector``,
      which maps them back by name); every sample says which in its metainfo
      ``gt_label_space`` (``'group'`` / ``'unified'``), with the serialised
      ``label_space`` and the ``groups``;
    - ``metainfo`` (classes, a distinct colour per class, label spaces) without reading
      an annotation file under ``lazy_init=True``.

    Args:
        datasets (Sequence[dict]): Source configs (``type`` + ``group_name`` +
            optional ``group_id``), or ``dict(group_name=..., dataset=<cfg or dataset>)``.
        metainfo (dict | str, optional): Metainfo of the whole dataset: a dict, or a
            group name whose metainfo to use (e.g. the keypoint layout every source
            was converted to). Defaults to the sources' common metainfo, or, when their
            classes differ, the unified classes.
        label_space (str): ``'group'`` (labels stay in each source's own space) or
            ``'unified'``. Defaults to ``'group'``.
        unified_classes (Sequence[str], optional): Classes of the unified space. Defaults
            to the ordered union of the sources' class names.
        class_mapping (dict, optional): Per group, local class name -> unified name.
        pipeline (Sequence[dict], optional): The pipeline of every source config that
            sets none of its own (a source's own ``pipeline`` wins). Put the test
            pipeline here: mmdet's ``DetInferencer`` / ``inference_detector`` and mmpose's
            ``inference_topdown`` / ``MMPoseInferencer`` read
            ``test_dataloader.dataset.pipeline``. Defaults to None.
        unknown_categories (str): Annotations whose category id the source's file does
            not list in ``categories`` (mmdet drops them silently): ``'error'`` (raise,
            with the ids and counts) or ``'drop'`` (warn with the count). Defaults to
            ``'error'``.
        lazy_init (bool): Defer building ``group_ids`` until first use. Defaults to False.
    """

    def __init__(self,
                 datasets: Sequence[Union[dict, Mapping]],
                 metainfo: Optional[Union[dict, str]] = None,
                 label_space: str = 'group',
                 unified_classes: Optional[Sequence[str]] = None,
                 class_mapping: Optional[Dict[str, Dict[str, str]]] = None,
                 pipeline: Optional[Sequence[dict]] = None,
                 unknown_categories: str = 'error',
                 lazy_init: bool = False,
                 **kwargs: Any) -> None:
        reject_stock_keys(type(self), kwargs)  # a stock data_root / ann_file: names the fix
        if not isinstance(datasets, (list, tuple)) or not datasets:
            raise TypeError('MultiSourceDataset needs a non-empty list of dataset configs, '
                            f'but got {datasets!r}')
        if label_space not in ('group', 'unified'):
            raise ValueError(f"label_space must be 'group' or 'unified', but got {label_space!r}")
        if unknown_categories not in UNKNOWN_CATEGORY_POLICIES:
            raise ValueError(f'unknown_categories must be one of {UNKNOWN_CATEGORY_POLICIES}, '
                             f'but got {unknown_categories!r}')
        self.unknown_categories = unknown_categories
        if pipeline is not None and not isinstance(pipeline, (list, tuple)):
            raise TypeError('MultiSourceDataset: pipeline must be a list of transform configs, '
                            f'but got {type(pipeline).__name__}')
        self.pipeline = None if pipeline is None else [copy.deepcopy(t) for t in pipeline]
        self.group_names: List[str] = []
        self.group_id_list: List[int] = []
        self.datasets: List[BaseDataset] = []
        for pos, entry in enumerate(datasets):
            name, gid, dataset = self._parse_entry(pos, entry, self.pipeline)
            self.group_names.append(name)
            self.group_id_list.append(gid)
            self.datasets.append(dataset)
        self._check_unique()
        self.label_space = label_space
        self._unified_classes = unified_classes
        self._class_mapping = class_mapping
        self._user_metainfo = metainfo
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    # ------------------------------------------------------------------ building
    @staticmethod
    def _parse_entry(pos: int, entry: Mapping, pipeline: Optional[List[dict]] = None):
        if isinstance(entry, Mapping) and 'type' in entry:
            cfg = copy.deepcopy(dict(entry))
            name, gid = cfg.pop('group_name', None), cfg.pop('group_id', pos)
            if pipeline is not None and cfg.get('pipeline') is None:
                cfg['pipeline'] = copy.deepcopy(pipeline)
            dataset = cfg
        elif isinstance(entry, Mapping) and 'dataset' in entry:
            name, gid, dataset = entry.get('group_name'), entry.get('group_id', pos), entry['dataset']
            if pipeline is not None and isinstance(dataset, Mapping) and dataset.get(
                    'pipeline') is None:
                dataset = dict(copy.deepcopy(dict(dataset)), pipeline=copy.deepcopy(pipeline))
        else:
            raise TypeError(f'datasets[{pos}] must be a dataset config with "type" and '
                            '"group_name", or dict(group_name=..., dataset=...), '
                            f'but got {entry!r}')
        check_group_name(name, f'datasets[{pos}]')
        if isinstance(gid, bool) or not isinstance(gid, (int, np.integer)) or gid < 0:
            raise ValueError(f'datasets[{pos}] ("{name}") group_id must be an int >= 0, '
                             f'but got {gid!r}')
        if isinstance(dataset, Mapping):
            # annotations are loaded in full_init, where errors can name the source
            dataset = DATASETS.build(dict(dataset, lazy_init=True))
        return name, int(gid), dataset

    def _check_unique(self) -> None:
        for what, values in (('group name', self.group_names), ('group id', self.group_id_list)):
            seen: Dict[Any, str] = {}
            for value, name in zip(values, self.group_names):
                if value in seen:
                    raise ValueError(f'duplicate {what} {value!r}: used by "{seen[value]}" and '
                                     f'"{name}"; every source needs its own')
                seen[value] = name

    def full_init(self) -> None:
        """Build the sources, the group id array and the label space (once)."""
        if self._fully_initialized:
            return
        lengths = [self._source_length(name, dataset, self.unknown_categories)
                   for name, dataset in zip(self.group_names, self.datasets)]
        self.cumulative_sizes = np.cumsum(lengths).tolist()
        # one int per sample, from the sources' lengths only: no image is read
        self._group_ids = np.repeat(np.asarray(self.group_id_list, dtype=np.int64), lengths)
        self.unified_space = self._build_label_space()
        for gid, name, dataset in zip(self.group_id_list, self.group_names, self.datasets):
            pipeline = getattr(dataset, 'pipeline', None)
            label_map = None
            if self.label_space == 'unified':
                label_map = self.unified_space.lookup(name).numpy()
            if pipeline is not None and hasattr(pipeline, 'transforms'):
                pipeline.transforms.insert(0, _InjectGroup(gid, name, label_map))
        for dataset in self.datasets:  # group-keyed transforms fail here on a typo
            check_pipeline_groups(getattr(dataset, 'pipeline', None), self.groups)
        bind_cross_source_paste(self)  # CrossSourcePaste: its partner sources
        self._metainfo = self._build_metainfo()
        # groups, and their sizes: the dataset-level reference of normalised group weights
        self._sample_meta = dict(groups=self.groups.to_dict(), group_sizes=dict(
            zip(self.group_names, np.diff([0, *self.cumulative_sizes]).tolist())))
        if self.unified_space is not None:
            self._sample_meta['label_space'] = self.unified_space.to_dict()
            # which space the samples' GT labels are in: the model maps either to its heads
            self._sample_meta['gt_label_space'] = self.label_space
        keypoints = {n: _meta(d).get('num_keypoints') for n, d in
                     zip(self.group_names, self.datasets)}
        if all(k is not None for k in keypoints.values()):
            self._sample_meta['group_num_keypoints'] = keypoints
        self._fully_initialized = True

    @staticmethod
    def _source_length(name: str, dataset: Any, unknown_categories: str = 'error') -> int:
        """Load one source; its own load error is kept (chained), zero samples refused,
        annotations of category ids its file does not list reported."""
        try:
            with watching_categories(dataset) as unknown:
                if hasattr(dataset, 'full_init'):
                    dataset.full_init()
            n = len(dataset)
        except Exception as err:
            # mmengine cannot serialize an empty source; any other error (a missing file,
            # invalid JSON, an annotation without bbox) is the cause to report
            n = 0 if _empty_after_load(dataset) else None
            if n is None:
                raise ValueError(f'source "{name}" failed to load: '
                                 f'{type(err).__name__}: {err}') from err
        report_unknown_categories(name, getattr(dataset, 'ann_file', None), unknown,
                                  unknown_categories)
        if n == 0:
            raise ValueError(f'source "{name}" has zero samples (check its ann_file, '
                             'data_prefix and filter_cfg)')
        return n

    def _build_label_space(self) -> Optional[LabelSpace]:
        """The unified label space of the sources' classes (None if a source has none)."""
        classes = {n: _meta(d).get('classes') for n, d in zip(self.group_names, self.datasets)}
        if any(c is None for c in classes.values()):
            if self.label_space == 'unified':
                missing = [n for n, c in classes.items() if c is None]
                raise ValueError(f"label_space='unified' needs classes in every source's "
                                 f'metainfo, but {missing} have none')
            return None
        return LabelSpace(classes, self._unified_classes, self._class_mapping)

    def _build_metainfo(self) -> dict:
        group_meta = {n: _meta(d) for n, d in zip(self.group_names, self.datasets)}
        user = self._user_metainfo
        if isinstance(user, str):
            if user not in group_meta:
                raise KeyError(f'metainfo="{user}" names no group; groups: {self.group_names}')
            meta = copy.deepcopy(group_meta[user])
        elif isinstance(user, Mapping):
            meta = self._parse_user_metainfo(dict(user))
        elif self.unified_space is not None and (self.label_space == 'unified' or len(
                {tuple(m['classes']) for m in group_meta.values()}) > 1):
            # predictions of a model over several label spaces are in the unified one
            meta = dict(classes=self.unified_space.unified_classes)
            palettes = [m.get('palette') for m in group_meta.values()]
            if all(p is not None for p in palettes):
                meta['palette'] = self._unified_palette(group_meta)
        else:
            meta = copy.deepcopy(group_meta[self.group_names[0]])
        if self.unified_space is not None:
            meta['unified_classes'] = self.unified_space.unified_classes
            meta['label_spaces'] = self.unified_space.to_dict()
        meta.update(group_names=tuple(self.group_names),
                    group_name_to_id=dict(zip(self.group_names, self.group_id_list)),
                    group_ann_files={n: getattr(d, 'ann_file', None) or None
                                     for n, d in zip(self.group_names, self.datasets)},
                    group_metainfo=group_meta,
                    label_space=self.label_space)
        return meta

    def _unified_palette(self, group_meta: dict) -> list:
        """One distinct colour per unified class: its source's colour when no other class
        took it (a stock ``CocoDataset`` source with ``metainfo.classes`` keeps COCO's
        80-colour palette, so every source's first class would be COCO's first colour),
        else the next unused colour of the sources' palettes, else a seeded random one."""
        own: Dict[str, tuple] = {}
        for name, meta in group_meta.items():
            renames = (self._class_mapping or {}).get(name, {})
            for cls, colour in zip(meta['classes'], meta['palette']):
                own.setdefault(renames.get(cls, cls), tuple(colour))
        pool = [tuple(c) for meta in group_meta.values() for c in meta['palette']]
        rng = np.random.RandomState(42)
        used: set = set()
        palette = []
        for cls in self.unified_space.unified_classes:
            colour = own.get(cls)
            if colour is None or colour in used:
                colour = next((c for c in pool if c not in used), None)
            while colour is None or colour in used:
                colour = tuple(int(v) for v in rng.randint(0, 256, 3))
            used.add(colour)
            palette.append(colour)
        return palette

    @staticmethod
    def _parse_user_metainfo(meta: dict) -> dict:
        if 'from_file' in meta:  # mmpose style: dict(from_file='configs/_base_/datasets/x.py')
            from mmpose.datasets.datasets.utils import parse_pose_metainfo
            return parse_pose_metainfo(meta)
        return meta

    # ------------------------------------------------------------------ access
    @property
    def groups(self) -> Groups:
        """The dataset's groups (name <-> id), for every group-keyed setting."""
        return Groups(self.group_names, self.group_id_list)

    @property
    def group_ids(self) -> np.ndarray:
        """Group id of every sample, shape (N,), int64; read from annotations only."""
        self.full_init()
        return self._group_ids

    @property
    def metainfo(self) -> dict:
        """Metainfo of the whole dataset, with ``group_names``, ``group_name_to_id``,
        ``group_metainfo`` (each source's own, incl. its ``classes``) and ``label_space``.

        With ``lazy_init=True`` it is built from the sources' metainfo alone, no annotation
        file read: mmdet's ``init_detector`` / ``DetInferencer`` build the test dataset
        lazily for its palette only, and inference needs no data on disk."""
        if not self._fully_initialized:
            self.unified_space = self._build_label_space()
            return self._build_metainfo()
        return copy.deepcopy(self._metainfo)

    def get_group_metainfo(self, group: Union[str, int]) -> dict:
        """Metainfo (own label space) of one group, by name or id."""
        return _meta(self.datasets[self._group_index(group)])

    def get_group_dataset(self, group: Union[str, int]) -> BaseDataset:
        """The source dataset of one group, by name or id."""
        return self.datasets[self._group_index(group)]

    def _group_index(self, group: Union[str, int]) -> int:
        return self.groups.index_of(group)  # source position == group position

    def locate(self, idx: int):
        """Return ``(source position, index within that source)`` of global ``idx``."""
        self.full_init()
        if idx < 0:
            idx += len(self)
        if not 0 <= idx < len(self):
            raise IndexError(f'index {idx} out of range for {len(self)} samples')
        pos = bisect.bisect_right(self.cumulative_sizes, idx)
        return pos, idx - (self.cumulative_sizes[pos - 1] if pos else 0)

    def get_data_info(self, idx: int) -> dict:
        """Annotation of sample ``idx`` (no image read), with its group keys."""
        pos, local = self.locate(idx)
        info = self.datasets[pos].get_data_info(local)
        info.update(group_id=self.group_id_list[pos], group_name=self.group_names[pos])
        return info

    def __len__(self) -> int:
        self.full_init()
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int) -> Any:
        pos, local = self.locate(idx)
        # the source's own __getitem__ keeps its refetch-on-None logic (within the group)
        data = self.datasets[pos][local]
        return attach_group(data, self.group_id_list[pos], self.group_names[pos],
                            self._sample_meta)

    def __repr__(self) -> str:
        groups = ', '.join(f'{n}(id={i})' for n, i in zip(self.group_names, self.group_id_list))
        return f'{self.__class__.__name__}(groups=[{groups}], label_space={self.label_space!r})'
