"""``MultiHeadPoseEstimator``: shared top-down backbone, one keypoint head per dataset."""
import copy
from typing import Any, Dict, Optional, Union

import torch
from mmengine.config import ConfigDict
from mmengine.model import BaseModel, ModuleDict
from mmengine.registry import MODELS
from mmpose.models.pose_estimators import TopdownPoseEstimator
from mmpose.utils.typing import SampleList
from torch import Tensor, nn

from ...config_checks import reject_stock_keys
from ..multitask import MultiTaskLossMixin
from .. import heads as _aux_heads  # noqa: F401  (registers DatasetClsHead for aux_head)
from ..losses import group_context
from ..multi_head import MultiHeadMixin
from ..utils import dispatch_mode

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
    :class:`GroupedMetric`. Inference is always routed by group: keypoint sets of
    different datasets cannot be merged.

    Args:
        backbone (dict): Backbone config.
        heads (dict): Head name -> mmpose head config (``HeatmapHead``, ``RTMCCHead``...).
        neck (dict, optional): Neck config.
        group_to_head (dict, optional): Group name -> head name. Defaults to identity.
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
        """Each sample predicted by its group's head (optionally with flip test)."""
        self.meet(data_samples)
        feats = self.extract_feat(inputs)
        if self.test_cfg.get('flip_test', False):
            feats = [feats, self.extract_feat(inputs.flip(-1))]
        instances: list = [None] * len(data_samples)
        fields: list = [None] * len(data_samples)
        for head_name, idx in self.route(data_samples).items():
            index = torch.as_tensor(idx, device=inputs.device)
            preds = self.heads[head_name].predict(
                _select(feats, index), [data_samples[i] for i in idx], test_cfg=self.test_cfg)
            pred_instances, pred_fields = preds if isinstance(preds, tuple) else (preds, None)
            for j, i in enumerate(idx):
                instances[i] = pred_instances[j]
                fields[i] = pred_fields[j] if pred_fields is not None else None
        if all(f is None for f in fields):
            fields = None
        return self.add_pred_to_datasample(instances, fields, data_samples)

    def _forward(self, inputs: Tensor, data_samples: Optional[SampleList] = None):
        """Raw outputs of every head on the whole batch."""
        feats = self.extract_feat(inputs)
        return {name: head.forward(feats) for name, head in self.heads.items()}
