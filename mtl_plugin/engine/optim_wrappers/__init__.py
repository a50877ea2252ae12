"""Optim wrappers and multi-task loss weighting."""
from . import grad_surgery, loss_weighting  # noqa: F401  (registers modules)
