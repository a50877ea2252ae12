"""Gradient reversal (Ganin & Lempitsky, DANN): identity forward, ``-lambda * grad`` backward.

Example (an adversarial dataset classifier that makes shared features dataset-invariant)::

    feats = GradientReversalLayer(lambd=0.5)(feats)   # same values, reversed gradient
    logits = classifier(feats)

``lambd`` is a plain float attribute, so :class:`CurriculumLearningHook` can ramp it, e.g.
``dict(param='model.aux_head.grl.lambd', type='dann', by_epoch=False)``.
"""
from typing import Any, Tuple

import torch
from mmengine.registry import MODELS
from torch import Tensor, nn

from ...validation import check_finite, non_negative_property

__all__ = ['GradientReversal', 'GradientReversalLayer', 'check_non_negative']


def check_non_negative(name: str, value: Any) -> float:
    """Return ``value`` as a float, or raise naming ``name`` if it is not finite and >= 0.

    Args:
        name (str): Name of the argument / attribute, for the error message.
        value (Any): The value to check (int or float; bool is refused).

    Returns:
        float: ``float(value)``.

    Raises:
        TypeError: If ``value`` is not a real number.
        ValueError: If ``value`` is NaN, infinite or negative.
    """
    return check_finite(value, name, owner='')


class GradientReversal(torch.autograd.Function):
    """Identity in the forward pass; multiplies the incoming gradient by ``-lambd``.

    Call as ``GradientReversal.apply(x, lambd)``; ``lambd`` (float) gets no gradient.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, lambd: float) -> Tensor:
        """Return a view of ``x`` (any shape), remembering ``lambd``."""
        ctx.lambd = float(lambd)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tuple[Tensor, None]:
        """``-lambd * grad_output`` (same shape as ``x``); no gradient for ``lambd``."""
        return grad_output.neg() * ctx.lambd, None


@MODELS.register_module()
class GradientReversalLayer(nn.Module):
    """Module wrapper of :class:`GradientReversal` with a settable coefficient.

    Args:
        lambd (float): Gradient multiplier magnitude; the backward pass multiplies the
            gradient by ``-lambd``. Must be finite and >= 0 (0 blocks the gradient).
            Defaults to 1.0.
    """

    def __init__(self, lambd: float = 1.0) -> None:
        super().__init__()
        self.lambd = lambd

    lambd = non_negative_property('lambd', 'GradientReversalLayer.lambd',
                                  'The reversal coefficient (float, validated on assignment).')

    def forward(self, x: Tensor) -> Tensor:
        """Identity on ``x`` (any shape); reversed, scaled gradient."""
        return GradientReversal.apply(x, self._lambd)

    def extra_repr(self) -> str:
        return f'lambd={self._lambd}'
