"""``DatasetClsHead``: an auxiliary head that classifies which dataset an image comes from.

Attach it to a multi-head model (``aux_head=dict(type='DatasetClsHead', ...)``): its
loss is added as ``aux.loss_dataset_cls`` (and ``aux.acc_dataset_cls`` is logged),
computed on the features of the whole batch.

- Without gradient reversal it is a plain multi-task auxiliary loss (the shared features
  learn what distinguishes the datasets).
- With ``gradient_reversal=True`` (DANN) the features reach the classifier through a
  :class:`GradientReversalLayer`: the classifier still learns to tell the datasets
  apart, but the backbone / neck receive ``-grl_lambda`` times its gradient, which
  pushes the shared features towards being dataset-invariant.

``loss_weight`` and ``grl_lambda`` are float attributes that may change between
iterations, e.g. with :class:`CurriculumLearningHook`::

    custom_hooks = [dict(type='CurriculumLearningHook', schedules=[
        dict(param='model.aux_head.loss_weight', milestones=[10], values=[0.4, 0.15]),
        dict(param='model.aux_head.grl_lambda', type='dann', by_epoch=False)])]
"""
from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor, nn

from ...groups import Groups, GroupKeyed
from ...validation import is_int, non_negative_property
from ..utils import build_with_mmdet_fallback
from .gradient_reversal import GradientReversal

__all__ = ['DatasetClsHead']

Feats = Union[Tensor, Sequence[Tensor]]


