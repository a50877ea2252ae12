"""DataMapHook: each training label's gold confidence, every epoch (Dataset Cartography).

Swayamdipta et al., "Dataset Cartography: Mapping and Diagnosing Datasets with Training
Dynamics" (EMNLP 2020): labels that the model keeps predicting with low confidence are
hard to learn, often mislabelled. The hook gives the model a :class:`DataMapRecorder`;
the model reports, from its own training forward (no second forward), how confident it
is in every gold label; the hook writes one file per epoch, and
``tools/analysis/data_map.py`` turns them into scored labels.
"""
import io
import json
import os
import os.path as osp
from contextlib import ExitStack
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import all_gather_object, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop

from ...io import atomic_write as _atomic_write
from ...validation import check_int
from .data_map_recorder import (EPOCH_FILE, SUPPORTED_MODELS, DataMapRecorder, SampleKey,
                                gold_confidence, sample_key)

__all__ = ['DataMapHook', 'DataMapRecorder', 'gold_confidence', 'sample_key', 'SUPPORTED_MODELS']

@HOOKS.register_module()
class DataMapHook(Hook):
    """Record each training label's gold confidence every epoch, for data maps.

    Around every training iteration of a recorded epoch (period) it hands the model its
    :class:`DataMapRecorder` (``with model.recording(recorder):``, entered in
    ``before_train_iter`` and left in ``after_train_iter``); the model fills it from its
    own training forward (:data:`SUPPORTED_MODELS`; a
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
            check_int(value, name, minimum=1, optional=optional)
        if not isinstance(out_dir, str) or not out_dir:
            raise ValueError(f'out_dir must be a non-empty folder name, but got {out_dir!r}')
        self.interval, self.max_samples, self.period_iters = interval, max_samples, period_iters
        self.out_dir, self.seed = out_dir, seed
        self.recorder = DataMapRecorder(iou_thr, score_thr, max_per_img, nms_pre)  # validates
        self.by_epoch = True
        self.data_dir: Optional[str] = None
        self._model: Any = None
        self._on = False  # the current epoch / period is recorded
        self._stack = ExitStack()  # holds model.recording(...) during a recorded iteration

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _unwrap(runner) -> torch.nn.Module:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not callable(getattr(model, 'recording', None)):
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
        self._model = model
        self._on = False

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
        self._on = self._recorded(period)

    def before_train_epoch(self, runner) -> None:
        """Turn recording on for recorded epochs only (no prediction cost otherwise)."""
        if self.by_epoch:
            self._switch(runner.epoch + 1)

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        """Enter ``model.recording(recorder)`` for an iteration of a recorded period."""
        if not self.by_epoch:
            self._switch(runner.iter // self.period_iters + 1)
        self._stack.close()
        if self._on:
            self._stack.enter_context(self._model.recording(self.recorder))

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Any = None) -> None:
        """Leave ``model.recording``; with ``period_iters``: write the period that ended."""
        self._stack.close()
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
        self._stack.close()

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
        buf = io.BytesIO()
        np.savez_compressed(buf, **rows)
        _atomic_write(path, buf.getvalue())
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
