"""Small helpers shared by the model modules."""
import importlib
from typing import Any, Mapping, Optional

from mmengine.registry import MODELS
from torch import nn


def build_with_mmdet_fallback(cfg: Mapping) -> nn.Module:
    """Build ``cfg`` through the root ``MODELS`` (current default scope first).

    An unprefixed type not found there (e.g. no ``default_scope='mmdet'`` is set) is looked
    up in MMDetection's registry, so ``dict(type='FocalLoss')`` works from any scope.

    Args:
        cfg (Mapping): Module config with a ``type``.

    Returns:
        nn.Module: The built module.
    """
    try:
        return MODELS.build(cfg)
    except KeyError:
        loss_type = cfg.get('type')
        if not isinstance(loss_type, str) or '.' in loss_type:
            raise
        from mmdet.registry import MODELS as MMDET_MODELS
        if MMDET_MODELS.get(loss_type) is None:
            raise
        # ``MMDET_MODELS.build`` would switch back to the current default scope (e.g.
        # 'mmengine') and miss the type again; the scope prefix forces mmdet's registry
        return MODELS.build({**cfg, 'type': f'mmdet.{loss_type}'})


class InvalidModeError(RuntimeError, ValueError):
    """``forward(mode=...)`` got a mode other than ``'loss'``, ``'predict'``, ``'tensor'``."""


def dispatch_mode(model: nn.Module, inputs: Any, data_samples: Optional[list],
                  mode: str) -> Any:
    """MMEngine's ``forward`` contract: ``model.loss`` / ``model.predict`` / ``model._forward``.

    Args:
        model (nn.Module): A model with ``loss``, ``predict`` and ``_forward``.
        inputs (Any): The preprocessed inputs.
        data_samples (list, optional): Their data samples.
        mode (str): ``'loss'``, ``'predict'`` or ``'tensor'``.

    Returns:
        Any: The losses, the predicted samples or the raw outputs.

    Raises:
        InvalidModeError: For any other mode (a RuntimeError, as MMEngine's, and a
            ValueError).
    """
    if mode == 'loss':
        return model.loss(inputs, data_samples)
    if mode == 'predict':
        return model.predict(inputs, data_samples)
    if mode == 'tensor':
        return model._forward(inputs, data_samples)
    raise InvalidModeError(f'Invalid mode "{mode}": use "loss", "predict" or "tensor"')


def register_lazy(registry: Any, name: str, module: str) -> None:
    """Register ``name`` so that the module defining it is imported only when it is built.

    The mmpose-based modules (pose estimator, heatmap losses) live in modules that import
    mmpose; ``import mtl_plugin`` must not load it (~0.4 s), yet configs naming them
    must build after ``custom_imports=dict(imports=['mtl_plugin'])``. The registry first holds
    a builder function; importing ``module`` registers the class itself over it
    (``force=True``), and the builder then builds through the class.

    Args:
        registry (Registry): E.g. mmengine's root ``MODELS``.
        name (str): The registered name (the class name).
        module (str): The module that defines and registers the class.
    """

    def build(*args: Any, **kwargs: Any) -> Any:
        cls = getattr(importlib.import_module(module), name)
        return cls(*args, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f'Imports ``{module}`` and builds ``{name}`` (see that class).'
    if name not in registry.module_dict:
        registry.register_module(name=name, module=build)
