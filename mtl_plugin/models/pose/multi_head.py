"""``MultiHeadPoseEstimator``: shared top-down backbone, one keypoint head per dataset."""
import copy
import json
from typing import Any, Dict, Mapping, Optional, Sequence, Union

import torch
from mmengine.config import ConfigDict
from mmengine.model import BaseModel, ModuleDict
from mmengine.registry import MODELS
from mmpose.models.pose_estimators import TopdownPoseEstimator
from mmpose.structures import PoseDataSample
from mmpose.utils.typing import SampleList
from torch import Tensor, nn

from ...config_checks import reject_stock_keys
from ..multitask import MultiTaskLossMixin
from .. import heads as _aux_heads  # noqa: F401  (registers DatasetClsHead for aux_head)
from ..losses import group_context
from ...groups import UnknownGroupError
from ..multi_head import MultiHeadMixin
from ..utils import dispatch_mode
from .keypoint_meta import from_json, keypoint_meta, to_json

CfgDict = Union[dict, ConfigDict]


def _select(feats, index: Tensor):
    """Rows ``index`` of every tensor in a (nested) tuple / list of features."""
    if isinstance(feats, Tensor):
        return feats.index_select(0, index)
    return type(feats)(_select(f, index) for f in feats)


@MODELS.register_module(force=True)  # over the lazy builder of models/utils.py
class MultiHeadPoseEstimator(MultiTaskLossMixin, MultiHeadMixin, BaseModel):
    """Top-down pose estimation on several datasets with different keypoint sets.

    A shared backbone (+ neck) and one mmpose head per dataset (e.g. COCO's 17 person
    keypoints and AP-10K's 17 animal keypoints). Routing, label-space checks and head
    isolation are the same as :class:`MultiHeadDetector`'s (:class:`MultiHeadMixin`,
    :class:`HeadIsolationHook`); each group is evaluated by its own metric through
    :class:`GroupedMetric`. Keypoint sets of different datasets cannot be merged: at
    inference each box is predicted by the head it asks for (its metainfo's ``head`` or
    ``group_name``), or by every head (see :meth:`predict`).

    The model keeps each group's keypoint meta (flip indices, names, skeleton, colours;
    from ``dataset_meta``, which mmpose's ``init_model`` / ``MMPoseInferencer`` set from
    the checkpoint, or from the samples it meets) in its extra state, so every checkpoint
    carries them; :attr:`dataset_meta` hands them on as ``group_metainfo``.

    Args:
        backbone (dict): Backbone config.
        heads (dict): Head name -> mmpose head config (``HeatmapHead``, ``RTMCCHead``...).
        neck (dict, optional): Neck config.
        group_to_head (dict, optional): Group name -> head name. Defaults to identity.
        default_head (str, optional): The head whose keypoints a sample without a head
            or group gets as ``pred_instances`` (every head still runs on it). Defaults
            to the first head.
        aux_head (dict, optional): Auxiliary head trained on the features of the whole
            batch, e.g. ``dict(type='DatasetClsHead', in_channels=512, num_groups=2)``;
            its losses are added with the prefix ``aux.``. Defaults to None.
        loss_weighting (dict, optional): Multi-task loss weighting over the loss-key
            prefixes (the heads, ``aux``), e.g. ``dict(type='UncertaintyWeighting')``; the
            weights are logged as ``weight.<task>``. See
            :mod:`mtl_plugin.models.multitask`. Defaults to None.
        train_cfg (dict, optional): Passed to every head's ``loss``.
        test_cfg (dict, optional): Passed to every head's ``predict`` (``flip_test``...).
        data_preprocessor (dict, optional): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: CfgDict,
                 heads: Dict[str, CfgDict],
                 neck: Optional[CfgDict] = None,
                 group_to_head: Optional[Dict[str, str]] = None,
                 default_head: Optional[str] = None,
                 aux_head: Optional[CfgDict] = None,
                 loss_weighting: Optional[CfgDict] = None,
                 train_cfg: Optional[CfgDict] = None,
                 test_cfg: Optional[CfgDict] = None,
                 data_preprocessor: Optional[CfgDict] = None,
                 init_cfg: Optional[CfgDict] = None,
                 **kwargs: Any) -> None:
        reject_stock_keys(type(self), kwargs)  # a stock head: names the fix
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.check_heads_cfg(heads)
        self.train_cfg = dict(train_cfg or {})
        self.test_cfg = dict(test_cfg or {})
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        built = {}
        for name, cfg in heads.items():
            built[name] = self.build_head(name, copy.deepcopy(dict(cfg)))
            built[name].test_cfg = copy.deepcopy(self.test_cfg)
        self.heads = ModuleDict(built)
        self.init_routing(group_to_head, None, None)
        self._keypoint_metas: Dict[str, dict] = {}  # group -> keypoint meta
        self.default_head = next(iter(self.heads)) if default_head is None else default_head
        self.aux_head = MODELS.build(aux_head) if aux_head is not None else None
        self.init_loss_weighting(loss_weighting)  # last: it reads the heads' names

    def extract_feat(self, inputs: Tensor):
        """Backbone (+ neck) features of (B, 3, H, W) inputs."""
        x = self.backbone(inputs)
        return self.neck(x) if self.neck is not None else x

    def forward(self, inputs: Tensor, data_samples: Optional[SampleList] = None,
                mode: str = 'tensor'):
        """``'loss'``, ``'predict'`` or ``'tensor'`` (raw head outputs), as in mmpose."""
        return dispatch_mode(self, inputs, data_samples, mode)

    # mmpose's conversion of head outputs (input space -> image space) into data samples
    add_pred_to_datasample = TopdownPoseEstimator.add_pred_to_datasample

    def head_num_outputs(self, head: nn.Module) -> Optional[int]:
        """Keypoints a head predicts."""
        return getattr(head, 'out_channels', None)

    def group_num_outputs(self, group_meta: dict) -> Optional[int]:
        """Keypoints of a group's dataset."""
        return group_meta.get('num_keypoints')

    # ------------------------------------------------------------------ heads at inference
    @property
    def default_head(self) -> str:
        """The head of ``pred_instances`` for samples that name no head nor group."""
        return self._default_head

    @default_head.setter
    def default_head(self, name: str) -> None:
        if name not in self.heads:
            raise UnknownGroupError(f'default_head must be one of the heads {list(self.heads)}, '
                           f'but got {name!r}')
        self._default_head = name

    def requested_head(self, sample: Any, position: int = 0) -> Optional[str]:
        """The head a sample asks for: its metainfo's ``head``, else its ``group_name``'s
        head, else None (run every head).

        Raises:
            UnknownGroupError: An unknown head or group (a ``KeyError``), naming the heads
                and groups there are.
        """
        meta = sample if isinstance(sample, Mapping) else sample.metainfo
        head, group = meta.get('head'), meta.get('group_name')
        if head is not None:
            if head not in self.heads:
                raise UnknownGroupError(f'data sample {position} asks for head {head!r}, but the model '
                               f'has heads {list(self.heads)}')
            return head
        if group is None:
            return None
        try:
            return self.head_of(group)
        except KeyError:
            known = list(self._groups) if self._groups is not None else sorted(
                self._keypoint_metas)
            raise UnknownGroupError(f'data sample {position} has group_name {group!r}, which no head '
                           f'predicts; groups: {known}, heads: {list(self.heads)} (set '
                           'metainfo "head" to pick a head by name)') from None

    def group_of_head(self, head: str, group: Optional[str] = None) -> str:
        """The group whose keypoint meta describes ``head``'s keypoints (``group`` itself
        when it is routed to ``head`` and known; else the head's first known group; else
        the head's name)."""
        if group is not None and group in self._keypoint_metas and self._safe_head(
                group) == head:
            return group
        for name in self._keypoint_metas:
            if self._safe_head(name) == head:
                return name
        return head

    def _safe_head(self, group: str) -> Optional[str]:
        try:
            return self.head_of(group)
        except KeyError:
            return None

    def flip_indices_of(self, head: str, group: Optional[str] = None,
                        sample_meta: Optional[Mapping] = None) -> list:
        """``flip_indices`` for ``head``'s keypoints: from its group's keypoint meta, else
        the sample's own when their number matches the head's.

        Raises:
            ValueError: Neither is known (the model met no keypoint meta for the head).
        """
        meta = self._keypoint_metas.get(self.group_of_head(head, group), {})
        if 'flip_indices' in meta:
            return list(meta['flip_indices'])
        own = (sample_meta or {}).get('flip_indices')
        if own is not None and len(own) == self.head_num_outputs(self.heads[head]):
            return list(own)
        raise ValueError(f'flip test of head "{head}" needs its keypoints\' flip_indices, '
                         'but the model knows no keypoint meta for it: set model.dataset_meta '
                         "to the dataset's metainfo (mmpose's init_model does, from a "
                         'checkpoint saved by a Runner) or set test_cfg.flip_test=False')

    # ------------------------------------------------------------------ keypoint metas
    @property
    def dataset_meta(self) -> Optional[dict]:
        """The dataset meta (set by mmpose's ``init_model`` / ``MMPoseInferencer`` from the
        checkpoint), with every group's keypoint meta the model knows as
        ``group_metainfo`` and, where it has none, the default head's at the top level."""
        meta = dict(self._dataset_meta or {})
        if self._keypoint_metas:
            meta['group_metainfo'] = {**copy.deepcopy(self._keypoint_metas),
                                      **(meta.get('group_metainfo') or {})}
            default = self._keypoint_metas.get(self.group_of_head(self.default_head), {})
            for key, value in default.items():
                meta.setdefault(key, copy.deepcopy(value))
        return meta or None

    @dataset_meta.setter
    def dataset_meta(self, meta: Optional[dict]) -> None:
        keys = ('group_name_to_id', 'group_metainfo', 'label_spaces')
        if meta and any(meta.get(k) for k in keys):
            MultiHeadMixin.dataset_meta.fset(self, meta)  # groups, keypoint counts, checks
        else:  # e.g. mmpose's COCO default: keep what the checkpoint gave
            self._dataset_meta = copy.deepcopy(meta)
        for group, gmeta in ((meta or {}).get('group_metainfo') or {}).items():
            if keypoint_meta(gmeta):
                self._keypoint_metas[group] = keypoint_meta(gmeta)

    def meet(self, data_samples: Sequence) -> None:
        """:meth:`MultiHeadMixin.meet`, and each new group's ``flip_indices`` /
        ``dataset_name`` from the samples of a ``MultiSourceDataset`` (they carry their
        source's own; used when no dataset meta gave the group's keypoint meta)."""
        super().meet(data_samples)
        for sample in data_samples or ():
            meta = sample if isinstance(sample, Mapping) else sample.metainfo
            group, flip = meta.get('group_name'), meta.get('flip_indices')
            if (meta.get('groups') is None or flip is None or group in self._keypoint_metas
                    or self._safe_head(group) is None):
                continue
            self._keypoint_metas[group] = dict(dataset_name=meta.get('dataset_name'),
                                               num_keypoints=len(flip), flip_indices=list(flip))

    def get_extra_state(self) -> Tensor:
        """:meth:`MultiHeadMixin.get_extra_state` plus the groups' keypoint metas."""
        state = json.loads(bytes(super().get_extra_state().tolist()).decode())
        state['keypoint_metas'] = to_json(self._keypoint_metas)
        return torch.tensor(list(json.dumps(state).encode()), dtype=torch.uint8)

    def set_extra_state(self, state: Any) -> None:
        """Restore what :meth:`get_extra_state` saved."""
        if isinstance(state, Tensor):
            state = json.loads(bytes(state.tolist()).decode())
        super().set_extra_state(state)
        if isinstance(state, Mapping) and state.get('keypoint_metas'):
            self._keypoint_metas.update(from_json(state['keypoint_metas']))

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Losses of each head on its own samples, keys prefixed ``<head>.`` (and the
        auxiliary head's on the whole batch, prefixed ``aux.``)."""
        self.meet(data_samples)
        feats = self.extract_feat(inputs)
        losses = {}
        for head_name, idx in self.route(data_samples).items():
            index = torch.as_tensor(idx, device=inputs.device)
            samples = [data_samples[i] for i in idx]
            with group_context(samples):  # for group-weighted losses of this head
                head_losses = self.heads[head_name].loss(
                    _select(feats, index), samples, train_cfg=self.train_cfg)
            losses.update({f'{head_name}.{k}': v for k, v in head_losses.items()})
        if self.aux_head is not None:  # on the features of the whole batch
            aux_losses = self.aux_head.loss(feats, data_samples)
            losses.update({f'aux.{k}': v for k, v in aux_losses.items()})
        return losses

    def predict(self, inputs: Tensor, data_samples: SampleList) -> SampleList:
        """Keypoints of each sample from the head it asks for (optionally flip-tested).

        A sample's head is its metainfo's ``head`` (a head name) or the head of its
        ``group_name``; a sample with neither (mmpose's ``inference_topdown``,
        ``MMPoseInferencer``) runs every head. ``pred_instances`` holds the keypoints of the
        sample's head (:attr:`default_head` for a sample without one); a sample that ran
        every head also gets each head's keypoints as ``pred_instances_<head>``. The
        metainfo ``pred_head`` names the head of ``pred_instances`` and ``pred_group`` the
        group whose keypoint meta (skeleton, colours) describes them, for the visualizer.
        """
        self.meet(data_samples)
        feats = self.extract_feat(inputs)
        if self.test_cfg.get('flip_test', False):
            feats = [feats, self.extract_feat(inputs.flip(-1))]
        wanted = [self.requested_head(s, i) for i, s in enumerate(data_samples)]
        for i, sample in enumerate(data_samples):
            heads = [wanted[i]] if wanted[i] is not None else list(self.heads)
            sample.set_metainfo(dict(pred_head=wanted[i] or self.default_head))
            if wanted[i] is None:
                sample.set_metainfo(dict(pred_heads=tuple(heads)))
        for head_name in self.heads:
            idx = [i for i, w in enumerate(wanted) if w in (head_name, None)]
            if idx:
                self._predict_head(head_name, feats, idx, data_samples, wanted)
        return data_samples

    def _predict_head(self, head_name: str, feats, idx: list, data_samples: SampleList,
                      wanted: list) -> None:
        """Run one head on samples ``idx`` and store its keypoints in image space."""
        index = torch.as_tensor(idx, device=self.data_preprocessor.device)
        samples = [self._head_view(head_name, data_samples[i]) for i in idx]
        preds = self.heads[head_name].predict(_select(feats, index), samples,
                                              test_cfg=self.test_cfg)
        instances, fields = preds if isinstance(preds, tuple) else (preds, None)
        for j, i in enumerate(idx):
            out = self.add_pred_to_datasample(
                [instances[j]], None if fields is None else [fields[j]], [samples[j]])[0]
            target = data_samples[i]
            if wanted[i] is None:
                target.set_field(out.pred_instances, f'pred_instances_{head_name}')
            if target.metainfo['pred_head'] == head_name:
                target.pred_instances = out.pred_instances
                target.set_metainfo(dict(pred_group=self.group_of_head(
                    head_name, target.metainfo.get('group_name'))))
                if 'pred_fields' in out:
                    target.pred_fields = out.pred_fields

    def _head_view(self, head_name: str, sample: PoseDataSample) -> PoseDataSample:
        """A light copy of ``sample`` with the head's own ``flip_indices`` (flip test)."""
        view = PoseDataSample(metainfo=sample.metainfo)
        if 'gt_instances' in sample:
            view.gt_instances = sample.gt_instances
        if self.test_cfg.get('flip_test', False):
            view.set_metainfo(dict(flip_indices=self.flip_indices_of(
                head_name, sample.metainfo.get('group_name'), sample.metainfo)))
        return view

    def _forward(self, inputs: Tensor, data_samples: Optional[SampleList] = None):
        """Raw outputs of every head on the whole batch."""
        feats = self.extract_feat(inputs)
        return {name: head.forward(feats) for name, head in self.heads.items()}
