"""Engine parts: hooks, optim wrappers, checkpoint and distributed helpers."""
from .checkpoint_compat import install_safe_checkpoint_globals
from . import optim_wrappers  # noqa: F401  (registers modules)
from .dist import setup_cpu_distributed
from .hooks import (CurriculumLearningHook, HeadIsolationHook, StagedTrainingHook,
                    schedule_value)

__all__ = ['install_safe_checkpoint_globals', 'setup_cpu_distributed', 'CurriculumLearningHook',
           'HeadIsolationHook', 'StagedTrainingHook', 'schedule_value']
