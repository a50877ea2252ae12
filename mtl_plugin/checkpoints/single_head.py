"""Checkpoints in: one head (+ the shared backbone / neck) of a multi-head model from a stock
single-head mmdet / mmpose checkpoint.

A person RetinaNet the user already has holds ``backbone.*``, ``neck.*`` and
``bbox_head.*``; a top-down mmpose model ``backbone.*`` and ``head.*``; a two-stage
detector ``rpn_head.*`` and ``roi_head.*``. :func:`load_single_head` copies the head's
tensors into ``heads.<head>.*`` and the shared parts into the same names, after checking
that every key exists on both sides with the same shape (the error names the keys).

From a config, the whole model in one line (runs in ``model.init_weights()``, which the
``Runner`` calls before training)::

    model = dict(type='MultiHeadDetector', ...,
                 init_cfg=dict(type='SingleHeadPretrained', checkpoint='person_retina.pth',
                               head='person'))

MMEngine's own ``dict(type='Pretrained', checkpoint=..., prefix='bbox_head.')`` on
``heads.person`` (and ``prefix='backbone.'`` / ``'neck.'`` on those) loads the same
tensors, but only warns about missing keys and shape mismatches.
"""
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from mmengine.model.weight_init import update_init_info
from mmengine.registry import WEIGHT_INITIALIZERS
from mmengine.runner import CheckpointLoader
from torch import Tensor, nn

__all__ = ['SingleHeadPretrained', 'SingleHeadMismatchError', 'load_single_head',
           'single_head_key_map']

#: prefix of the head in the stock single-head models
STOCK_HEAD_PREFIXES = ('bbox_head', 'roi_head', 'head')
#: at most this many keys are listed per kind of problem in an error
MAX_LISTED = 8


