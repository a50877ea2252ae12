"""mtl_plugin: train one MMDetection / MMPose model on several independent datasets.

Importing the package registers every module into MMEngine's root registries, so that
configs of any scope (``mmdet``, ``mmpose``, plain ``mmengine``) find them, and allows
MMEngine checkpoints under torch's safe ``weights_only`` loading (needed for resume).
"""
from . import checkpoints, datasets, engine, evaluation, models, visualization  # noqa: F401
from .engine import install_safe_checkpoint_globals

install_safe_checkpoint_globals()

__version__ = '0.1.0'
__all__ = ['checkpoints', 'datasets', 'engine', 'evaluation', 'models', 'visualization',
           '__version__']
