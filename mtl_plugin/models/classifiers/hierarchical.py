"""``HierarchicalClassifier``: which dataset, then which class within that dataset.

A shared backbone (+ optional neck) is pooled once (global average of the last feature
level) and feeds

- a :class:`DatasetClsHead` that predicts the dataset (group) of every image; its
  gradient reversal (DANN) and its schedulable ``grl_lambda`` work as in the detectors;
- one fine-grained class head per dataset, in that dataset's own label space.

Training mixes the two with ``alpha``::

    loss = (1 - alpha) * mean_i CE(head_{g_i}(x_i), y_i) + alpha * CE(dataset_head(x), g)

``alpha`` is a float attribute, so ``CurriculumLearningHook`` can drive it::

    custom_hooks = [dict(type='CurriculumLearningHook', schedules=[
        dict(param='model.alpha', type='linear', start=0.5, end=0.1)])]
"""
import copy
import numbers
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel, ModuleDict
from mmengine.registry import MODELS
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from ..multitask import MultiTaskLossMixin
from ..heads import DatasetClsHead
from ..multi_head import MultiHeadMixin
from ..recording import DataMapRecording
from ..utils import build_with_mmdet_fallback, dispatch_mode
from ...validation import is_finite_real

__all__ = ['HierarchicalClassifier']

DATASET_KEY = 'dataset'  # prefix of the dataset head's losses; no group may use it


def _class_head(name: str, cfg: Any, in_channels: int) -> nn.Module:
    """Linear (or Linear-ReLU-Linear) classifier of one group, from ``cfg``."""
    if not isinstance(cfg, dict) or set(cfg) - {'num_classes', 'hidden_channels'}:
        raise TypeError(f'heads["{name}"] must be dict(num_classes=K, hidden_channels=None|int), '
                        f'but got {cfg!r}')
    k, hidden = cfg.get('num_classes'), cfg.get('hidden_channels')
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f'heads["{name}"].num_classes must be an int >= 1, but got {k!r}')
    if hidden is None:
        head = nn.Linear(in_channels, int(k))
    elif isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool) and hidden > 0:
        head = nn.Sequential(nn.Linear(in_channels, int(hidden)), nn.ReLU(inplace=True),
                             nn.Linear(int(hidden), int(k)))
    else:
        raise ValueError(f'heads["{name}"].hidden_channels must be None or an int >= 1, but '
                         f'got {hidden!r}')
    head.num_classes = int(k)
    return head


