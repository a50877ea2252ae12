"""What every multi-head model shares: head checks, routing, label spaces, isolation info.

Used by ``MultiHeadDetector`` and ``MultiHeadPoseEstimator``; the batch splitting itself
lives in :mod:`mtl_plugin.routing`, label spaces in :mod:`mtl_plugin.labels`.

The model owns what it needs to be correct. Its groups and label spaces come from its
config (``head_classes``, ``unified_classes``, ``class_mapping``), from its checkpoint
(they are the module's extra state, so they travel in every ``state_dict``), and from
what it meets: every sample of a ``MultiSourceDataset`` carries the dataset's
``groups`` and serialised ``label_space`` in its metainfo, and ``dataset_meta``
(set by mmdet's ``init_detector`` / ``DetInferencer`` from a checkpoint's meta) carries
the same. The heads-vs-groups checks run the first time the model meets them, in
training, validation, testing or inference, whatever hooks are configured.
"""
import copy
import json
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set

import torch
from mmengine.registry import MODELS
from torch import Tensor, nn

from ..groups import Groups
from ..labels import LabelSpace
from ..routing import get_group_name


class MultiHeadMixin:
    """Routing and label-space bookkeeping for models with one head per group.

    Subclasses build ``self.heads`` (an ``nn.ModuleDict``), call :meth:`init_routing`,
    and call :meth:`meet` with the data samples at the start of ``loss`` / ``predict``.
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
                     unified_classes: Optional[Sequence[str]],
                     class_mapping: Optional[Dict[str, Dict[str, str]]] = None) -> None:
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
        self._class_mapping = ({g: dict(m) for g, m in class_mapping.items()}
                               if class_mapping else None)
        self._group_classes: Dict[str, tuple] = {}
        self._groups: Optional[Groups] = None
        self._met: Dict[str, Any] = {}  # what the model last adopted from data / meta
        self._space: Optional[LabelSpace] = None
        self._known_unified: Optional[tuple] = None  # last unified classes over every head
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
        """Meta of the dataset the model serves; setting it adopts its groups and label
        spaces and validates the heads against them (mmdet's ``init_detector`` and
        ``DetInferencer`` set it from a checkpoint's meta)."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, meta: Optional[dict]) -> None:
        self._dataset_meta = copy.deepcopy(meta)
        meta = meta or {}
        group_meta = meta.get('group_metainfo') or {}
        space = meta.get('label_spaces')
        if space is None and group_meta and all(m.get('classes') for m in group_meta.values()):
            space = dict(group_classes={g: list(m['classes']) for g, m in group_meta.items()},
                         unified_classes=list(meta.get('unified_classes') or meta.get(
                             'classes') or []) or None)
        sizes = {g: m['num_keypoints'] for g, m in group_meta.items() if 'num_keypoints' in m}
        self.adopt(groups=meta.get('group_name_to_id'), label_space=space,
                   group_num_keypoints=sizes or None)

    def meet(self, data_samples: Sequence) -> None:
        """Adopt the groups / label space that the samples carry, when they are new.

        Every sample of a ``MultiSourceDataset`` carries ``groups``, ``label_space`` and
        (pose) ``group_num_keypoints`` in its metainfo; samples without them (a plain
        test set, an inferencer) leave the model as it is.
        """
        if not data_samples:
            return
        first = data_samples[0]
        meta = first if isinstance(first, Mapping) else first.metainfo
        seen = {k: meta.get(k) for k in ('groups', 'label_space', 'group_num_keypoints')}
        if any(v is not None for v in seen.values()) and seen != self._met:
            self.adopt(seen['groups'], seen['label_space'], seen['group_num_keypoints'])

    def adopt(self, groups: Optional[Mapping[str, int]] = None,
              label_space: Optional[Mapping[str, Any]] = None,
              group_num_keypoints: Optional[Mapping[str, int]] = None) -> None:
        """Take a dataset's groups and label spaces, checking the heads against them.

        Args:
            groups (Mapping[str, int], optional): The dataset's ``{name: id}``.
            label_space (Mapping, optional): A serialised :class:`LabelSpace`
                (``group_classes``, ``unified_classes``, ``class_mapping``).
            group_num_keypoints (Mapping[str, int], optional): Keypoints per group.

        Raises:
            KeyError: A group with no head.
            ValueError: A head whose number of outputs disagrees with its dataset.
        """
        if not (groups or label_space or group_num_keypoints):
            return  # nothing to adopt (a plain dataset's meta): keep what the model knows
        space = dict(label_space) if label_space else {}
        group_classes = {g: tuple(c) for g, c in (space.get('group_classes') or {}).items()}
        names = list(OrderedDict.fromkeys([*(groups or {}), *group_classes,
                                           *(group_num_keypoints or {})]))
        for group in names:
            head = self.head_of(group)  # raises for a group with no head
            gmeta: Dict[str, Any] = {}
            if group in group_classes:
                gmeta['classes'] = group_classes[group]
            if group_num_keypoints and group in group_num_keypoints:
                gmeta['num_keypoints'] = group_num_keypoints[group]
            self._check_head_outputs(head, group, gmeta, names)
        if groups:
            self._groups = Groups.from_dict(groups)
        self._group_classes.update(group_classes)
        self._met = copy.deepcopy(dict(groups=dict(groups) if groups else None,
                                       label_space=dict(label_space) if label_space else None,
                                       group_num_keypoints=dict(group_num_keypoints)
                                       if group_num_keypoints else None))
        self._space = None

    def _check_head_outputs(self, head: str, group: str, gmeta: dict,
                            groups: Sequence[str]) -> None:
        need, have = self.group_num_outputs(gmeta), self.head_num_outputs(self.heads[head])
        sharing = [g for g in groups if self.head_of(g) == head]
        if need is not None and have is not None and len(sharing) == 1 and need != have:
            raise ValueError(f'head "{head}" predicts {have} outputs but its dataset '
                             f'"{group}" has {need} ({gmeta.get("classes")}); set '
                             f'heads["{head}"].num_classes / out_channels to {need}')

    @property
    def groups(self) -> Optional[Groups]:
        """The groups the model was trained / evaluated on (None before it met any)."""
        return self._groups

    # the model's own record of groups and label spaces: part of every state_dict
    # (a uint8 tensor of JSON, so that state-dict consumers see tensors only)
    def get_extra_state(self) -> Tensor:
        """Groups and label spaces the model adopted, as a uint8 tensor of JSON."""
        state = dict(version=1, met=self._met, group_classes={
            g: list(c) for g, c in self._group_classes.items()},
            unified_classes=list(self._known_unified) if self._known_unified else None)
        return torch.tensor(list(json.dumps(state).encode()), dtype=torch.uint8)

    def set_extra_state(self, state: Any) -> None:
        """Restore what :meth:`get_extra_state` saved (and re-check the heads)."""
        if isinstance(state, Tensor):
            state = json.loads(bytes(state.tolist()).decode())
        if not isinstance(state, Mapping) or state.get('version') != 1:
            return  # not ours (or from a future version): keep what the model has
        met = state.get('met') or {}
        if any(met.get(k) for k in ('groups', 'label_space', 'group_num_keypoints')):
            self.adopt(met.get('groups'), met.get('label_space'), met.get('group_num_keypoints'))
        self._group_classes.update({g: tuple(c) for g, c in
                                    (state.get('group_classes') or {}).items()})
        if state.get('unified_classes'):
            self._known_unified = tuple(state['unified_classes'])
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

    def heads_without_classes(self) -> List[str]:
        """Heads whose class names nobody gave: not the config (``head_classes``), nor the
        checkpoint, nor the data the model met (their names would be placeholders)."""
        explicit = self._explicit_head_classes or {}
        return [h for h in self.heads if h not in explicit and not any(
            self._group_classes.get(g) for g in self.groups_of_head(h))]

    @property
    def label_space(self) -> LabelSpace:
        """Heads' label spaces mapped into the unified one (built lazily)."""
        if self._space is None:
            heads = self.head_classes()
            met = self._met.get('label_space') or {}
            mapping = self._class_mapping if self._class_mapping is not None else {
                g: m for g, m in (met.get('class_mapping') or {}).items() if g in heads}
            mapping = self._head_class_mapping(mapping)
            unified = self._unified_classes or met.get('unified_classes')
            try:
                self._space = LabelSpace(heads, unified, mapping)
            except ValueError:
                if self._unified_classes:  # the user's unified classes must cover the heads
                    raise
                self._space = self._partial_space(heads, unified, mapping)
            self._known_unified = self._space.unified_classes
        return self._space

    def _partial_space(self, heads: Dict[str, tuple], met_unified: Optional[Sequence[str]],
                       mapping: Dict[str, Dict[str, str]]) -> LabelSpace:
        """The label space when the dataset met covers only some heads: the unified
        classes the model had (checkpoint), else the dataset's then the others' classes."""
        if self._known_unified:
            try:
                return LabelSpace(heads, self._known_unified, mapping)
            except ValueError:
                pass  # the heads changed since
        union = LabelSpace(heads, None, mapping).unified_classes
        first = [c for c in met_unified or () if c in union]
        return LabelSpace(heads, first + [c for c in union if c not in first], mapping)

    def _head_class_mapping(self, mapping: Mapping[str, Mapping[str, str]]
                            ) -> Dict[str, Dict[str, str]]:
        """A per-group ``class_mapping`` as per-head (a head takes its groups' renames)."""
        out: Dict[str, Dict[str, str]] = {}
        for key, renames in mapping.items():
            head = key if key in self.heads else self.head_of(key)
            out.setdefault(head, {}).update(renames)
        return out

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