@MODELS.register_module()
class DatasetClsHead(BaseModule):
    """Predict each image's dataset (group) from globally pooled shared features.

    ``feats`` (a tuple of (B, C_l, H_l, W_l) maps, or one (B, C, H, W) tensor) ->
    global average pooling of level ``feat_index`` (or of every level, concatenated,
    for ``'all'``) -> (B, C_in) -> [gradient reversal] -> Linear(C_in, hidden) -> ReLU ->
    Linear(hidden, num_groups) -> (B, num_groups) logits.

    The target of a sample is its ``metainfo['group_id']`` (set by
    ``MultiSourceDataset``) mapped to a class index in ``[0, num_groups)``.

    Args:
        in_channels (int | Sequence[int]): Channels of the pooled level(s). With
            ``feat_index='all'``, the channels of every level in order (e.g. ``[256] * 5``
            for a 5-level FPN), or one int when all levels have that many channels (the
            number of levels is then given by ``num_levels``).
        num_groups (int): Number of dataset classes (>= 2).
        hidden_channels (int, optional): Width of the hidden layer; None for a single
            linear classifier. Defaults to 256.
        feat_index (int | str): Which feature map of the tuple to pool (Python index,
            -1 = the last / coarsest), or ``'all'`` to pool every level and concatenate.
            Defaults to -1.
        num_levels (int, optional): Number of levels for ``feat_index='all'`` with an int
            ``in_channels``. Defaults to None.
        loss_weight (float): Factor of the cross-entropy loss; finite, >= 0. Defaults to
            0.3.
        gradient_reversal (bool): Pass the pooled features through a gradient reversal
            (DANN) before the classifier. Defaults to False.
        grl_lambda (float): Reversal coefficient: the features get ``-grl_lambda`` times
            the classifier's gradient; finite, >= 0. Used only with
            ``gradient_reversal=True``. Defaults to 1.0.
        group_ids (Sequence[int] | dict, optional): Group -> class index. A sequence
            lists the group id of each class (class ``i`` is group ``group_ids[i]``;
            ``num_groups`` distinct ids); a dict maps groups (id, ``'1'`` == ``1``, or
            name) to class indices (several groups may share a class), resolved against
            the samples' ``metainfo['groups']`` (an unknown group is an
            ``UnknownGroupError``). Defaults to the group's position in the dataset
            (``Groups.index_of``) when the samples carry their dataset's groups and there
            are ``num_groups`` of them, else the identity (class ``i`` is group id ``i``).
        loss (dict, optional): Config of a classification loss called as
            ``loss(logits (B, K), targets (B,))`` and returning a scalar (e.g.
            ``dict(type='mmdet.CrossEntropyLoss')``). Defaults to None: mean
            ``torch.nn.functional.cross_entropy``.
        init_cfg (dict | list[dict], optional): Initialisation config. Defaults to None
            (PyTorch's default ``nn.Linear`` initialisation).
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 num_groups: int,
                 hidden_channels: Optional[int] = 256,
                 feat_index: Union[int, str] = -1,
                 num_levels: Optional[int] = None,
                 loss_weight: float = 0.3,
                 gradient_reversal: bool = False,
                 grl_lambda: float = 1.0,
                 group_ids: Optional[Union[Sequence[int], Dict[int, int]]] = None,
                 loss: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not is_int(num_groups) or num_groups < 2:
            raise ValueError(f'DatasetClsHead: num_groups must be an int >= 2 (a classifier '
                             f'over datasets), but got {num_groups!r}')
        if not (is_int(feat_index) or feat_index == 'all'):
            raise ValueError(f"DatasetClsHead: feat_index must be an int or 'all', but got "
                             f'{feat_index!r}')
        if hidden_channels is not None and (not is_int(hidden_channels) or hidden_channels < 1):
            raise ValueError(f'DatasetClsHead: hidden_channels must be a positive int or None, '
                             f'but got {hidden_channels!r}')
        if not isinstance(gradient_reversal, bool):
            raise TypeError(f'DatasetClsHead: gradient_reversal must be True or False, but got '
                            f'{gradient_reversal!r}')
        self.level_channels = self._check_channels(in_channels, feat_index, num_levels)
        self.in_channels = in_channels
        self.num_groups = int(num_groups)
        self.hidden_channels = hidden_channels
        self.feat_index = feat_index
        self.gradient_reversal = gradient_reversal
        self.loss_weight = loss_weight
        self.grl_lambda = grl_lambda
        self._by_position = group_ids is None
        self._group_keys = self._check_group_ids(group_ids, self.num_groups)
        self.group_to_class: Dict[int, int] = {
            g: c for g, c in self._group_keys.as_dict().items() if isinstance(g, int)}
        self._bound_groups: Optional[Groups] = None

        total = sum(self.level_channels)
        if hidden_channels is None:
            self.classifier = nn.Linear(total, self.num_groups)
        else:
            self.classifier = nn.Sequential(
                nn.Linear(total, hidden_channels), nn.ReLU(inplace=True),
                nn.Linear(hidden_channels, self.num_groups))
        self.loss_fn = build_with_mmdet_fallback(dict(loss)) if loss is not None else None

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check_channels(in_channels: Any, feat_index: Union[int, str],
                        num_levels: Optional[int]) -> Tuple[int, ...]:
        """Channels of each pooled level (one entry unless ``feat_index='all'``)."""
        if is_int(in_channels):
            channels: Tuple[int, ...] = (int(in_channels), )
        elif isinstance(in_channels, (list, tuple)) and in_channels and \
                all(is_int(c) for c in in_channels):
            channels = tuple(int(c) for c in in_channels)
        else:
            raise ValueError('DatasetClsHead: in_channels must be a positive int or a non-empty '
                             f'list of positive ints, but got {in_channels!r}')
        if any(c < 1 for c in channels):
            raise ValueError(f'DatasetClsHead: in_channels must be positive, but got '
                             f'{in_channels!r}')
        if feat_index == 'all':
            if is_int(in_channels):
                if not is_int(num_levels) or num_levels < 1:
                    raise ValueError(
                        "DatasetClsHead: feat_index='all' with an int in_channels needs "
                        f'num_levels (a positive int), but got num_levels={num_levels!r}; or '
                        'give in_channels as the list of every level\'s channels')
                channels = channels * int(num_levels)
            elif num_levels is not None and num_levels != len(channels):
                raise ValueError(f'DatasetClsHead: num_levels={num_levels!r} does not match the '
                                 f'{len(channels)} levels of in_channels={list(channels)}')
        elif len(channels) != 1:
            raise ValueError(f'DatasetClsHead: feat_index={feat_index!r} pools one level, so '
                             f'in_channels must be one int, but got {in_channels!r}; use '
                             "feat_index='all' to pool every level")
        return channels

    @staticmethod
    def _check_group_ids(group_ids: Any, num_groups: int) -> GroupKeyed:
        """Group (id or name) -> class index setting."""
        owner = 'DatasetClsHead'

        def check_class(c: Any, where: str, _: str) -> int:
            if not (is_int(c) and 0 <= c < num_groups):
                raise ValueError(f'{owner}: group_ids must map groups (ids or names) to class '
                                 f'indices in [0, {num_groups}), but got {where} = {c!r}')
            return int(c)

        if group_ids is None:
            return GroupKeyed({g: g for g in range(num_groups)}, 'group_ids', owner)
        if isinstance(group_ids, Mapping):
            table = GroupKeyed(group_ids, 'group_ids', owner, check_class)
            missing = sorted(set(range(num_groups)) - set(table.as_dict().values()))
            if missing:
                raise ValueError(f'{owner}: group_ids={dict(group_ids)} maps no group to the '
                                 f'class(es) {missing} of num_groups={num_groups}')
            return table
        if isinstance(group_ids, (list, tuple)):
            if len(group_ids) != num_groups or not all(is_int(g) for g in group_ids) or \
                    len(set(group_ids)) != len(group_ids):
                raise ValueError(f'{owner}: group_ids as a list gives the group id of each '
                                 f'of the num_groups={num_groups} classes ({num_groups} distinct '
                                 f'ints), but got {list(group_ids)!r}')
            return GroupKeyed({int(g): c for c, g in enumerate(group_ids)}, 'group_ids', owner)
        raise TypeError(f'{owner}: group_ids must be a list of group ids (one per class), '
                        f'a dict group -> class index, or None, but got {group_ids!r}')

    def bind_groups(self, groups: Groups) -> Dict[int, int]:
        """Group id -> class index for the dataset's groups (cached; see ``group_ids``).

        Raises:
            UnknownGroupError: For a ``group_ids`` key that names no group.
        """
        if groups != self._bound_groups:
            if self._by_position and len(groups) == self.num_groups:
                self.group_to_class = {gid: groups.index_of(gid) for gid in groups.ids}
            elif not self._by_position:
                self.group_to_class, _ = self._group_keys.bind(groups)
            self._bound_groups = groups
        return self.group_to_class

    # ------------------------------------------------------------------ schedulable values
    loss_weight = non_negative_property(
        'loss_weight', 'DatasetClsHead.loss_weight',
        'Factor of the loss (float; may be changed between iterations).')
    grl_lambda = non_negative_property(
        'grl_lambda', 'DatasetClsHead.grl_lambda',
        'Gradient reversal coefficient (float; may be changed between iterations).')

    # ------------------------------------------------------------------ forward
    def pool(self, feats: Feats) -> Tensor:
        """Globally average-pooled features (B, C_in) of the selected level(s)."""
        levels = [feats] if isinstance(feats, Tensor) else list(feats)
        if not levels:
            raise ValueError('DatasetClsHead: got an empty tuple of features')
        if self.feat_index != 'all':
            try:
                levels = [levels[self.feat_index]]
            except IndexError:
                raise IndexError(f'DatasetClsHead: feat_index={self.feat_index} is out of range '
                                 f'for {len(levels)} feature level(s)') from None
        # each level (B, C_l, H_l, W_l) -> (B, C_l); any trailing spatial dims are averaged
        pooled = [f.flatten(2).mean(-1) if f.dim() > 2 else f for f in levels]
        got = tuple(p.shape[1] for p in pooled)
        if got != self.level_channels:
            raise ValueError(f'DatasetClsHead: expected features with channels '
                             f'{list(self.level_channels)} (feat_index={self.feat_index!r}), but '
                             f'got {list(got)}; check in_channels')
        return torch.cat(pooled, dim=1) if len(pooled) > 1 else pooled[0]

    def forward(self, feats: Feats) -> Tensor:
        """Dataset logits (B, num_groups) of backbone / neck features."""
        x = self.pool(feats)  # (B, C_in)
        if self.gradient_reversal:
            x = GradientReversal.apply(x, self._grl_lambda)
        return self.classifier(x)

    def targets(self, data_samples: Sequence) -> List[int]:
        """Class index of each sample's ``metainfo['group_id']``."""
        out = []
        for i, sample in enumerate(data_samples):
            meta = sample if isinstance(sample, Mapping) else sample.metainfo
            if meta.get('groups'):
                self.bind_groups(Groups.from_dict(meta['groups']))
            elif not self._by_position and len(self.group_to_class) < len(self._group_keys):
                names = [k for k in self._group_keys.as_dict() if not isinstance(k, int)]
                raise KeyError(f'DatasetClsHead: group_ids names groups {names}, but data '
                               f"sample {i} has no metainfo['groups'] to resolve them; key "
                               'group_ids by id or use MultiSourceDataset')
            if 'group_id' not in meta:
                raise KeyError(f'DatasetClsHead: data sample {i} has no "group_id" in its '
                               'metainfo: wrap the dataset in MultiSourceDataset; got metainfo '
                               f'keys {sorted(meta)}')
            group_id = meta['group_id']
            group_id = int(group_id) if is_int(group_id) or (
                isinstance(group_id, Tensor) and group_id.numel() == 1) else group_id
            if group_id not in self.group_to_class:
                raise ValueError(f'DatasetClsHead: data sample {i} has group_id={group_id!r} '
                                 f'(group {meta.get("group_name")!r}), which is not one of the '
                                 f'known group ids {sorted(self.group_to_class)}; set num_groups '
                                 'or group_ids to cover every group')
            out.append(self.group_to_class[group_id])
        return out

    def loss(self, feats: Feats, data_samples: Sequence) -> Dict[str, Tensor]:
        """Weighted dataset-classification loss and accuracy of a batch.

        Args:
            feats (Tensor | Sequence[Tensor]): Features, (B, C, H, W) per level.
            data_samples (Sequence): The B data samples (``metainfo['group_id']``).

        Returns:
            dict[str, Tensor]: ``loss_dataset_cls`` (scalar, ``loss_weight * CE``) and
            ``acc_dataset_cls`` (scalar, detached, in %).
        """
        logits = self(feats)  # (B, K)
        if len(data_samples) != logits.shape[0]:
            raise ValueError(f'DatasetClsHead: {logits.shape[0]} feature rows but '
                             f'{len(data_samples)} data samples')
        target = torch.as_tensor(self.targets(data_samples), dtype=torch.long,
                                 device=logits.device)  # (B,)
        if self.loss_fn is None:
            ce = F.cross_entropy(logits, target)
        else:
            ce = self.loss_fn(logits, target)
        with torch.no_grad():
            acc = (logits.argmax(dim=1) == target).float().mean() * 100.0
        return dict(loss_dataset_cls=ce * self._loss_weight, acc_dataset_cls=acc.detach())

    @torch.no_grad()
    def predict(self, feats: Feats) -> Tensor:
        """Dataset probabilities (B, num_groups) (softmax of the logits)."""
        return self(feats).softmax(dim=1)
