"""DataMapHook: each training label's gold confidence, every epoch (Dataset Cartography).

Swayamdipta et al., "Dataset Cartography: Mapping and Diagnosing Datasets with Training
Dynamics" (EMNLP 2020): labels that the model keeps predicting with low confidence are
hard to learn, often mislabelled. The hook gives the model a :class:`DataMapRecorder`;
the model reports, from its own training forward (no second forward), how confident it
is in every gold label; the hook writes one file per epoch, and
``tools/analysis/data_map.py`` turns them into scored labels.
"""
import json
import logging
import os
import os.path as osp
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import torch
from mmdet.structures.bbox import bbox_overlaps, get_box_tensor
from mmengine.config import ConfigDict
from mmengine.dist import all_gather_object, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop
from mmengine.structures import InstanceData
from torch import Tensor

from ...analysis.io import atomic_write as _atomic_write

__all__ = ['DataMapHook', 'DataMapRecorder', 'gold_confidence', 'sample_key', 'SUPPORTED_MODELS']

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
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be an int >= 1, but got {value!r}')
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


@HOOKS.register_module()
class DataMapHook(Hook):
    """Record each training label's gold confidence every epoch, for data maps.

    Before training it sets ``model.data_map_recorder`` (a :class:`DataMapRecorder`);
    the model fills it from its own training forward (:data:`SUPPORTED_MODELS`; a
    detector predicts with a light test config, ``score_thr`` / ``max_per_img``, from
    the same head outputs as its loss). After every recorded epoch the rows of all ranks
    are gathered and rank 0 writes ``<work_dir>/<out_dir>/epoch_{e:03d}.npz`` (one row
    per label: ``group``, ``image_id``, ``ann_id``, ``inst``, ``label``,
    ``confidence``, ``correct``, ``num_instances``, ``mismatch``) atomically, plus
    ``meta.json`` (groups, classes, annotation files). Completed epochs are files, so a
    resumed run keeps them and adds the next ones; files of epochs after the resumed
    one are removed (they belong to the abandoned run).

    A label is identified by its sample (``group_name`` + ``img_id``, or
    ``sample_idx``) and its position ``inst`` in ``gt_instances``, i.e. in the
    annotation file's order of non-ignored instances; ``tools/analysis/data_map.py``
    maps it to the COCO annotation id. Samples carrying ``ann_id`` in metainfo
    (classification crops) use it directly. A pipeline that drops instances (RandomCrop,
    FilterAnnotations) is detected when the count differs from the annotation file
    (warned once; such samples are flagged). One that only reorders them is not.

    With ``IterBasedTrainLoop`` give ``period_iters``: every ``period_iters``
    iterations play the role of an epoch (file ``epoch_{p:03d}`` for period ``p``);
    a last partial period is dropped, and resuming inside a period records it only
    partly (resume from checkpoints taken at period boundaries).

    Caveats: a dense head's ``loss_and_predict`` predicts with ``proposal_cfg`` (our
    light config built from the head's ``test_cfg``, or from mmdet's usual defaults
    when it has none) on the augmented training image, in train mode (batch-norm
    statistics of the batch), with ``rescale=False``: boxes and GT share the network
    input space. Two-stage RoI heads and ``MultiHeadPoseEstimator`` do not record
    (a RoI head raises at its first step; a pose model at ``before_train``). Raise
    ``nms_pre`` for crowded images (more than ~20 objects of one scale).

    Args:
        interval (int): Record every ``interval`` epochs (periods). Defaults to 1.
        max_samples (int, optional): Record only a fixed random subset of this many
            training samples (the same on every rank and epoch). Defaults to None (all).
        period_iters (int, optional): Iterations per period with ``IterBasedTrainLoop``
            (required there, refused with epoch-based loops). Defaults to None.
        iou_thr (float): IoU at which a detection covers a GT box. Defaults to 0.5.
        score_thr (float): Score threshold of the predictions used for recording.
            Defaults to 0.01.
        max_per_img (int): Detections per image used for recording. Defaults to 100.
        nms_pre (int): Cap on the candidates per level before NMS when recording.
            Defaults to 200.
        out_dir (str): Folder under ``work_dir``. Defaults to ``'data_map'``.
        seed (int): Seed of the ``max_samples`` subset. Defaults to 0.
    """

    priority = 'NORMAL'

    def __init__(self, interval: int = 1, max_samples: Optional[int] = None,
                 period_iters: Optional[int] = None, iou_thr: float = 0.5,
                 score_thr: float = 0.01, max_per_img: int = 100, nms_pre: int = 200,
                 out_dir: str = 'data_map', seed: int = 0) -> None:
        for name, value, optional in (('interval', interval, False),
                                      ('max_samples', max_samples, True),
                                      ('period_iters', period_iters, True)):
            if not (optional and value is None) and (
                    isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f'{name} must be an int >= 1{" or None" if optional else ""},'
                                 f' but got {value!r}')
        if not isinstance(out_dir, str) or not out_dir:
            raise ValueError(f'out_dir must be a non-empty folder name, but got {out_dir!r}')
        self.interval, self.max_samples, self.period_iters = interval, max_samples, period_iters
        self.out_dir, self.seed = out_dir, seed
        self.recorder = DataMapRecorder(iou_thr, score_thr, max_per_img, nms_pre)  # validates
        self.by_epoch = True
        self.data_dir: Optional[str] = None
        self._model: Any = None

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _unwrap(runner) -> torch.nn.Module:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'data_map_recorder'):
            raise TypeError(f'DataMapHook needs a model that reports its confidence in each '
                            f'gold label from its training forward; {type(model).__name__} '
                            f'does not. Models that record: {", ".join(SUPPORTED_MODELS)}')
        return model

    def before_train(self, runner) -> None:
        """Check the model and loop, scan the dataset, write ``meta.json``."""
        model = self._unwrap(runner)
        self.by_epoch = isinstance(runner.train_loop, EpochBasedTrainLoop)
        if self.by_epoch and self.period_iters is not None:
            raise ValueError('DataMapHook: period_iters is for IterBasedTrainLoop; with an '
                             'epoch-based loop every epoch is a period (use interval), but '
                             f'got period_iters={self.period_iters!r}')
        if not self.by_epoch and self.period_iters is None:
            raise ValueError(f'DataMapHook records per epoch, but the train loop is '
                             f'{type(runner.train_loop).__name__}: give period_iters=N '
                             '(iterations per period, e.g. one pass over the data)')
        dataset = runner.train_dataloader.dataset
        sources = _sources(dataset)
        keys, expected = _scan(sources)
        if self.max_samples is not None:
            if keys is None:
                raise TypeError('DataMapHook: max_samples needs a train dataset whose '
                                f'sources have get_data_info(), but got {dataset!r}')
            pick = np.random.default_rng(self.seed).choice(
                len(keys), size=min(self.max_samples, len(keys)), replace=False)
            self.recorder.subset = {keys[i] for i in pick}
        self.recorder.expected_counts = expected
        self.data_dir = osp.join(runner.work_dir, self.out_dir)
        start = runner.epoch if self.by_epoch else runner.iter // self.period_iters
        if not self.by_epoch and runner.iter % self.period_iters:
            runner.logger.warning(f'DataMapHook: resumed at iteration {runner.iter}, inside '
                                  f'period {start + 1}: that period is recorded only in part')
        if is_main_process():
            os.makedirs(self.data_dir, exist_ok=True)
            self._remove_stale(runner, start)
            meta = _meta(self, model, dataset, sources)
            _atomic_write(osp.join(self.data_dir, 'meta.json'),
                          json.dumps(meta, indent=2).encode())
        model.data_map_recorder = None
        self._model = model

    def _remove_stale(self, runner, start: int) -> None:
        for name in sorted(os.listdir(self.data_dir)):
            if name.startswith('epoch_') and name.endswith('.npz') and \
                    name[6:-4].isdigit() and int(name[6:-4]) > start:
                os.remove(osp.join(self.data_dir, name))
                runner.logger.warning(f'DataMapHook: removed {name}, left by a run that went '
                                      f'past the epoch this one starts from ({start})')

    # ------------------------------------------------------------------ periods
    def _recorded(self, period: int) -> bool:
        return period % self.interval == 0

    def _switch(self, period: int) -> None:
        self._model.data_map_recorder = self.recorder if self._recorded(period) else None

    def before_train_epoch(self, runner) -> None:
        """Turn recording on for recorded epochs only (no prediction cost otherwise)."""
        if self.by_epoch:
            self._switch(runner.epoch + 1)

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        """With ``period_iters``: turn recording on for recorded periods."""
        if not self.by_epoch:
            self._switch(runner.iter // self.period_iters + 1)

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Any = None) -> None:
        """With ``period_iters``: write the period that just ended."""
        if not self.by_epoch and (runner.iter + 1) % self.period_iters == 0:
            self._flush(runner, (runner.iter + 1) // self.period_iters)

    def after_train_epoch(self, runner) -> None:
        """Write the epoch that just ended (all ranks gather, rank 0 writes)."""
        if self.by_epoch:
            self._flush(runner, runner.epoch + 1)

    def after_train(self, runner) -> None:
        """Detach the recorder; drop a last partial period."""
        if len(self.recorder):
            runner.logger.info(f'DataMapHook: {len(self.recorder)} samples of a last, '
                               'partial period are not written')
            self.recorder.pop()
        if self._model is not None:
            self._model.data_map_recorder = None

    def _flush(self, runner, period: int) -> None:
        if not self._recorded(period):
            return
        parts = all_gather_object(self.recorder.pop())
        if not is_main_process():
            return
        rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if len(rows['confidence']) == 0:
            runner.logger.warning(f'DataMapHook: nothing was recorded in epoch {period}: '
                                  'check that the model calls the recorder in loss()')
        path = osp.join(self.data_dir, EPOCH_FILE.format(period))
        with tempfile.NamedTemporaryFile(dir=self.data_dir, suffix='.tmp', delete=False) as f:
            np.savez_compressed(f, **rows)
        os.replace(f.name, path)
        runner.logger.info(f'DataMapHook: {len(rows["confidence"])} labels of epoch {period} '
                           f'-> {path}')


def _sources(dataset) -> List[Tuple[str, Any]]:
    """(group name, source dataset) pairs of a train dataset (through wrappers such as
    ``RepeatDataset`` / ``ClassBalancedDataset``, which hold it as ``.dataset``)."""
    while not hasattr(dataset, 'group_names') and hasattr(dataset, 'dataset'):
        dataset = dataset.dataset
    if hasattr(dataset, 'group_names') and hasattr(dataset, 'datasets'):
        return list(zip(dataset.group_names, dataset.datasets))
    return [('', dataset)]


def _scan(sources) -> Tuple[Optional[List[SampleKey]], Dict[SampleKey, int]]:
    """Every sample's key and number of non-ignored instances, from annotations only."""
    expected: Dict[SampleKey, int] = {}
    keys: Dict[SampleKey, None] = {}  # ordered set
    for group, ds in sources:
        if not hasattr(ds, 'get_data_info'):
            return None, {}
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            key = sample_key(dict(info, group_name=info.get('group_name', group)))
            keys[key] = None
            if 'instances' in info:
                expected[key] = sum(not inst.get('ignore_flag', 0)
                                    for inst in info['instances'])
    return list(keys), expected


def _meta(hook: DataMapHook, model, dataset, sources) -> dict:
    """What ``tools/analysis/data_map.py`` needs besides the epoch files."""
    ds_meta = dict(getattr(dataset, 'metainfo', None) or {})
    group_meta = ds_meta.get('group_metainfo') or {}
    groups = {}
    for group, ds in sources:
        cls = type(ds)
        ann_file = getattr(ds, 'ann_file', None)
        classes = (group_meta.get(group) or getattr(ds, 'metainfo', {})).get('classes') or ()
        groups[group] = dict(
            classes=list(classes),
            source=dict(type=f'{cls.__module__}.{cls.__qualname__}',
                        ann_file=osp.abspath(ann_file) if ann_file else None,
                        data_prefix=_jsonable(getattr(ds, 'data_prefix', None)),
                        backend_args=_jsonable(getattr(ds, 'backend_args', None))))
    rec = hook.recorder
    return dict(version=1, model=type(model).__name__,
                clock='epoch' if hook.by_epoch else 'iter', period_iters=hook.period_iters,
                interval=hook.interval, max_samples=hook.max_samples, seed=hook.seed,
                iou_thr=rec.iou_thr, score_thr=rec.score_thr, max_per_img=rec.max_per_img,
                nms_pre=rec.nms_pre,
                label_space=ds_meta.get('label_space', 'group'),
                classes=list(ds_meta.get('classes') or ()), groups=groups)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str)) if value is not None else None
