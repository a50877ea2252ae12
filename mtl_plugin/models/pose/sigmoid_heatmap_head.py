"""``SigmoidHeatmapHead``: MMPose's ``HeatmapHead`` whose heatmaps are probabilities.

CornerNet / CenterNet focal heatmap losses (MMPose's ``FocalHeatmapLoss``, our
:class:`~mtl_plugin.models.losses.GroupWeightedFocalHeatmapLoss`) take heatmaps in
``[0, 1]``: their ``log(p)`` / ``log(1 - p)`` terms are undefined elsewhere. The stock
``HeatmapHead`` ends in a plain convolution, and clamping its raw output into
``(eps, 1 - eps)`` kills the gradient wherever the output leaves that range: a keypoint
peak whose output starts below 0 never gets pulled up. This head applies a sigmoid to
the final layer's output (as CenterNet does), in training and in inference alike, so the
decoder sees the same probabilities the loss trained, and keypoint scores stay in
``[0, 1]`` for mmpose's rescoring::

    head=dict(type='SigmoidHeatmapHead', in_channels=512, out_channels=17,
              loss=dict(type='GroupWeightedFocalHeatmapLoss', alpha=2.0, beta=4.0),
              decoder=codec)

Everything else (deconvolutions, flip test, decoding, ``loss`` with keypoint weights)
is ``HeatmapHead``'s. A checkpoint of this head has ``HeatmapHead``'s keys.
"""
from typing import Tuple

from mmengine.registry import MODELS
from mmpose.models.heads import HeatmapHead
from torch import Tensor

__all__ = ['SigmoidHeatmapHead']


@MODELS.register_module(force=True)  # over the lazy builder of models/pose/__init__.py
class SigmoidHeatmapHead(HeatmapHead):
    """``HeatmapHead`` with a sigmoid on its output heatmaps (values in ``(0, 1)``).

    Takes exactly ``HeatmapHead``'s arguments (see MMPose's documentation); use it with a
    focal heatmap loss. With ``KeypointMSELoss`` it fits Gaussian targets through a
    sigmoid, which also works but gains nothing over the stock head.
    """

    def forward(self, feats: Tuple[Tensor]) -> Tensor:
        """Heatmaps ``(B, K, H, W)``: the stock head's output through a sigmoid.

        Args:
            feats (Tuple[Tensor]): Multi-scale backbone / neck features.

        Returns:
            Tensor: Heatmaps in ``(0, 1)``.
        """
        return super().forward(feats).sigmoid()
