"""Hooks."""
from .curriculum import CurriculumLearningHook, schedule_value
from .data_map import DataMapHook
from .head_isolation import HeadIsolationHook
from .staged_training import StagedTrainingHook

__all__ = ['CurriculumLearningHook', 'DataMapHook', 'HeadIsolationHook', 'StagedTrainingHook',
           'schedule_value']
