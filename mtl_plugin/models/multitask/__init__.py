"""Multi-task loss weighting: the mixin the multi-head models use, the weighting methods
and ``MultiTaskModel`` for stock models."""
from .loss_weighting import (LossWeighting, MultiTaskLossMixin, MultiTaskModel,
                             attach_loss_weighting, group_losses_by_task)
from .weighting_methods import (DWAWeighting, EqualWeighting, FixedWeighting,
                                GradNormWeighting, RLWWeighting, ScheduledWeighting,
                                UncertaintyWeighting)

__all__ = ['LossWeighting', 'MultiTaskLossMixin', 'MultiTaskModel', 'attach_loss_weighting',
           'group_losses_by_task', 'DWAWeighting', 'EqualWeighting', 'FixedWeighting',
           'GradNormWeighting', 'RLWWeighting', 'ScheduledWeighting', 'UncertaintyWeighting']
