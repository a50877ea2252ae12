"""Checkpoints out: one head of a multi-head model as a stock single-head config + checkpoint.

``export_head(CONFIG, CKPT, head='person', out_dir=DIR)`` writes ``DIR/<name>.py`` and
``DIR/<name>.pth`` that plain MMDetection / MMPose load and run with the plugin absent
(``init_detector`` + ``inference_detector``, ``init_model`` + ``inference_topdown``,
``tools/test.py``), with the same predictions as that head of the multi-head model:

- dense heads: ``RetinaNet`` / ``FCOS`` / ``ATSS`` / ... (:data:`DENSE_DETECTORS`, else
  ``SingleStageDetector``); ``heads.<h>.*`` -> ``bbox_head.*``;
- a shared ``rpn_head`` + RoI heads: ``FasterRCNN`` (``MaskRCNN`` with a mask head);
  ``heads.<h>.*`` -> ``roi_head.*``, the RPN's train / test cfgs as ``rpn`` /
  ``rpn_proposal``, the head's as ``rcnn``;
- pose heads: ``TopdownPoseEstimator``; ``heads.<h>.*`` -> ``head.*``.

``backbone.*``, ``neck.*`` (and ``rpn_head.*``) keep their names; the other heads, the
auxiliary head, loss weights and the model's extra state are left out. The checkpoint's
``meta.dataset_meta`` is the head's: ``classes`` (detection), or the keypoint meta of its
dataset (pose), as plain Python values (torch's ``weights_only`` loading takes them).
"""
import copy
import os
import os.path as osp
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config
from mmengine.registry import DATASETS, MODELS, init_default_scope
from mmengine.runner import load_checkpoint
from torch import nn

from .stock_config import (PluginTypeError, plugin_types_in, runtime_cfg, stock_module_cfg,
                           eval_data_cfgs, to_plain)

__all__ = ['DENSE_DETECTORS', 'export_head', 'stock_model_cfg', 'stock_state_dict']

#: dense head type -> the stock single-stage detector built around it
DENSE_DETECTORS = {
    'RetinaHead': 'RetinaNet', 'FCOSHead': 'FCOS', 'ATSSHead': 'ATSS', 'GFLHead': 'GFL',
    'RTMDetHead': 'RTMDet', 'RTMDetSepBNHead': 'RTMDet', 'YOLOXHead': 'YOLOX',
    'FSAFHead': 'FSAF', 'PAAHead': 'PAA', 'FreeAnchorRetinaHead': 'RetinaNet'}


def _kind(model: nn.Module) -> str:
    name = type(model).__name__
    if name == 'MultiHeadDetector':
        return 'two_stage' if model.rpn_head is not None else 'dense'
    if name == 'MultiHeadPoseEstimator':
        return 'pose'
    raise TypeError(f'export_head exports a head of a MultiHeadDetector or '
                    f'MultiHeadPoseEstimator, but the config builds a {name}')


def _cfg_of(obj: Any) -> Optional[dict]:
    return to_plain(obj) if obj else None


def _shared_parts(mcfg: dict, kind: str) -> Dict[str, Any]:
    """Data preprocessor, backbone and neck of the multi-head model config."""
    neck = mcfg.get('neck')
    if neck is not None and str(neck.get('type', '')).split('.')[-1] == 'SoftParameterSharing':
        raise PluginTypeError('model.neck: a SoftParameterSharing neck (one copy per head) has '
                              'no stock single-head equivalent; export needs a shared neck')
    out = {k: copy.deepcopy(mcfg[k]) for k in ('data_preprocessor', 'backbone', 'neck')
           if mcfg.get(k) is not None}
    for part in ('backbone', 'neck'):  # the weights come with the checkpoint
        if part in out:
            out[part].pop('init_cfg', None)
    return out


def stock_model_cfg(mcfg: dict, model: nn.Module, head: str) -> dict:
    """The stock single-head model config of ``head`` (see the module's list).

    Args:
        mcfg (dict): The multi-head model's config (plain values).
        model (nn.Module): The model built from it (the heads' train / test cfgs).
        head (str): The head to export.

    Returns:
        dict: The stock model config.
    """
    kind = _kind(model)
    head_cfg = stock_module_cfg(copy.deepcopy(mcfg['heads'][head]), f'model.heads.{head}')
    head_cfg.pop('init_cfg', None)
    built = model.heads[head]
    out = dict(_shared_parts(mcfg, kind))
    if kind == 'pose':
        out.update(type='TopdownPoseEstimator', head=head_cfg,
                   train_cfg=_cfg_of(mcfg.get('train_cfg')), test_cfg=_cfg_of(model.test_cfg))
    elif kind == 'dense':
        head_type = str(head_cfg['type']).split('.')[-1]
        out.update(type=DENSE_DETECTORS.get(head_type, 'SingleStageDetector'),
                   bbox_head=head_cfg, train_cfg=_cfg_of(built.train_cfg),
                   test_cfg=_cfg_of(built.test_cfg))
    else:
        rpn = stock_module_cfg(copy.deepcopy(mcfg['rpn_head']), 'model.rpn_head')
        rpn.setdefault('num_classes', 1)
        out.update(type='MaskRCNN' if head_cfg.get('mask_head') else 'FasterRCNN',
                   rpn_head=rpn, roi_head=head_cfg,
                   train_cfg=dict(rpn=_cfg_of(model.rpn_head.train_cfg),
                                  rpn_proposal=_cfg_of(model.rpn_proposal),
                                  rcnn=_cfg_of(built.train_cfg)),
                   test_cfg=dict(rpn=_cfg_of(model.rpn_head.test_cfg),
                                 rcnn=_cfg_of(built.test_cfg)))
    return out


