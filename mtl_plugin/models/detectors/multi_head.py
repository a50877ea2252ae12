"""``MultiHeadDetector``: shared backbone/neck, one detection head per dataset."""
import contextlib
import copy
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from mmcv.ops import batched_nms
from mmdet.models.detectors.base import BaseDetector
from mmdet.structures import SampleList
from mmengine.model import ModuleDict
from mmengine.registry import MODELS
from mmengine.structures import InstanceData
from torch import Tensor

from ...config_checks import reject_stock_keys
from ..multitask import MultiTaskLossMixin
from .. import heads as _aux_heads  # noqa: F401  (registers DatasetClsHead for aux_head)
from ..necks import SoftParameterSharing
from ..losses import check_row_layouts, group_context
from ..multi_head import MultiHeadMixin
from ..recording import DataMapRecording
from .head_cfgs import CfgDict, config as _config, per_head as _per_head
from .lockstep import join_head_collectives, lockstep_plan
from .masked_loss import masked_dense_loss, regions_in_input
from .trunk import trunk_features
from .partition import partition_heads as partition_heads_of
from .label_io import (check_classes, check_heads, data_space, gt_to_output, output_table, relabel,
                       unified_to_head_table)

@MODELS.register_module()
class MultiHeadDetector(MultiTaskLossMixin, MultiHeadMixin, DataMapRecording, BaseDetector):
    """One detector, several datasets: a shared backbone/neck and one head per dataset.

    Training routes every sample to the head of its group (``group_name`` from
    ``MultiSourceDataset``): each head runs forward and loss only on the features of its
    own samples, and its loss keys are prefixed ``<head>.``. A head none of whose samples
    took part in an optimizer step keeps its parameters and optimizer state bit-identical
    when :class:`HeadIsolationHook` is on (our configs turn it on).

    Heads are any mmdet dense head (``BaseDenseHead``: RetinaHead, FCOSHead, ATSSHead,
    GFLHead, RTMDetHead, YOLOXHead, ...) or, with ``rpn_head``, any RoI head (two-stage:
    a shared class-agnostic RPN trained on every image, one RoI head per dataset; an
    object a dataset does not label is background for the RPN on that dataset's images).

    *Masked union mode*: map several groups to one head over the union of their classes
    (``group_to_head=dict(person='union', animal='union')``); each sample's GT labels are
    mapped into the head's classes, and with ``partial_label_masking=True`` the gradient
    of the classes that the sample's dataset does not annotate is blocked, so that missing
    labels are ignored instead of learnt as background (UniDet's partial-label loss;
    for sigmoid classification dense heads).

    Inference: merged by default (every head runs, labels mapped into one unified label
    space, optional cross-head NMS with ``test_cfg.merge_nms``); ``test_cfg.heads``
    runs only the heads it lists; with ``test_cfg.route_by_group=True`` each image runs
    only its group's head; :meth:`predict_per_head` gives every head's raw predictions.
    Predictions, and the GT of the returned samples, are labelled in the *output
    classes*, marked ``pred_label_space='unified'`` / ``gt_label_space='unified'``:
    ``test_cfg.output_classes`` if given, else the unified classes of the dataset served
    (its ``metainfo['classes']``), else the model's (see :mod:`.label_io`). So mmdet's
    ``DetLocalVisualizer`` and ``CocoMetric`` read the right class names for either.

    Class names of a head come from ``head_classes``, else its checkpoint, else the data
    it meets; a head without any raises before its first loss / prediction, naming the
    fix. A dataset may cover only some heads: the others keep their classes and get no
    update (no loss, so no gradient).

    Args:
        backbone (dict): Backbone config.
        heads (dict): Head name -> head config (any registered dense / RoI head).
        neck (dict, optional): Neck config. A ``SoftParameterSharing`` neck (one neck copy
            per head, tied by an L2 penalty) runs per head on that head's samples; its
            penalty is added as ``soft_sharing.loss_l2`` (then ``aux_head`` pools the
            backbone's features). Defaults to None.
        rpn_head (dict, optional): Shared RPN; makes ``heads`` RoI heads.
        group_to_head (dict, optional): Group name -> head name. Defaults to identity.
        head_classes (dict, optional): Head name -> class names. Defaults to the classes
            of the groups mapped to it (from the dataset's metainfo).
        unified_classes (Sequence[str], optional): Unified label space. Defaults to the
            dataset's (when it covers every head), else the ordered union of the heads'
            classes.
        class_mapping (dict, optional): Per group (or head), class name -> unified name
            (``{'animal': {'human': 'person'}}``). Defaults to the dataset's.
        partition_heads (dict, optional): Partitioned heads (``dict()``, with
            ``share_box=True``, ``owner=<head>`` and / or ``shared_convs=k``): every head
            uses one head's towers (with ``shared_convs``: their first ``k`` convs; and
            box branch), keeping its own classification output; the shared parts run
            once per sample in training and once per batch in merged inference (see
            :mod:`.partition`). Defaults to None (full heads).
        trunk_per_head (bool): In training, run the backbone / neck once per head on its
            own samples, so that gradient surgery's per-task backwards add up to about
            one full backward (see :mod:`.trunk`). Defaults to False.
        partial_label_masking (bool): Block the gradient of classes a sample's dataset
            does not annotate (for heads shared by several groups). Defaults to True.
        aux_head (dict, optional): Auxiliary head trained on the features of the whole
            batch, e.g. ``dict(type='DatasetClsHead', in_channels=256, num_groups=2)``;
            its losses are added with the prefix ``aux.``. Defaults to None.
        loss_weighting (dict, optional): Multi-task loss weighting over the loss-key
            prefixes (``rpn``, the heads, ``aux``), e.g.
            ``dict(type='UncertaintyWeighting')``; the weights are logged as
            ``weight.<task>``. See :mod:`mtl_plugin.models.multitask`.
            Defaults to None (plain sum).
        train_cfg (dict, optional): Shared by all heads, or keyed by head name (plus
            ``default``, and ``rpn`` / ``rpn_proposal`` for two-stage).
        test_cfg (dict, optional): Same layout, plus ``route_by_group`` (bool),
            ``merge_nms`` (e.g. ``dict(type='nms', iou_threshold=0.6, class_agnostic=False)``),
            ``merge_max_per_img`` (cap after merging), ``heads`` (the heads merged
            inference runs, default all), ``output_classes`` (class names predictions are
            labelled in, by name; classes not listed are dropped) and ``rpn`` for two-stage.
        data_preprocessor (dict, optional): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
    """

    RESERVED_TEST = ('route_by_group', 'merge_nms', 'merge_max_per_img', 'rpn', 'heads',
                     'output_classes')
    RESERVED_TRAIN = ('rpn', 'rpn_proposal')

    def __init__(self,
                 backbone: CfgDict,
                 heads: Dict[str, CfgDict],
                 neck: Optional[CfgDict] = None,
                 rpn_head: Optional[CfgDict] = None,
                 group_to_head: Optional[Dict[str, str]] = None,
                 head_classes: Optional[Dict[str, Sequence[str]]] = None,
                 unified_classes: Optional[Sequence[str]] = None,
                 class_mapping: Optional[Dict[str, Dict[str, str]]] = None,
                 partial_label_masking: bool = True,
                 partition_heads: Optional[dict] = None,
                 trunk_per_head: bool = False,
                 aux_head: Optional[CfgDict] = None,
                 loss_weighting: Optional[CfgDict] = None,
                 train_cfg: Optional[CfgDict] = None,
                 test_cfg: Optional[CfgDict] = None,
                 data_preprocessor: Optional[CfgDict] = None,
                 init_cfg: Optional[CfgDict] = None,
                 **kwargs: Any) -> None:
        reject_stock_keys(type(self), kwargs)  # a stock bbox_head: names the fix
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.check_heads_cfg(heads)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        names = list(heads)
        train_cfg, test_cfg = dict(train_cfg or {}), dict(test_cfg or {})
        self.route_by_group = bool(test_cfg.get('route_by_group', False))
        self.merge_nms = test_cfg.get('merge_nms')
        self.merge_max_per_img = test_cfg.get('merge_max_per_img')
        self.rpn_head = None
        if rpn_head is not None:
            rpn = dict(copy.deepcopy(rpn_head))
            rpn.setdefault('num_classes', 1)
            rpn.update(train_cfg=_config(train_cfg.get('rpn')),
                       test_cfg=_config(test_cfg.get('rpn')))
            self.rpn_head = MODELS.build(rpn)
            self.rpn_proposal = _config(train_cfg.get('rpn_proposal', test_cfg.get('rpn')))
        head_train = _per_head({k: v for k, v in train_cfg.items()
                                if k not in self.RESERVED_TRAIN}, names)
        head_test = _per_head({k: v for k, v in test_cfg.items()
                               if k not in self.RESERVED_TEST}, names)
        built = OrderedDict()
        for name in names:
            cfg = dict(copy.deepcopy(heads[name]))
            cfg.update(train_cfg=head_train[name], test_cfg=head_test[name])
            built[name] = self.build_head(name, cfg)
        self.heads = ModuleDict(built)  # mmengine's: init_weights reaches every head
        self.trunk_per_head = bool(trunk_per_head)
        self.partition = None if partition_heads is None else partition_heads_of(
            self.heads, **dict(partition_heads))
        self.init_routing(group_to_head, head_classes, unified_classes, class_mapping)
        self.test_heads = check_heads(test_cfg.get('heads'), list(self.heads))
        self.output_classes = check_classes(test_cfg.get('output_classes'),
                                            'test_cfg.output_classes')
        self.partial_label_masking = partial_label_masking
        self.aux_head = MODELS.build(aux_head) if aux_head is not None else None
        self._check_per_head_neck()
        check_row_layouts(self.heads, 'MultiHeadDetector')  # group weights on the right rows
        self.init_loss_weighting(loss_weighting)  # last: it reads the heads' names

    # ------------------------------------------------------------------ label spaces
    def check_head_classes(self) -> None:
        """Raise when a head has no class names at all: before every prediction, and
        before a loss on data that names its classes (a dataset covering only some heads
        would otherwise train to the end and fail at validation)."""
        if self._space is not None:
            return  # built from known classes
        missing = self.heads_without_classes()
        if missing:
            fix = ', '.join(f"{h}=[...]" for h in missing)
            raise ValueError(
                f'MultiHeadDetector: heads {missing} have no class names: neither the model '
                'config (head_classes), nor its checkpoint, nor the data it meets name them '
                '(a dataset that covers only some heads, or a plain test set); set '
                f'model.head_classes=dict({fix}), or load a checkpoint trained with them')

    def output_class_names(self) -> Tuple[str, ...]:
        """The classes predictions are labelled in: ``test_cfg.output_classes``, else the
        unified classes of the data the model serves, else the model's own."""
        if self.output_classes is not None:
            return self.output_classes
        space = self._met.get('label_space') or {}
        return tuple(space.get('unified_classes') or self.label_space.unified_classes)

    # ------------------------------------------------------------------ features
    @property
    def per_head_neck(self) -> bool:
        """Whether the neck holds one soft-shared copy per head."""
        return isinstance(self.neck, SoftParameterSharing)

    def _check_per_head_neck(self) -> None:
        if not self.per_head_neck:
            return
        if list(self.neck.tasks) != list(self.heads):
            raise ValueError(f'MultiHeadDetector: the SoftParameterSharing neck needs one copy '
                             f'per head, tasks={list(self.heads)}, but got '
                             f'tasks={list(self.neck.tasks)}')
        if self.rpn_head is not None:
            raise ValueError('MultiHeadDetector: a SoftParameterSharing neck works with dense '
                             'heads only (the shared RPN needs one shared neck)')

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor, ...]:
        """Backbone (+ neck) features of a batch (B, 3, H, W) -> tuple of (B, C, h, w)
        (backbone features only with a per-head neck: see :meth:`head_feat`)."""
        x = self.backbone(batch_inputs)
        if self.neck is None or self.per_head_neck:
            return x
        return self.neck(x)

    def head_feat(self, x: Tuple[Tensor, ...], head_name: str) -> Tuple[Tensor, ...]:
        """Features a head sees: ``x`` itself, or its own neck copy's output."""
        return tuple(self.neck(x, head_name)) if self.per_head_neck else x

    def loss_task_names(self) -> List[str]:
        """Tasks of the loss dict (its key prefixes), for loss weighting."""
        names = (['rpn'] if self.rpn_head is not None else []) + list(self.heads)
        names += ['aux'] if self.aux_head is not None else []
        return names + (['soft_sharing'] if self.per_head_neck else [])

    @staticmethod
    def _select(x: Tuple[Tensor, ...], idx: List[int]) -> Tuple[Tensor, ...]:
        index = torch.as_tensor(idx, device=x[0].device)
        return tuple(f.index_select(0, index) for f in x)

    # ------------------------------------------------------------------ training
    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        """Losses of each head on its own samples, keys prefixed ``<head>.`` (and the
        auxiliary head's on the whole batch, prefixed ``aux.``)."""
        self.meet(batch_data_samples)
        if self._met.get('label_space'):  # the data names classes: so must every head
            self.check_head_classes()
        plan = self.route(batch_data_samples)
        x, own = trunk_features(self, batch_inputs, plan, self.trunk_per_head and self.training)
        losses: dict = {}
        proposals = None
        # inside ``with self.recording(recorder)`` (DataMapHook): also predict (same head
        # outputs) and record each GT box's gold confidence (dense heads only)
        recorder = self.data_map_recorder
        if self.rpn_head is not None:
            proposals, rpn_losses = self._rpn_loss(x, batch_data_samples)
            losses.update(rpn_losses)
        for head_name, idx in lockstep_plan(list(self.heads), plan):
            if not idx:  # DDP: its samples are on other ranks; join its collectives only
                join_head_collectives(self.heads[head_name], self.head_feat(self._select(
                    x, [0]), head_name), batch_data_samples[0], proposals and proposals[0])
                continue
            samples = [self._to_head_labels(head_name, batch_data_samples[i]) for i in idx]
            head = self.heads[head_name]
            x_sub = self.head_feat(own[head_name] if own else self._select(x, idx), head_name)
            predict_cfg = None if recorder is None else recorder.predict_cfg(head.test_cfg)
            predictions = None  # (data map) from the same outputs as the loss
            # group-weighted losses read the groups of exactly this head's samples
            with group_context(samples):
                if proposals is not None:
                    head_losses = head.loss(x_sub, [proposals[i] for i in idx], samples)
                elif self._needs_masking(head_name):
                    head_losses, predictions = masked_dense_loss(
                        head, self._annotated(head_name, samples), x_sub, samples, predict_cfg,
                        self._label_regions(head_name, samples))
                elif recorder is not None and hasattr(head, 'loss_and_predict'):
                    head_losses, predictions = head.loss_and_predict(
                        x_sub, samples, proposal_cfg=predict_cfg)
                else:
                    head_losses = head.loss(x_sub, samples)
            if recorder is not None:
                recorder.record_detections([batch_data_samples[i] for i in idx], samples,
                                           predictions)
            losses.update({f'{head_name}.{k}': v for k, v in head_losses.items()})
        if self.aux_head is not None:  # on the features of the whole batch
            aux_losses = self.aux_head.loss(x, batch_data_samples)
            losses.update({f'aux.{k}': v for k, v in aux_losses.items()})
        if self.per_head_neck:
            losses.update(self.neck.loss())
        return losses

    def _rpn_loss(self, x, batch_data_samples):
        rpn_samples = copy.deepcopy(batch_data_samples)
        for sample in rpn_samples:  # class-agnostic proposals from every dataset
            sample.gt_instances.labels = torch.zeros_like(sample.gt_instances.labels)
        rpn_losses, proposals = self.rpn_head.loss_and_predict(
            x, rpn_samples, proposal_cfg=self.rpn_proposal)
        return proposals, {(f'rpn.{k}' if 'rpn' in k else f'rpn.rpn_{k}'): v
                           for k, v in rpn_losses.items()}

    def _to_head_labels(self, head_name: str, sample):
        """Copy of ``sample`` with GT labels in the head's label space (if they differ):
        from its group's labels, or from the unified ones (``gt_label_space='unified'``)."""
        group = sample.metainfo['group_name']
        if sample.metainfo.get('gt_label_space') == 'unified':
            table = unified_to_head_table(data_space(self._met), self.label_space,
                                          head_name, group)
        else:
            table = self.group_to_head_labels(group, head_name)
        if table is None:
            return sample
        sample = sample.clone()  # shallow: gt_instances is copied too, not relabelled in place
        gt = sample.gt_instances.clone()
        gt.labels = table.to(gt.labels.device)[gt.labels]
        sample.gt_instances = gt
        return sample

    def _needs_masking(self, head_name: str) -> bool:
        return self.partial_label_masking and len(self.groups_of_head(head_name)) > 1

    def _annotated(self, head_name: str, samples: SampleList) -> Tensor:
        """(B, C_head) bool: True where the sample's dataset annotates the class."""
        return torch.stack([self.annotated_mask(head_name, s.metainfo['group_name'])
                            for s in samples])

    def _label_regions(self, head_name: str, samples: SampleList) -> List[Tensor]:
        """Per sample, where other classes are annotated too (``CrossSourcePaste``), as
        ``[head class, x1, y1, x2, y2]`` rows in input pixels."""
        out = []
        for s in samples:
            if not len(s.metainfo.get('label_regions', ())):
                out.append(torch.zeros((0, 5)))
                continue
            table = unified_to_head_table(data_space(self._met), self.label_space, head_name,
                                          s.metainfo['group_name'])
            out.append(regions_in_input(s.metainfo, table))
        return out


    # ------------------------------------------------------------------ inference
    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Merged (all heads, or ``test_cfg.heads``) or routed predictions, labelled in
        :meth:`output_class_names`; the returned samples' GT too."""
        self.meet(batch_data_samples)
        self.check_head_classes()
        everyone = list(range(len(batch_data_samples)))
        if self.route_by_group:
            plan = self.route(batch_data_samples)
        else:
            plan = OrderedDict((h, everyone) for h in self.test_heads or self.heads)
        per_head = self._predict_heads(batch_inputs, batch_data_samples, plan, rescale)
        per_image: List[List[InstanceData]] = [[] for _ in batch_data_samples]
        for head_name, idx in plan.items():
            for i, res in zip(idx, per_head[head_name]):
                res.labels = self.head_to_unified(head_name, res.labels)
                per_image[i].append(res)
        out_classes = self.output_class_names()
        table = output_table(self.label_space.unified_classes, out_classes,
                             explicit=self.output_classes is not None)
        merged = [relabel(self._merge(parts), table) for parts in per_image]
        space = data_space(self._met)
        for sample in batch_data_samples:
            gt_to_output(space, sample, out_classes)
            sample.set_metainfo(dict(pred_label_space='unified'))
        return self.add_pred_to_datasample(batch_data_samples, merged)

    def predict_per_head(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                         rescale: bool = True,
                         heads: Optional[Sequence[str]] = None) -> Dict[str, List[InstanceData]]:
        """Every head's raw predictions on the whole batch, each in its OWN label space.

        The backbone (and a shared neck / RPN) run once; each head sees its own features
        (:meth:`head_feat`: its copy of a ``SoftParameterSharing`` neck) and, two-stage,
        the shared RPN's proposals. Nothing is merged, mapped or routed.

        Args:
            batch_inputs (Tensor): Preprocessed images (B, 3, H, W).
            batch_data_samples (list[DetDataSample]): Their samples (metainfo read).
            rescale (bool): Boxes in original image pixels. Defaults to True.
            heads (Sequence[str], optional): The heads to run, in this order. Defaults
                to every head.

        Returns:
            dict[str, list[InstanceData]]: Head -> one ``InstanceData`` per image
            (``bboxes`` (N, 4) xyxy, ``scores`` (N,), ``labels`` (N,) in the head's
            classes).
        """
        names = list(self.heads) if heads is None else list(heads)
        unknown = [h for h in names if h not in self.heads]
        if unknown:
            raise KeyError(f'MultiHeadDetector.predict_per_head: unknown heads {unknown}; '
                           f'heads: {list(self.heads)}')
        self.meet(batch_data_samples)
        everyone = list(range(len(batch_data_samples)))
        plan = OrderedDict((h, everyone) for h in names)
        return self._predict_heads(batch_inputs, batch_data_samples, plan, rescale)

    def _predict_heads(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                       plan: Dict[str, List[int]],
                       rescale: bool) -> Dict[str, List[InstanceData]]:
        """Head -> its predictions (head labels) on the images ``plan[head]``, in order."""
        x = self.extract_feat(batch_inputs)
        proposals = None
        if self.rpn_head is not None:
            proposals = self.rpn_head.predict(x, batch_data_samples, rescale=False)
        out: Dict[str, List[InstanceData]] = OrderedDict()
        with self.partition.sharing() if self.partition else contextlib.nullcontext():
            self._run_heads(x, proposals, batch_data_samples, plan, rescale, out)
        return OrderedDict((h, out[h]) for h in plan)

    def _run_heads(self, x, proposals, batch_data_samples, plan, rescale, out) -> None:
        owner = self.partition.owner_name if self.partition else None
        for head_name, idx in sorted(plan.items(), key=lambda kv: kv[0] != owner):
            x_sub = self._select(x, idx) if len(idx) < len(batch_data_samples) else x
            x_sub = self.head_feat(x_sub, head_name)
            samples = [batch_data_samples[i] for i in idx]
            head = self.heads[head_name]
            if proposals is not None:
                out[head_name] = head.predict(x_sub, [proposals[i] for i in idx], samples,
                                              rescale=rescale)
            else:
                out[head_name] = head.predict(x_sub, samples, rescale=rescale)

    def _merge(self, parts: List[InstanceData]) -> InstanceData:
        merged = InstanceData.cat(parts) if len(parts) > 1 else parts[0]
        if self.merge_nms is not None and len(merged) > 0:
            nms_cfg = dict(self.merge_nms)
            agnostic = nms_cfg.pop('class_agnostic', False)
            idxs = torch.zeros_like(merged.labels) if agnostic else merged.labels
            _, keep = batched_nms(merged.bboxes, merged.scores, idxs, nms_cfg)
            merged = merged[keep]
        if self.merge_max_per_img is not None and len(merged) > self.merge_max_per_img:
            merged = merged[merged.scores.topk(self.merge_max_per_img).indices]
        return merged

    def _forward(self, batch_inputs: Tensor, batch_data_samples: SampleList = None):
        """Raw outputs of every head on the whole batch (for FLOPs / export)."""
        x = self.extract_feat(batch_inputs)
        if self.rpn_head is not None:
            proposals = self.rpn_head.predict(x, batch_data_samples, rescale=False)
            return {n: h.forward(x, proposals, batch_data_samples)
                    for n, h in self.heads.items()}
        return {n: h.forward(self.head_feat(x, n)) for n, h in self.heads.items()}
