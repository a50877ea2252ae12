"""Hooks."""
from . import data_map  # noqa: F401  (registers modules)
from .curriculum import CurriculumLearningHook, schedule_value
from .head_isolation import HeadIsolationHook
from .staged_training import StagedTrainingHook

__all__ = ['CurriculumLearningHook', 'HeadIsolationHook', 'StagedTrainingHook', 'schedule_value']
