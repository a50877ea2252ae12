"""SigmoidHeatmapHead (heatmaps as probabilities, for focal heatmap losses) and the focal
loss's refusal of raw heatmaps: exact against the stock HeatmapHead, gradient at a peak
that a clamp of raw outputs would leave dead, and scores in [0, 1] through mmpose's own
``init_model`` / ``inference_topdown``."""
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmpose.models.heads import HeatmapHead
from mmpose.registry import MODELS as POSE_MODELS

import mtl_plugin  # noqa: F401  (registers the modules)
from mtl_plugin.models.losses import GroupWeightedFocalHeatmapLoss

HEAD = dict(in_channels=8, out_channels=3, deconv_out_channels=(8, ), deconv_kernel_sizes=(4, ),
            loss=dict(type='KeypointMSELoss', use_target_weight=True))


def _build(cfg):
    # in mmpose's scope, whatever an earlier test left as the default scope
    with DefaultScope.overwrite_default_scope('mmpose'):
        return POSE_MODELS.build(cfg)


def _heads():
    torch.manual_seed(0)
    stock = _build(dict(type='HeatmapHead', **HEAD))
    ours = _build(dict(type='SigmoidHeatmapHead', **HEAD))
    ours.load_state_dict(stock.state_dict())  # same keys, nothing else
    return stock, ours


def test_sigmoid_head_is_the_stock_head_through_a_sigmoid():
    stock, ours = _heads()
    assert isinstance(ours, HeatmapHead) and type(ours).__name__ == 'SigmoidHeatmapHead'
    assert list(ours.state_dict()) == list(stock.state_dict())
    feats = (torch.randn(2, 8, 4, 4), )
    raw = stock(feats)
    out = ours(feats)
    assert out.shape == raw.shape == (2, 3, 8, 8)
    assert torch.equal(out, raw.sigmoid())
    assert out.min() > 0 and out.max() < 1


def test_focal_loss_refuses_raw_heatmaps_before_backward():
    stock, ours = _heads()
    feats = (torch.randn(2, 8, 4, 4), )
    raw = stock(feats)
    assert raw.min() < 0  # what HeatmapHead gives at init
    loss = GroupWeightedFocalHeatmapLoss()
    target = torch.zeros_like(raw)
    with pytest.raises(ValueError, match=r"GroupWeightedFocalHeatmapLoss: the heatmaps must "
                       r"be probabilities in \[0, 1\], but they range over \[-.*"
                       r"type='SigmoidHeatmapHead'"):
        loss(raw, target)
    assert all(p.grad is None for p in stock.parameters())
    with pytest.raises(ValueError, match=r'range over \[0, 1\.5\]'):
        loss(torch.tensor([0.0, 1.5]).view(1, 1, 1, 2), torch.zeros(1, 1, 1, 2))


def test_a_peak_below_zero_learns_only_through_the_sigmoid():
    """A positive pixel whose raw output is below 0: the clamp of mmpose's focal loss gives
    it no gradient, the sigmoid head a gradient that raises it."""
    target = torch.zeros(1, 1, 3, 3)
    target[0, 0, 1, 1] = 1.0
    logits = torch.full((1, 1, 3, 3), -0.5, requires_grad=True)
    from mmpose.models.losses.heatmap_loss import FocalHeatmapLoss
    FocalHeatmapLoss()(logits.clamp(1e-6, 1 - 1e-6), target).backward()
    assert logits.grad[0, 0, 1, 1] == 0  # dead with a raw head
    logits.grad = None
    GroupWeightedFocalHeatmapLoss()(logits.sigmoid(), target).backward()
    assert logits.grad[0, 0, 1, 1] < 0  # gradient descent raises the peak


def test_focal_config_through_mmpose_init_model_and_inference_topdown():
    from mmpose.apis import inference_topdown, init_model
    model = init_model('configs/group_boost/focal-heatmap_td-hm_res18_synthetic.py',
                       device='cpu')
    assert type(model.head).__name__ == 'SigmoidHeatmapHead'
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    res = inference_topdown(model, img, bboxes=np.array([[4, 4, 60, 60]], np.float32))
    scores = res[0].pred_instances.keypoint_scores
    assert scores.shape == (1, 4)
    assert (scores > 0).all() and (scores < 1).all()


def test_initial_heatmaps_start_at_bias_prob():
    head = _build(dict(type='SigmoidHeatmapHead', **HEAD))
    head.init_weights()
    out = head((torch.randn(2, 8, 4, 4), ))
    # final conv weights ~N(0, 0.001): every pixel within 1e-3 of sigmoid(bias) = 0.1
    assert torch.allclose(out, torch.full_like(out, 0.1), atol=1e-3)
    stock_init = _build(dict(type='SigmoidHeatmapHead', bias_prob=None, **HEAD))
    stock_init.init_weights()
    assert torch.equal(stock_init.final_layer.bias, torch.zeros(3))
    for bad in (0, 1, 1.5, True, 'x'):
        with pytest.raises(ValueError, match=f'bias_prob must be a number in \\(0, 1\\).*'
                           f'got {bad!r}'):
            _build(dict(type='SigmoidHeatmapHead', bias_prob=bad, **HEAD))