class SingleHeadMismatchError(KeyError, ValueError):
    """A single-head checkpoint does not fit the multi-head model (keys or shapes)."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ''


def _state_dict(checkpoint: Union[str, Mapping[str, Any]],
                map_location: str = 'cpu') -> Dict[str, Tensor]:
    """The state dict of a checkpoint path / URL, checkpoint dict or state dict."""
    if isinstance(checkpoint, str):
        checkpoint = CheckpointLoader.load_checkpoint(checkpoint, map_location=map_location)
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f'checkpoint must be a path, a checkpoint dict or a state dict, but '
                        f'got {type(checkpoint).__name__}')
    state = checkpoint.get('state_dict', checkpoint)
    # a DDP-wrapped model's keys start with "module."
    return {k[len('module.'):] if k.startswith('module.') else k: v
            for k, v in state.items() if isinstance(v, Tensor)}


def _stock_head_prefix(state: Mapping[str, Tensor], head_prefix: Optional[str]) -> str:
    if head_prefix is not None:
        prefix = head_prefix.rstrip('.')
        if not any(k.startswith(prefix + '.') for k in state):
            raise SingleHeadMismatchError(
                f'head_prefix={head_prefix!r}: the checkpoint has no key "{prefix}.*"; its '
                f'top-level names are {sorted({k.split(".")[0] for k in state})}')
        return prefix
    found = [p for p in STOCK_HEAD_PREFIXES if any(k.startswith(p + '.') for k in state)]
    if len(found) != 1:
        raise SingleHeadMismatchError(
            f'cannot tell the head of the checkpoint: expected exactly one of '
            f'{list(STOCK_HEAD_PREFIXES)} but found {found} among its top-level names '
            f'{sorted({k.split(".")[0] for k in state})}; pass head_prefix=...')
    return found[0]


def _default_parts(model: nn.Module, state: Mapping[str, Tensor]) -> Tuple[str, ...]:
    """The shared modules the model has and the checkpoint holds."""
    return tuple(p for p in ('backbone', 'neck', 'rpn_head')
                 if getattr(model, p, None) is not None
                 and any(k.startswith(p + '.') for k in state))


def single_head_key_map(model: nn.Module, head: str, state: Mapping[str, Tensor],
                        parts: Optional[Sequence[str]] = None,
                        head_prefix: Optional[str] = None) -> Dict[str, str]:
    """Stock prefix -> multi-head prefix, for the head and the shared parts.

    Args:
        model (nn.Module): A ``MultiHeadDetector`` / ``MultiHeadPoseEstimator``.
        head (str): The head to initialise (a key of ``model.heads``).
        state (Mapping[str, Tensor]): The single-head state dict.
        parts (Sequence[str], optional): Shared modules to take from the checkpoint too
            (``'backbone'``, ``'neck'``, ``'rpn_head'``). Defaults to those of them that
            the model has and the checkpoint holds.
        head_prefix (str, optional): The head's name in the checkpoint. Defaults to the
            one of ``bbox_head`` / ``roi_head`` / ``head`` it holds.

    Returns:
        dict[str, str]: e.g. ``{'bbox_head': 'heads.person', 'backbone': 'backbone'}``.
    """
    heads = getattr(model, 'heads', None)
    if not isinstance(heads, nn.ModuleDict):
        raise TypeError(f'load_single_head needs a multi-head model (with .heads), but got '
                        f'{type(model).__name__}')
    if head not in heads:
        raise KeyError(f'head={head!r} is not a head of the model; heads: {list(heads)}')
    mapping = {_stock_head_prefix(state, head_prefix): f'heads.{head}'}
    for part in _default_parts(model, state) if parts is None else parts:
        module = getattr(model, part, None)
        if module is None:
            raise KeyError(f'parts: the model has no {part!r} to initialise (it is None or '
                           f'absent); drop it from parts={list(parts)}')
        if part == 'neck' and hasattr(module, 'tasks'):  # SoftParameterSharing
            raise TypeError('parts: a per-head (SoftParameterSharing) neck cannot take one '
                            "stock neck; drop 'neck' from parts")
        mapping[part] = part
    return mapping


def _listed(keys: Sequence[str]) -> str:
    keys = sorted(keys)
    more = f' (and {len(keys) - MAX_LISTED} more)' if len(keys) > MAX_LISTED else ''
    return ', '.join(keys[:MAX_LISTED]) + more


def _check_part(src: str, dst: str, source: Dict[str, Tensor],
                target: Dict[str, Tensor]) -> None:
    """Raise naming every key missing on either side or of another shape."""
    missing = [f'{src}.{k}' for k in target if k not in source]
    unexpected = [f'{src}.{k}' for k in source if k not in target]
    shapes = [f'{src}.{k} {tuple(v.shape)} -> {dst}.{k} {tuple(target[k].shape)}'
              for k, v in source.items() if k in target and v.shape != target[k].shape]
    problems = []
    if shapes:
        problems.append(f'shape mismatches: {_listed(shapes)}')
    if missing:
        problems.append(f'missing in the checkpoint: {_listed(missing)}')
    if unexpected:
        problems.append(f'not in the model: {_listed(unexpected)}')
    if problems:
        raise SingleHeadMismatchError(
            f'"{src}.*" of the checkpoint does not fit "{dst}.*" of the model: '
            + '; '.join(problems) + f'. Configure {dst} as the checkpoint\'s {src} '
            '(same type, num_classes / out_channels, channels and layers)')


def load_single_head(model: nn.Module, checkpoint: Union[str, Mapping[str, Any]],
                     head: str, parts: Optional[Sequence[str]] = None,
                     head_prefix: Optional[str] = None,
                     map_location: str = 'cpu') -> Dict[str, int]:
    """Initialise one head and the shared parts from a stock single-head checkpoint.

    The other heads (and everything not named) are left as they are. Every tensor is
    copied bit for bit; nothing is loaded unless every part fits.

    Args:
        model (nn.Module): A ``MultiHeadDetector`` / ``MultiHeadPoseEstimator``.
        checkpoint (str | Mapping): Path / URL of an mmdet / mmpose checkpoint, or its
            loaded dict, or a state dict.
        head (str): The head to initialise, e.g. ``'person'``.
        parts (Sequence[str], optional): Shared modules to initialise too
            (``'backbone'``, ``'neck'``, ``'rpn_head'``). Defaults to those of them that
            the model has and the checkpoint holds; ``()`` for the head alone.
        head_prefix (str, optional): The head's name in the checkpoint. Defaults to the
            one of ``bbox_head`` / ``roi_head`` / ``head`` it holds.
        map_location (str): Where to load the tensors. Defaults to ``'cpu'``.

    Returns:
        dict[str, int]: Model prefix -> number of tensors loaded into it.

    Raises:
        SingleHeadMismatchError: A key missing on either side or of another shape (all
            named in the message).
    """
    state = _state_dict(checkpoint, map_location)
    mapping = single_head_key_map(model, head, state, parts, head_prefix)
    plan: Dict[str, Tuple[nn.Module, Dict[str, Tensor]]] = {}
    for src, dst in mapping.items():
        module = model.get_submodule(dst)
        source = {k[len(src) + 1:]: v for k, v in state.items() if k.startswith(src + '.')}
        _check_part(src, dst, source, module.state_dict())
        plan[dst] = (module, source)
    for module, source in plan.values():
        module.load_state_dict(source, strict=True)
    return {dst: len(source) for dst, (_, source) in plan.items()}


@WEIGHT_INITIALIZERS.register_module()
class SingleHeadPretrained:
    """``init_cfg`` of a multi-head model: one head + backbone / neck from a stock
    single-head checkpoint (see :func:`load_single_head`).

    Set on the model itself (``model.init_cfg``). The loaded modules are marked
    initialised, so that the children's own ``init_weights`` (which MMEngine runs after a
    non-``Pretrained`` init) does not overwrite them; the other heads get their own init.

    Args:
        checkpoint (str): Path / URL of the single-head checkpoint.
        head (str): The head to initialise.
        parts (Sequence[str], optional): Shared modules to initialise too. Defaults to
            those of ``backbone`` / ``neck`` / ``rpn_head`` the model has and the
            checkpoint holds.
        head_prefix (str, optional): The head's name in the checkpoint. Defaults to the
            one of ``bbox_head`` / ``roi_head`` / ``head`` it holds.
        map_location (str): Defaults to ``'cpu'``.
    """

    def __init__(self, checkpoint: str, head: str, parts: Optional[Sequence[str]] = None,
                 head_prefix: Optional[str] = None, map_location: str = 'cpu') -> None:
        if not isinstance(checkpoint, str) or not checkpoint:
            raise TypeError(f'SingleHeadPretrained: checkpoint must be a path or URL, but got '
                            f'{checkpoint!r}')
        if not isinstance(head, str) or not head:
            raise TypeError(f'SingleHeadPretrained: head must be a head name, but got {head!r}')
        if parts is not None and (isinstance(parts, str)
                                  or not all(isinstance(p, str) for p in parts)):
            raise TypeError("SingleHeadPretrained: parts must be a list of module names "
                            f"(e.g. ['backbone', 'neck']), but got {parts!r}")
        self.checkpoint, self.head = checkpoint, head
        self.parts = None if parts is None else tuple(parts)
        self.head_prefix, self.map_location = head_prefix, map_location

    def __call__(self, module: nn.Module) -> None:
        loaded = load_single_head(module, self.checkpoint, self.head, self.parts,
                                  self.head_prefix, self.map_location)
        for name in loaded:
            # BaseModule.init_weights skips children whose is_init is set
            setattr(module.get_submodule(name), '_is_init', True)
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=f'SingleHeadPretrained: {self.head} from '
                             f'{self.checkpoint}')

    def __repr__(self) -> str:
        return (f'SingleHeadPretrained(checkpoint={self.checkpoint!r}, head={self.head!r}, '
                f'parts={self.parts!r}, head_prefix={self.head_prefix!r})')
