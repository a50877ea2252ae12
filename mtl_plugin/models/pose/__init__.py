"""Pose estimators (mmpose-based: imported, with mmpose, when first built or imported)."""
from mmengine.registry import MODELS

from ..utils import register_lazy

register_lazy(MODELS, 'MultiHeadPoseEstimator', 'mtl_plugin.models.pose.multi_head')
register_lazy(MODELS, 'SigmoidHeatmapHead', 'mtl_plugin.models.pose.sigmoid_heatmap_head')


def __getattr__(name: str):
    if name == 'MultiHeadPoseEstimator':
        from .multi_head import MultiHeadPoseEstimator
        return MultiHeadPoseEstimator
    if name == 'SigmoidHeatmapHead':
        from .sigmoid_heatmap_head import SigmoidHeatmapHead
        return SigmoidHeatmapHead
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = ['MultiHeadPoseEstimator', 'SigmoidHeatmapHead']
