"""Visualizers: mmpose's ``PoseLocalVisualizer`` drawing each group with its own keypoints.

The visualizer module imports mmpose, which ``import mtl_plugin`` must not load: the class
is registered lazily in MMEngine's root ``VISUALIZERS`` (so ``visualizer=dict(
type='GroupPoseLocalVisualizer')`` builds from any scope) and imported when first built.
"""
import importlib
from typing import Any

from mmengine.registry import VISUALIZERS

_MODULE = 'mtl_plugin.visualization.pose_visualizer'
_NAME = 'GroupPoseLocalVisualizer'


def _build(*args: Any, **kwargs: Any) -> Any:
    cls = getattr(importlib.import_module(_MODULE), _NAME)
    # as mmengine's build_from_cfg does for a ManagerMixin: the instance becomes the
    # current one, which the visualization hooks fetch with get_current_instance()
    return cls.get_instance(**kwargs) if 'name' in kwargs and not args else cls(*args, **kwargs)


_build.__name__ = _build.__qualname__ = _NAME
_build.__doc__ = f'Imports ``{_MODULE}`` and builds ``{_NAME}`` (see that class).'
if _NAME not in VISUALIZERS.module_dict:
    VISUALIZERS.register_module(name=_NAME, module=_build)


def __getattr__(name: str):
    if name == _NAME:
        return getattr(importlib.import_module(_MODULE), _NAME)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = ['GroupPoseLocalVisualizer']
