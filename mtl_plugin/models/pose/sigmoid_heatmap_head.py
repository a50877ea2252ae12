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

The final layer's bias starts at ``-log((1 - p) / p)`` with ``p = bias_prob`` (0.1,
CenterNet's / RetinaNet's prior): every pixel starts as an unlikely keypoint, instead of
at 0.5, where the focal loss's negatives swamp the few positives. Everything else
(deconvolutions, flip test, decoding, ``loss`` with keypoint weights) is
``HeatmapHead``'s. A checkpoint of this head has ``HeatmapHead``'s keys.
"""
from typing import Any, Optional, Tuple

from mmengine.registry import MODELS
from mmpose.models.heads import HeatmapHead
from torch import Tensor

__all__ = ['SigmoidHeatmapHead']


@MODELS.register_module(force=True)  # over the lazy builder of models/pose/__init__.py
class SigmoidHeatmapHead(HeatmapHead):
    """``HeatmapHead`` with a sigmoid on its output heatmaps (values in ``(0, 1)``).

    Takes ``HeatmapHead``'s arguments (see MMPose's documentation) and ``bias_prob``; use
    it with a focal heatmap loss. With ``KeypointMSELoss`` it fits Gaussian targets
    through a sigmoid, which also works but gains nothing over the stock head.

    Args:
        *args: ``HeatmapHead``'s positional arguments.
        bias_prob (float, optional): The initial heatmap value (sigmoid of the final
            layer's bias), in ``(0, 1)``; ``None`` keeps the stock initialisation (bias 0:
            0.5 everywhere). It is an entry of the default ``init_cfg`` (mmengine's
            ``Normal`` init with ``bias_prob`` on ``final_layer``); an ``init_cfg`` of
            yours (e.g. ``Pretrained``) replaces it. Defaults to 0.1.
        init_cfg (dict | list, optional): As ``HeatmapHead``'s. Defaults to None.
        **kwargs: ``HeatmapHead``'s keyword arguments.
    """

    def __init__(self, *args: Any, bias_prob: Optional[float] = 0.1,
                 init_cfg: Optional[Any] = None, **kwargs: Any) -> None:
        if bias_prob is not None and not (isinstance(bias_prob, (int, float))
                                          and not isinstance(bias_prob, bool)
                                          and 0 < bias_prob < 1):
            raise ValueError(f'SigmoidHeatmapHead: bias_prob must be a number in (0, 1) (the '
                             f'initial heatmap value) or None, but got {bias_prob!r}')
        if init_cfg is None and bias_prob is not None:  # mmengine's init, final bias at p
            init_cfg = self.default_init_cfg + [dict(
                type='Normal', layer=[], std=0.001, override=dict(
                    name='final_layer', type='Normal', std=0.001, bias_prob=bias_prob))]
        super().__init__(*args, init_cfg=init_cfg, **kwargs)

    def forward(self, feats: Tuple[Tensor]) -> Tensor:
        """Heatmaps ``(B, K, H, W)``: the stock head's output through a sigmoid.

        Args:
            feats (Tuple[Tensor]): Multi-scale backbone / neck features.

        Returns:
            Tensor: Heatmaps in ``(0, 1)``.
        """
        return super().forward(feats).sigmoid()
