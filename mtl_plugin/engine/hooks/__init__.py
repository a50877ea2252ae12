"""Hooks."""
from .curriculum import CurriculumLearningHook, schedule_value
from .data_map import DataMapHook
from .head_isolation import HeadIsolationHook
from .save_best_check import SaveBestCheckHook, TestableEarlyStoppingHook, check_save_best
from .staged_training import StagedTrainingHook

__all__ = ['CurriculumLearningHook', 'DataMapHook', 'HeadIsolationHook', 'SaveBestCheckHook',
           'StagedTrainingHook', 'TestableEarlyStoppingHook', 'check_save_best', 'schedule_value']
