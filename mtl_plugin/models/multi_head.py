"""What every multi-head model shares: head checks, routing, label spaces, isolation info.

Used by ``MultiHeadDetector`` and ``MultiHeadPoseEstimator``; the batch splitting itself
lives in :mod:`mtl_plugin.routing`.
"""
import copy
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Set

import torch
from mmengine.registry import MODELS
from torch import Tensor, nn

from ..labels import LabelSpace
from ..routing import get_group_name


class MultiHeadMixin:
    """Routing and label-space bookkeeping for models with one head per group.

    Subclasses build ``self.heads`` (an ``nn.ModuleDict``) and call
    :meth:`init_routing`. Setting ``model.dataset_meta`` (done by
    :class:`HeadIsolationHook` before training / testing, and by mmdet's
    ``init_detector`` from a checkpoint) validates the heads against the dataset's groups.
    """

    heads: nn.ModuleDict

    # ------------------------------------------------------------------ build-time checks
    @staticmethod
    def check_heads_cfg(heads: Dict[str, dict]) -> None:
        """Raise a clear error for an empty / malformed ``heads`` dict."""
        if not isinstance(heads, dict) or not heads:
            raise TypeError('heads must be a non-empty dict(<head name>=<head cfg>, ...), '
                            f'but got {heads!r}')
        for name, cfg in heads.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f'head name {name!r} must be an identifier (it prefixes loss '
                                 'keys as "<head>.loss_cls")')
            if not isinstance(cfg, dict) or 'type' not in cfg:
                raise TypeError(f'heads["{name}"] must be a config dict with a "type", '
                                f'but got {cfg!r}')

    @staticmethod
    def build_head(name: str, cfg: dict) -> nn.Module:
        """Build one head, naming it in the error if its type is unknown."""
        try:
            return MODELS.build(cfg)
        except KeyError as err:
            if 'registry' in str(err):
                raise KeyError(f'heads["{name}"]: type {cfg["type"]!r} is not a registered '
                               'model in the current scope; check the spelling, or give the '
                               "scope explicitly (e.g. 'mmdet.RetinaHead')") from err
            raise

    def init_routing(self, group_to_head: Optional[Dict[str, str]],
                     head_classes: Optional[Dict[str, Sequence[str]]],
                     unified_classes: Optional[Sequence[str]]) -> None:
        """Store the routing settings; label spaces are built once groups are known."""
        heads = list(self.heads)
        if group_to_head is not None:
            bad = {g: h for g, h in group_to_head.items() if h not in heads}
            if bad:
                raise KeyError(f'group_to_head maps groups to unknown heads {bad}; heads: '
                               f'{heads}')
        if head_classes is not None:
            unknown = set(head_classes) - set(heads)
            if unknown:
                raise KeyError(f'head_classes names unknown heads {sorted(unknown)}; heads: '
                               f'{heads}')
        self.group_to_head = dict(group_to_head) if group_to_head else None
        self._explicit_head_classes = dict(head_classes) if head_classes else None
        self._unified_classes = tuple(unified_classes) if unified_classes else None
        self._group_classes: Dict[str, tuple] = {}
        self._space: Optional[LabelSpace] = None
        self._active_heads: Set[str] = set()
        self._dataset_meta: Optional[dict] = None

    # ------------------------------------------------------------------ groups and heads
    def head_of(self, group: str) -> str:
        """The head that trains on ``group``."""
        if self.group_to_head is not None:
            if group not in self.group_to_head:
                raise KeyError(f'group "{group}" has no head: add it to group_to_head '
                               f'(now {self.group_to_head})')
            return self.group_to_head[group]
        if group not in self.heads:
            raise KeyError(f'group "{group}" has no head: add heads["{group}"] or map it with '
                           f'group_to_head; heads: {list(self.heads)}')
        return group

    def groups_of_head(self, head: str) -> List[str]:
        """Groups routed to ``head`` (known groups, or the mapping's / the head's name)."""
        if self._group_classes:
            return [g for g in self._group_classes if self.head_of(g) == head]
        if self.group_to_head is not None:
            return [g for g, h in self.group_to_head.items() if h == head]
        return [head]

    def route(self, data_samples: Sequence) -> 'OrderedDict[str, List[int]]':
        """Head name -> positions of its samples; records the heads that ran."""
        plan: 'OrderedDict[str, List[int]]' = OrderedDict()
        for i, sample in enumerate(data_samples):
            plan.setdefault(self.head_of(get_group_name(sample)), []).append(i)
        if self.training:
            self._active_heads.update(plan)
        return plan

    def head_modules(self) -> Dict[str, nn.Module]:
        """Head name -> module, for :class:`HeadIsolationHook`."""
        return dict(self.heads.items())

    def consume_active_heads(self) -> Set[str]:
        """Heads that ran a training forward since the last call (then forgets them)."""
        active, self._active_heads = self._active_heads, set()
        return active

    # ------------------------------------------------------------------ label spaces
    def head_num_outputs(self, head: nn.Module) -> Optional[int]:
        """Number of classes a head predicts (override for other kinds of heads)."""
        for obj in (head, getattr(head, 'bbox_head', None)):
            if obj is not None and hasattr(obj, 'num_classes'):
                return int(obj.num_classes)
        return None

    def group_num_outputs(self, group_meta: dict) -> Optional[int]:
        """Number of outputs a group's head needs (classes; override for keypoints)."""
        classes = group_meta.get('classes')
        return None if classes is None else len(classes)

    @property
    def dataset_meta(self) -> Optional[dict]:
        """Meta of the dataset the model serves; setting it validates heads vs groups."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, meta: Optional[dict]) -> None:
        self._dataset_meta = copy.deepcopy(meta)
        group_meta = (meta or {}).get('group_metainfo') or {}
        self._group_classes = {g: tuple(m.get('classes') or ()) for g, m in group_meta.items()}
        for group, gmeta in group_meta.items():
            head = self.head_of(group)  # raises for a group with no head
            need, have = self.group_num_outputs(gmeta), self.head_num_outputs(self.heads[head])
            if need is not None and have is not None and len(self.groups_of_head(head)) == 1 \
                    and need != have:
                raise ValueError(f'head "{head}" predicts {have} outputs but its dataset '
                                 f'"{group}" has {need} ({gmeta.get("classes")}); set '
                                 f'heads["{head}"].num_classes / out_channels to {need}')
        self._space = None

    def head_classes(self) -> Dict[str, tuple]:
        """Head name -> its class names (explicit, from its groups, or placeholders)."""
        out = {}
        for name, head in self.heads.items():
            if self._explicit_head_classes and name in self._explicit_head_classes:
                out[name] = tuple(self._explicit_head_classes[name])
                continue
            groups = [g for g in self.groups_of_head(name) if self._group_classes.get(g)]
            if groups:
                out[name] = tuple(OrderedDict.fromkeys(
                    c for g in groups for c in self._group_classes[g]))
            else:
                out[name] = tuple(f'{name}:{i}' for i in range(self.head_num_outputs(head) or 0))
        for name, classes in out.items():
            n = self.head_num_outputs(self.heads[name])
            if n is not None and classes and len(classes) != n:
                raise ValueError(f'head "{name}" predicts {n} classes but has {len(classes)} '
                                 f'class names {classes}; make num_classes match')
        return out

    @property
    def label_space(self) -> LabelSpace:
        """Heads' label spaces mapped into the unified one (built lazily)."""
        if self._space is None:
            unified = self._unified_classes
            if unified is None and self._dataset_meta and self._group_classes:
                unified = self._dataset_meta.get('classes')
            self._space = LabelSpace(self.head_classes(), unified)
        return self._space

    def head_to_unified(self, head: str, labels: Tensor) -> Tensor:
        """Map a head's labels (N,) into the unified label space (N,)."""
        return self.label_space.to_unified(head, labels)

    def group_to_head_labels(self, group: str, head: str) -> Optional[Tensor]:
        """Table group label -> head label, or None when the two spaces are the same."""
        head_classes = self.label_space.group_classes[head]
        group_classes = self._group_classes.get(group)
        if not group_classes or tuple(group_classes) == head_classes:
            return None
        index = {c: i for i, c in enumerate(head_classes)}
        missing = [c for c in group_classes if c not in index]
        if missing:
            raise ValueError(f'classes {missing} of group "{group}" are not predicted by head '
                             f'"{head}" (classes {head_classes})')
        return torch.tensor([index[c] for c in group_classes], dtype=torch.long)

    def annotated_mask(self, head: str, group: str) -> Tensor:
        """(C_head,) bool: which of the head's classes the group annotates."""
        head_classes = self.label_space.group_classes[head]
        group_classes = set(self._group_classes.get(group) or head_classes)
        return torch.tensor([c in group_classes for c in head_classes], dtype=torch.bool)
