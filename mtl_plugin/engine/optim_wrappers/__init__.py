"""Optim wrappers and multi-task loss weighting."""
from .grad_surgery import GradSurgeryOptimWrapper, build_aggregator
from .loss_weighting import (LossWeighting, MultiTaskLossMixin, MultiTaskModel,
                             attach_loss_weighting, group_losses_by_task)
from .weighting_methods import (DWAWeighting, EqualWeighting, FixedWeighting,
                                GradNormWeighting, RLWWeighting, ScheduledWeighting,
                                UncertaintyWeighting)

__all__ = ['GradSurgeryOptimWrapper', 'build_aggregator', 'LossWeighting', 'MultiTaskLossMixin', 'MultiTaskModel', 'attach_loss_weighting',
           'group_losses_by_task', 'DWAWeighting', 'EqualWeighting', 'FixedWeighting',
           'GradNormWeighting', 'RLWWeighting', 'ScheduledWeighting', 'UncertaintyWeighting']