def stock_state_dict(state: Dict[str, torch.Tensor], head: str, kind: str,
                     shared: Optional[Tuple[str, Sequence[str]]] = None
                     ) -> Dict[str, torch.Tensor]:
    """The single-head state dict: ``heads.<head>.*`` renamed, the rest of ours dropped.

    Args:
        state (dict[str, Tensor]): The multi-head model's state dict.
        head (str): The head to export.
        kind (str): ``'dense'``, ``'two_stage'`` or ``'pose'``.
        shared (tuple[str, Sequence[str]], optional): Partitioned heads: the head that
            holds the shared parts and their names; the exported head gets a copy of them.

    Returns:
        dict[str, Tensor]: The stock model's state dict (the same tensors).
    """
    target = dict(pose='head', dense='bbox_head', two_stage='roi_head')[kind]
    keep = ('backbone.', 'neck.', 'data_preprocessor.') + (
        ('rpn_head.', ) if kind == 'two_stage' else ())
    prefix = f'heads.{head}.'
    out = {}
    for key, value in state.items():
        if key.startswith(prefix):
            out[f'{target}.{key[len(prefix):]}'] = value
        elif key.startswith(keep):
            out[key] = value
    if shared is not None and shared[0] != head:  # partitioned: the first head's towers
        parts = tuple(f'heads.{shared[0]}.{p}.' for p in shared[1])
        for key, value in state.items():  # the head's own tower convs (shared_convs) stay
            if key.startswith(parts):
                out.setdefault(f'{target}.{key[len(f"heads.{shared[0]}."):]}', value)
    return out


def _dataset_meta(stock_cfg: Config, kind: str, classes: Tuple[str, ...]) -> Dict[str, Any]:
    """Detection: the head's classes; pose: the keypoint meta its stock dataset parses."""
    if kind != 'pose':
        return dict(classes=list(classes))
    dataset = dict(copy.deepcopy(stock_cfg.test_dataloader.dataset), lazy_init=True)
    return to_plain(dict(DATASETS.build(dataset).metainfo))


def _check_loads(stock_cfg: Config, state: Dict[str, torch.Tensor]) -> None:
    """Build the stock model and load the state strictly: every key fits."""
    model = MODELS.build(copy.deepcopy(stock_cfg.model))  # detectors edit their cfg
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise KeyError(f'the exported state does not fit the stock model: missing '
                       f'{result.missing_keys[:8]}, unexpected {result.unexpected_keys[:8]}')


def _load_model(cfg: Config, checkpoint: str) -> Tuple[nn.Module, dict]:
    init_default_scope(cfg.get('default_scope') or 'mmdet')
    model = MODELS.build(cfg.model)
    ckpt = load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                           logger='silent')
    return model, ckpt


def export_head(config: Union[str, Config], checkpoint: str, head: str, out_dir: str,
                name: Optional[str] = None) -> Tuple[str, str]:
    """Write one head as a stock config + checkpoint that load without the plugin.

    Args:
        config (str | Config): The multi-head model's config (file).
        checkpoint (str): Its checkpoint.
        head (str): The head to export, e.g. ``'person'``.
        out_dir (str): Where to write ``<name>.py`` and ``<name>.pth``.
        name (str, optional): File name stem. Defaults to ``<config stem>_<head>``.

    Returns:
        tuple[str, str]: Paths of the config and the checkpoint.

    Raises:
        KeyError: ``head`` is not a head of the model.
        PluginTypeError: A part of the head has no stock equivalent (named).
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    model, ckpt = _load_model(cfg, checkpoint)
    if head not in model.heads:
        raise KeyError(f'head={head!r} is not a head of the model; heads: {list(model.heads)}')
    kind = _kind(model)
    classes = model.head_classes()[head] if kind != 'pose' else None
    if classes and any(c == f'{head}:{i}' for i, c in enumerate(classes)):
        raise ValueError(f'head "{head}" has no class names (the checkpoint carries none); '
                         f'set model.head_classes={{"{head}": [...]}} in the config')
    stock = dict(default_scope='mmpose' if kind == 'pose' else 'mmdet')
    stock.update(runtime_cfg(cfg))
    stock.update(model=stock_model_cfg(to_plain(cfg.model), model, head),
                 **eval_data_cfgs(cfg, model.groups_of_head(head), head, classes))
    leftovers = plugin_types_in(stock)
    if leftovers:
        raise PluginTypeError(f'the exported config would still need the plugin: {leftovers}')
    stem = name or f'{osp.splitext(osp.basename(cfg.filename or "model"))[0]}_{head}'
    os.makedirs(out_dir, exist_ok=True)
    cfg_path, pth_path = osp.join(out_dir, f'{stem}.py'), osp.join(out_dir, f'{stem}.pth')
    stock_cfg = Config(stock)
    partition = getattr(model, 'partition', None)
    state = stock_state_dict(ckpt['state_dict'], head, kind, None if partition is None
                             else (partition.owner_name, partition.parts))
    init_default_scope(stock['default_scope'])
    _check_loads(stock_cfg, state)
    meta = dict(dataset_meta=_dataset_meta(stock_cfg, kind, classes),
                exported_head=dict(head=head, checkpoint=osp.abspath(checkpoint)))
    stock_cfg.dump(cfg_path)
    torch.save(dict(state_dict=state, meta=meta), pth_path)
    return cfg_path, pth_path