@MODELS.register_module()
class HierarchicalClassifier(MultiTaskLossMixin, MultiHeadMixin, DataMapRecording, BaseModel):
    """Shared backbone, a dataset classifier, and one class head per dataset (group).

    Every training sample carries ``group_name`` / ``group_id`` (from
    ``MultiSourceDataset``) and ``gt_label`` (LongTensor (1,), in its group's label space).

    Loss keys (the ``<group>.`` / ``dataset.`` prefixes are the task convention of loss
    weighting):

    - ``<group>.loss_cls`` = ``(1 - alpha) * sum_{i in group} CE_i / B``, so that the sum
      over groups is ``(1 - alpha)`` times the mean fine-class CE of the batch of B;
    - ``dataset.loss_dataset_cls`` = ``alpha * CE_dataset`` (mean over the batch);
    - ``dataset.acc_dataset_cls`` (in %, logged only).

    ``predict`` sets on every data sample:

    - ``pred_group_id`` (int), ``pred_group_name`` (str) and ``pred_group_score``
      (0-dim float tensor): the dataset head's argmax and its softmax probability;
      ``pred_group_scores`` (G,) is the whole softmax vector, in the order of ``heads``;
    - ``pred_label`` (LongTensor (1,)): argmax of the *predicted* group's head (the
      end-to-end prediction, in that group's label space);
    - ``pred_label_known`` (LongTensor (1,)): argmax of the sample's *known* group's head;
    - ``pred_score`` ((K_g,) float): softmax of the known group's head.

    A sample without ``group_name`` (plain inference) gets ``pred_label_known`` and
    ``pred_score`` of the predicted group instead.

    Group ids: the dataset head's class of a group is ``dataset_head.group_ids`` applied to
    the group's id. Ids come from the dataset's groups, which the model adopts from the
    samples it meets (``MultiSourceDataset`` puts them in every sample's metainfo) or from
    ``dataset_meta['group_name_to_id']``, and keeps in its checkpoint; before that, the id
    of a group is its position in ``heads`` (``MultiSourceDataset``'s
    default ids when its sources are listed in the same order). A training sample whose
    ``group_id`` disagrees is an error.

    Args:
        backbone (dict): Backbone config (any registered backbone of the current scope;
            an unprefixed type missing there is taken from mmdet, e.g. ``'ResNet'``).
        dataset_head (dict): :class:`DatasetClsHead` config. Its ``in_channels`` are the
            channels of the last feature level, which the class heads share; its
            ``loss_weight`` must be 1 (``alpha`` weights it here) and ``feat_index`` -1.
        heads (dict): Group name -> ``dict(num_classes=K, hidden_channels=None | int)``.
        neck (dict, optional): Neck config, applied before pooling. Defaults to None.
        alpha (float): Weight of the dataset loss, in [0, 1]. Defaults to 0.3.
        loss_weighting (dict, optional): Multi-task loss weighting over the tasks
            ``<group>`` (each class head) and ``dataset``, e.g.
            ``dict(type='UncertaintyWeighting')``; applied on top of ``alpha`` and logged
            as ``weight.<task>``. Defaults to None (the plain sum).
        data_preprocessor (dict, optional): Defaults to
            ``dict(type='ImgDataPreprocessor')``.
        init_cfg (dict | list[dict], optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 backbone: dict,
                 dataset_head: dict,
                 heads: Dict[str, dict],
                 neck: Optional[dict] = None,
                 alpha: float = 0.3,
                 loss_weighting: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor or dict(type='ImgDataPreprocessor'),
                         init_cfg=init_cfg)
        self.alpha = alpha
        self._check_heads(heads)
        self.backbone = build_with_mmdet_fallback(backbone)
        self.neck = build_with_mmdet_fallback(neck) if neck is not None else None
        self.dataset_head = self._build_dataset_head(dataset_head, len(heads))
        in_channels = self.dataset_head.level_channels[0]
        self.heads = ModuleDict(OrderedDict(
            (name, _class_head(name, cfg, in_channels)) for name, cfg in heads.items()))
        self.init_routing(None, None, None)
        self.init_loss_weighting(loss_weighting)  # last: it reads loss_task_names()

    # ------------------------------------------------------------------ construction
    @staticmethod
    def _check_heads(heads: Any) -> None:
        if not isinstance(heads, dict) or len(heads) < 2:
            raise TypeError('heads must be a dict of at least 2 groups, '
                            f'dict(<group>=dict(num_classes=K), ...), but got {heads!r}')
        for name in heads:
            if not isinstance(name, str) or not name.isidentifier() or name == DATASET_KEY:
                raise ValueError(f'head name {name!r} must be an identifier other than '
                                 f'"{DATASET_KEY}" (it prefixes loss keys as "<group>.loss_cls")')

    def loss_task_names(self) -> List[str]:
        """Tasks of the loss dict (its key prefixes): every group head, then ``dataset``."""
        return list(self.heads) + ['dataset']

    @staticmethod
    def _build_dataset_head(cfg: Any, num_heads: int) -> DatasetClsHead:
        if not isinstance(cfg, dict):
            raise TypeError(f'dataset_head must be a DatasetClsHead config dict, but got {cfg!r}')
        cfg = dict(copy.deepcopy(cfg))
        cfg.setdefault('type', 'DatasetClsHead')
        cfg.setdefault('loss_weight', 1.0)
        cfg.setdefault('num_groups', num_heads)
        if cfg['loss_weight'] != 1:
            raise ValueError(f'dataset_head.loss_weight must be 1 (alpha weights the dataset '
                             f'loss), but got {cfg["loss_weight"]!r}; set alpha instead')
        if cfg.get('feat_index', -1) != -1:
            raise ValueError('dataset_head.feat_index must be -1: the classifier pools the last '
                             f'feature level for all heads, but got {cfg["feat_index"]!r}')
        head = MODELS.build(cfg)
        if not isinstance(head, DatasetClsHead):
            raise TypeError(f'dataset_head must build a DatasetClsHead, but got '
                            f'{type(head).__name__}')
        if head.num_groups != num_heads:
            raise ValueError(f'dataset_head.num_groups={head.num_groups} must equal the number '
                             f'of heads ({num_heads}): one dataset class per group')
        return head

    # ------------------------------------------------------------------ settings
    @property
    def alpha(self) -> float:
        """Weight of the dataset loss in [0, 1] (may change between iterations)."""
        return self._alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        if not is_finite_real(value) or not 0.0 <= float(value) <= 1.0:
            raise ValueError(f'HierarchicalClassifier.alpha must be a number in [0, 1], but got '
                             f'{value!r}')
        self._alpha = float(value)

    @property
    def _group_name_to_id(self) -> Dict[str, int]:
        """Group name -> id: the dataset's once met, else the position in ``heads``."""
        ids = {n: i for i, n in enumerate(self.heads)}
        if self.groups is not None:
            ids.update({g: i for g, i in self.groups.to_dict().items() if g in self.heads})
        return ids

    def adopt(self, groups=None, label_space=None, group_num_keypoints=None) -> None:
        """See :meth:`MultiHeadMixin.adopt`; also checks the ids against the dataset head."""
        if groups:
            ids = {n: i for i, n in enumerate(self.heads)}
            ids.update({g: int(i) for g, i in groups.items() if g in self.heads})
            self._check_group_ids(ids)
        super().adopt(groups, label_space, group_num_keypoints)

    def _check_head_outputs(self, head: str, group: str, gmeta: dict, groups) -> None:
        classes = gmeta.get('classes')
        have = self.heads[head].num_classes
        if classes is not None and len(classes) != have:
            raise ValueError(f'heads["{group}"].num_classes is {have} but dataset "{group}" '
                             f'has {len(classes)} classes {tuple(classes)}; set '
                             f'heads["{group}"].num_classes={len(classes)}')

    def _check_group_ids(self, ids: Dict[str, int]) -> None:
        table = self.dataset_head.group_to_class
        classes = [table.get(ids[g]) for g in self.heads]
        if None in classes or len(set(classes)) != len(classes):
            raise ValueError(f'group ids {ids} must map one-to-one onto the dataset head\'s '
                             f'classes (dataset_head.group_ids: group id -> class {table})')

    def head_of(self, group: str) -> str:
        """The head of ``group`` (its own name); a clear error if it has none."""
        if group not in self.heads:
            raise KeyError(f'group "{group}" has no class head: add heads["{group}"]='
                           f'dict(num_classes=...); configured heads: {list(self.heads)}')
        return group

    def group_of_class(self, cls: int) -> str:
        """Group name of the dataset head's class ``cls``."""
        table = self.dataset_head.group_to_class
        ids = self._group_name_to_id
        for name in self.heads:
            if table.get(ids[name]) == cls:
                return name
        raise KeyError(f'dataset head class {cls} maps to no group of {ids}')

    # ------------------------------------------------------------------ forward
    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Pooled features (B, C) of images (B, 3, H, W): GAP of the last level."""
        x = self.backbone(inputs)
        if self.neck is not None:
            x = self.neck(x)
        last = x if isinstance(x, Tensor) else x[-1]  # (B, C, h, w)
        pooled = last.flatten(2).mean(-1) if last.dim() > 2 else last
        expected = self.dataset_head.level_channels[0]
        if pooled.shape[1] != expected:
            raise ValueError(f'the last feature level has {pooled.shape[1]} channels, but '
                             f'dataset_head.in_channels is {expected}: set it to '
                             f'{pooled.shape[1]} (the class heads use it too)')
        return pooled

    def forward(self, inputs: Tensor, data_samples: Optional[List[BaseDataElement]] = None,
                mode: str = 'tensor') -> Union[Dict[str, Tensor], list]:
        """``mode``: ``'loss'`` (dict of losses), ``'predict'`` (data samples) or
        ``'tensor'`` (raw logits, see :meth:`_forward`)."""
        return dispatch_mode(self, inputs, data_samples, mode)

    def _forward(self, inputs: Tensor,
                 data_samples: Optional[List[BaseDataElement]] = None) -> Dict[str, Tensor]:
        """Raw logits: ``dataset`` (B, G) and one (B, K_g) entry per group, in order."""
        pooled = self.extract_feat(inputs)
        out = OrderedDict(dataset=self.dataset_head(pooled))
        out.update((g, head(pooled)) for g, head in self.heads.items())
        return out

    # ------------------------------------------------------------------ training
    def _check_group_id(self, sample: BaseDataElement, group: str) -> None:
        gid = sample.metainfo.get('group_id')
        if gid is not None and int(gid) != self._group_name_to_id[group]:
            raise ValueError(f'sample of group "{group}" has group_id={int(gid)}, but the model '
                             f'maps the groups to ids {self._group_name_to_id}: list heads in the '
                             'order of the dataset\'s sources, or train on a MultiSourceDataset '
                             '(its samples carry the groups)')

    @staticmethod
    def _gt_label(sample: BaseDataElement, group: str, num_classes: int) -> int:
        label = sample.get('gt_label')
        if label is None:
            raise KeyError(f'a sample of group "{group}" has no gt_label: pack it with '
                           'PackClsInputs')
        label = int(label.reshape(-1)[0]) if isinstance(label, Tensor) else int(label)
        if not 0 <= label < num_classes:
            raise ValueError(f'gt_label {label} of a sample of group "{group}" is outside the '
                             f'{num_classes} classes of heads["{group}"]')
        return label

    def loss(self, inputs: Tensor, data_samples: List[BaseDataElement]) -> Dict[str, Tensor]:
        """Weighted per-group class losses and dataset loss of a batch.

        Args:
            inputs (Tensor): Images (B, 3, H, W).
            data_samples (list[BaseDataElement]): B samples with ``gt_label`` and groups.

        Returns:
            dict[str, Tensor]: ``<group>.loss_cls`` per group present in the batch,
            ``dataset.loss_dataset_cls`` and ``dataset.acc_dataset_cls``.
        """
        if self.dataset_head.loss_weight != 1:
            raise ValueError(f'dataset_head.loss_weight is {self.dataset_head.loss_weight}, but '
                             'must stay 1: schedule model.alpha instead')
        # check groups, ids and labels before running the backbone
        self.meet(data_samples)
        plan = OrderedDict()
        for group, idx in self.route(data_samples).items():
            head = self.heads[self.head_of(group)]
            for i in idx:
                self._check_group_id(data_samples[i], group)
            plan[group] = (idx, [self._gt_label(data_samples[i], group, head.num_classes)
                                 for i in idx])
        pooled = self.extract_feat(inputs)  # (B, C)
        batch = pooled.shape[0]
        losses: Dict[str, Tensor] = OrderedDict()
        p_gold = pooled.new_zeros(batch)  # (B,) softmax probability of the gold class
        correct = torch.zeros(batch, dtype=torch.bool, device=pooled.device)  # (B,)
        for group, (idx, labels) in plan.items():
            index = torch.as_tensor(idx, device=pooled.device)
            target = torch.as_tensor(labels, device=pooled.device)  # (B_g,)
            logits = self.heads[group](pooled.index_select(0, index))  # (B_g, K_g)
            ce_sum = F.cross_entropy(logits, target, reduction='sum')
            losses[f'{group}.loss_cls'] = (1.0 - self._alpha) * ce_sum / batch
            with torch.no_grad():
                p_gold[index] = logits.softmax(1).gather(1, target[:, None])[:, 0]
                correct[index] = logits.argmax(1) == target
        dataset = self.dataset_head.loss(pooled, data_samples)
        losses[f'{DATASET_KEY}.loss_dataset_cls'] = self._alpha * dataset['loss_dataset_cls']
        losses[f'{DATASET_KEY}.acc_dataset_cls'] = dataset['acc_dataset_cls']
        if self.data_map_recorder is not None:  # inside self.recording(...): DataMapHook
            self.data_map_recorder.record(
                data_samples, confidences=[p.detach().reshape(1) for p in p_gold],
                correct=[c.reshape(1) for c in correct])
        return losses

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict(self, inputs: Tensor,
                data_samples: Optional[List[BaseDataElement]] = None) -> List[BaseDataElement]:
        """Predict each image's dataset and its class (see the class docstring).

        Args:
            inputs (Tensor): Images (B, 3, H, W).
            data_samples (list[BaseDataElement], optional): The B samples; new ones are
                made when None.

        Returns:
            list[BaseDataElement]: The samples with the ``pred_*`` fields set.
        """
        self.meet(data_samples or [])
        logits = self._forward(inputs)
        batch = inputs.shape[0]
        if data_samples is None:
            data_samples = [BaseDataElement() for _ in range(batch)]
        group_probs = logits.pop(DATASET_KEY).softmax(1)  # (B, G)
        group_score, group_cls = group_probs.max(1)
        order = [self.dataset_head.group_to_class[self._group_name_to_id[g]] for g in self.heads]
        for i, sample in enumerate(data_samples):
            pred_group = self.group_of_class(int(group_cls[i]))
            meta = sample.metainfo
            known = self.head_of(meta['group_name']) if 'group_name' in meta else pred_group
            sample.pred_group_id = self._group_name_to_id[pred_group]
            sample.pred_group_name = pred_group
            sample.pred_group_score = group_score[i]
            sample.pred_group_scores = group_probs[i, order]
            sample.pred_label = logits[pred_group][i].argmax().reshape(1)
            sample.pred_label_known = logits[known][i].argmax().reshape(1)
            sample.pred_score = logits[known][i].softmax(0)
        return data_samples
