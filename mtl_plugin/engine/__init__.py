"""Engine parts: hooks, optim wrappers, checkpoint and distributed helpers."""
from .checkpoint_compat import install_safe_checkpoint_globals
from .dist import finish_distributed, setup_cpu_distributed
from .hooks import (CurriculumLearningHook, DataMapHook, HeadIsolationHook, StagedTrainingHook,
                    schedule_value)
from .optim_wrappers import GradSurgeryOptimWrapper

__all__ = ['install_safe_checkpoint_globals', 'setup_cpu_distributed', 'finish_distributed',
           'CurriculumLearningHook', 'DataMapHook', 'HeadIsolationHook', 'StagedTrainingHook',
           'schedule_value',            'GradSurgeryOptimWrapper']
