"""Alignment / fusion necks and soft sharing: exact values, gradients, errors, integration."""
import copy
import math
import os.path as osp
from unittest import mock

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
from torch import nn

from conftest import REPO
from mtl_plugin.models.necks import (AdaptivePoolAlign, AttentionFusion, ChannelAlign,
                                     ConcatFusion, CrossStitchNetwork, CrossStitchUnit,
                                     SoftParameterSharing, resize_to)
from mtl_plugin.models.necks import soft_sharing as soft_sharing_module
from tiny_models import batch, build_detector, retina

SNIPPET = osp.join(REPO, 'configs', '_base_', 'models', 'soft_sharing_neck.py')
ARANGE = torch.arange(16.).view(1, 1, 4, 4)


def exact(actual, expected):
    torch.testing.assert_close(actual, torch.as_tensor(expected, dtype=actual.dtype),
                               rtol=0, atol=0)


def set_conv(module, weight, bias):
    """Hand-set the (out, in, 1, 1) conv of a ConvModule from a (out, in) list."""
    with torch.no_grad():
        module.conv.weight.copy_(torch.tensor(weight)[..., None, None])
        module.conv.bias.copy_(torch.tensor(bias))


# ---------------------------------------------------------------------- AdaptivePoolAlign
def test_pool_avg_and_max_on_a_known_4x4_map():
    exact(AdaptivePoolAlign(2)(ARANGE)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    exact(AdaptivePoolAlign(2, mode='max')(ARANGE)[0, 0], [[5., 7.], [13., 15.]])
    # odd size: overlapping bins rows/cols {0,1}, {1,2}, {2,3} -> 4i + j + 2.5
    exact(AdaptivePoolAlign(3)(ARANGE)[0, 0],
          [[2.5, 3.5, 4.5], [6.5, 7.5, 8.5], [10.5, 11.5, 12.5]])
    # 4 x 4 -> 1 x 2: each output averages two 4 x 2 halves
    exact(AdaptivePoolAlign((1, 2))(ARANGE)[0, 0], [[6.5, 8.5]])


def test_resize_upsamples_bilinearly_and_keeps_equal_sizes():
    row = torch.tensor([[[[0., 1.]]]])  # (1, 1, 1, 2)
    exact(resize_to(row, (1, 4)), [[[[0., 0.25, 0.75, 1.]]]])
    assert resize_to(ARANGE, (4, 4)) is ARANGE
    # mixed: H grows (bilinear, constant rows), W shrinks (pooled)
    exact(resize_to(ARANGE[:, :, :1], (3, 2))[0, 0], [[0.5, 2.5]] * 3)


def test_pool_align_shapes_for_odd_sizes_and_call_forms():
    torch.manual_seed(0)
    feats = (torch.rand(2, 3, 7, 5), torch.rand(2, 5, 3, 9), torch.rand(1, 2, 2, 3))
    out = AdaptivePoolAlign((3, 4))(feats)
    assert isinstance(out, tuple)
    assert [tuple(o.shape) for o in out] == [(2, 3, 3, 4), (2, 5, 3, 4), (1, 2, 3, 4)]
    single = AdaptivePoolAlign(5)(feats[0])
    assert isinstance(single, torch.Tensor) and single.shape == (2, 3, 5, 5)
    pair = AdaptivePoolAlign(5)(feats[0], feats[1])
    assert [tuple(o.shape) for o in pair] == [(2, 3, 5, 5), (2, 5, 5, 5)]
    assert isinstance(AdaptivePoolAlign(5)([feats[0]]), tuple)


@pytest.mark.parametrize('kwargs, match', [
    (dict(output_size=0), 'output_size must be a positive int'),
    (dict(output_size=(3, 4, 5)), 'output_size must be .* but got \\(3, 4, 5\\)'),
    (dict(output_size=2.5), 'but got 2.5'),
    (dict(output_size=2, mode='median'), "mode must be 'avg' or 'max', but got 'median'"),
])
def test_pool_align_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdaptivePoolAlign(**kwargs)


@pytest.mark.parametrize('call, match', [
    (lambda m: m(()), 'got no feature maps'),
    (lambda m: m(torch.rand(3, 4, 4)), r'input 0 must be a \(B, C, H, W\) tensor, but got '
                                       r'\(3, 4, 4\)'),
    (lambda m: m(torch.rand(1, 1, 2, 2), 'x'), "input 1 .* but got 'str'"),
])
def test_align_input_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call(AdaptivePoolAlign(2))


# ---------------------------------------------------------------------- ChannelAlign
def test_channel_align_values_and_shapes():
    torch.manual_seed(0)
    m = ChannelAlign([2, 5], 1)
    set_conv(m.convs[0], [[1., -2.]], [0.5])
    # small integers: the products and sums are exact in float32
    x0, x1 = torch.randint(-8, 8, (2, 2, 7, 5)).float(), torch.rand(2, 5, 3, 9)
    out = m((x0, x1))
    exact(out[0], x0[:, :1] - 2 * x0[:, 1:] + 0.5)
    assert [tuple(o.shape) for o in out] == [(2, 1, 7, 5), (2, 1, 3, 9)]
    shared = ChannelAlign(3, 4, norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'))
    assert len(shared.convs) == 1 and shared.convs[0].conv.bias is None  # bias='auto'
    out = shared([torch.rand(2, 3, 5, 5), torch.rand(2, 3, 3, 1), torch.rand(2, 3, 1, 1)])
    assert [tuple(o.shape) for o in out] == [(2, 4, 5, 5), (2, 4, 3, 1), (2, 4, 1, 1)]
    assert all((o >= 0).all() for o in out)


@pytest.mark.parametrize('kwargs, match', [
    (dict(in_channels=[], out_channels=4), 'in_channels must be a list of at least 1'),
    (dict(in_channels=[3, 0], out_channels=4), r'but got \[3, 0\]'),
    (dict(in_channels=0, out_channels=4), 'in_channels must be a positive int, but got 0'),
    (dict(in_channels=3, out_channels=True), 'out_channels must be a positive int'),
])
def test_channel_align_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ChannelAlign(**kwargs)


def test_channel_align_input_errors():
    m = ChannelAlign([2, 3], 4)
    with pytest.raises(ValueError, match=r'expects 2 inputs .* but got 1'):
        m((torch.rand(1, 2, 4, 4), ))
    with pytest.raises(ValueError, match=r'input 1 should have 3 channels \(in_channels\[1\]\), '
                                         r'but got shape \(1, 4, 4, 4\)'):
        m(torch.rand(1, 2, 4, 4), torch.rand(1, 4, 4, 4))


# ---------------------------------------------------------------------- ConcatFusion
def test_concat_fusion_hand_checked_1x1_conv():
    m = ConcatFusion([2, 1], 1)
    set_conv(m.fuse, [[1., 2., -1.]], [0.25])
    a = torch.cat([ARANGE, -ARANGE], dim=1)   # (1, 2, 4, 4)
    b = torch.full((1, 1, 2, 2), 3.)          # upsampled to 4 x 4: still 3
    exact(m(a, b), ARANGE - 2 * ARANGE - 3 + 0.25)
    out = m((a, b))
    assert isinstance(out, tuple) and len(out) == 1 and out[0].shape == (1, 1, 4, 4)


def test_concat_fusion_shapes_kernel_3():
    m = ConcatFusion([3, 4], 6, kernel_size=3)
    out = m(torch.rand(2, 3, 7, 5), torch.rand(2, 4, 3, 9))
    assert out.shape == (2, 6, 7, 5)


@pytest.mark.parametrize('kwargs, match', [
    (dict(in_channels=[3], out_channels=4), 'in_channels must be a list of at least 2'),
    (dict(in_channels=8, out_channels=4), 'but got 8'),
    (dict(in_channels=[3, 4], out_channels=0), 'out_channels must be a positive int'),
    (dict(in_channels=[3, 4], out_channels=4, kernel_size=2), 'kernel_size must be 1 or 3'),
])
def test_concat_fusion_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConcatFusion(**kwargs)


def test_concat_fusion_input_errors():
    m = ConcatFusion([1, 1], 2)
    with pytest.raises(ValueError, match=r'batch sizes \[1, 2\]'):
        m(torch.rand(1, 1, 2, 2), torch.rand(2, 1, 2, 2))
    with pytest.raises(ValueError, match=r'expects 2 inputs'):
        m(torch.rand(1, 1, 2, 2))


# ---------------------------------------------------------------------- AttentionFusion
def test_attention_fusion_shapes():
    torch.manual_seed(0)
    a, b = torch.rand(2, 8, 3, 5), torch.rand(2, 8, 2, 2)
    out = AttentionFusion(8, num_heads=2)(a, b)
    assert [o.shape for o in out] == [a.shape, b.shape]
    assert AttentionFusion(8)(a).shape == a.shape
    assert AttentionFusion(8, mode='cross')(a, torch.rand(2, 8, 4, 4)).shape == a.shape
    assert isinstance(AttentionFusion(8, mode='cross')((a, b)), tuple)


@pytest.mark.parametrize('mode', ['self', 'cross'])
def test_attention_fusion_zero_out_proj_is_identity(mode):
    torch.manual_seed(0)
    a, b = torch.randn(2, 8, 3, 5), torch.randn(2, 8, 2, 2)
    m = AttentionFusion(8, mode=mode)
    with torch.no_grad():
        m.attn.out_proj.weight.zero_()  # torch already initialises out_proj.bias at 0
    out = m(a, b)
    assert torch.equal(out if mode == 'cross' else out[0], a)
    built = MODELS.build(dict(type='AttentionFusion', channels=8, mode=mode, zero_init=True))
    built.init_weights()
    assert not built.attn.out_proj.weight.any()
    out = built(a, b)
    assert torch.equal(out, a) if mode == 'cross' else torch.equal(out[1], b)


def test_attention_fusion_mixes_the_other_branch():
    torch.manual_seed(0)
    a, b = torch.randn(2, 8, 3, 3), torch.randn(2, 8, 2, 2)
    cross = AttentionFusion(8, mode='cross').eval()
    out, changed = cross(a, b), cross(a, b + torch.randn_like(b))
    assert not torch.allclose(out, changed)
    assert (out - a).abs().max() > 1e-3
    self_attn = AttentionFusion(8).eval()
    assert not torch.allclose(self_attn(a, b)[0], self_attn(a, 2 * b)[0])
    out.sum().backward()
    assert cross.norm_kv.weight.grad.abs().sum() > 0  # B reaches the output through keys


@pytest.mark.parametrize('kwargs, match', [
    (dict(channels=6, num_heads=4), 'num_heads must divide channels=6, but got num_heads=4'),
    (dict(channels=0), 'channels must be a positive int'),
    (dict(channels=8, mode='both'), "mode must be 'self' or 'cross', but got 'both'"),
])
def test_attention_fusion_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AttentionFusion(**kwargs)
    with pytest.raises(TypeError, match='zero_init must be True or False'):
        AttentionFusion(8, zero_init=1)


def test_attention_fusion_input_errors():
    x = torch.rand(1, 8, 2, 2)
    with pytest.raises(ValueError, match="mode='cross' takes exactly two inputs"):
        AttentionFusion(8, mode='cross')(x, x, x)
    with pytest.raises(ValueError, match=r'input 1 should have 8 channels \(channels\)'):
        AttentionFusion(8)(x, torch.rand(1, 4, 2, 2))
    with pytest.raises(ValueError, match=r'batch sizes \[1, 3\]'):
        AttentionFusion(8)(x, torch.rand(3, 8, 2, 2))


# ---------------------------------------------------------------------- CrossStitchUnit
def test_cross_stitch_init():
    unit = CrossStitchUnit(3, init_same=0.7)
    torch.testing.assert_close(unit.alpha.data, torch.tensor(
        [[0.7, 0.15, 0.15], [0.15, 0.7, 0.15], [0.15, 0.15, 0.7]]))
    per_channel = CrossStitchUnit(2, channels=4)
    assert per_channel.alpha.shape == (2, 2, 4)
    torch.testing.assert_close(per_channel.alpha.data[:, :, 3], torch.tensor([[.9, .1],
                                                                              [.1, .9]]))
    with torch.no_grad():
        unit.alpha.zero_()
    unit.init_weights()
    assert unit.alpha.data[0, 0] == pytest.approx(0.7)


def test_cross_stitch_output_and_alpha_gradient():
    unit = CrossStitchUnit(2)
    with torch.no_grad():
        unit.alpha.copy_(torch.tensor([[0.5, 0.25], [2., -1.]]))
    x1, x2 = torch.ones(1, 2, 2, 2), torch.arange(8.).view(1, 2, 2, 2)
    y1, y2 = unit(x1, x2)
    exact(y1, 0.5 + 0.25 * x2)
    exact(y2, 2 - x2)
    (y1.sum() + 3 * y2.sum()).backward()
    # d/d alpha_ij of sum_i c_i * sum(y_i) = c_i * sum(x_j), c = (1, 3)
    exact(unit.alpha.grad, [[8., 28.], [24., 84.]])


def test_cross_stitch_per_channel():
    unit = CrossStitchUnit(2, channels=2)
    with torch.no_grad():  # channel 0 swaps the branches, channel 1 keeps them
        unit.alpha.copy_(torch.tensor([[[0., 1.], [1., 0.]], [[1., 0.], [0., 1.]]]))
    x1, x2 = torch.rand(3, 2, 4, 5), torch.rand(3, 2, 4, 5)
    y1, y2 = unit([x1, x2])
    exact(y1, torch.cat([x2[:, :1], x1[:, 1:]], 1))
    exact(y2, torch.cat([x1[:, :1], x2[:, 1:]], 1))
    y1.sum().backward()
    exact(unit.alpha.grad[0, :, 0], [x1[:, 0].sum(), x2[:, 0].sum()])
    exact(unit.alpha.grad[1], torch.zeros(2, 2))


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_tasks=1), 'num_tasks must be an int >= 2, but got 1'),
    (dict(num_tasks=2, channels=0), 'channels must be a positive int .* but got 0'),
    (dict(num_tasks=2, init_same=1.5), r'init_same must be a float in \[0, 1\], but got 1.5'),
    (dict(num_tasks=2, init_same=float('nan')), 'init_same must be a float'),
])
def test_cross_stitch_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CrossStitchUnit(**kwargs)


def test_cross_stitch_input_errors():
    x = torch.rand(1, 2, 3, 3)
    with pytest.raises(ValueError, match='expects num_tasks=2 tensors'):
        CrossStitchUnit(2)(x)
    with pytest.raises(ValueError, match='must have the same shape'):
        CrossStitchUnit(2)(x, torch.rand(1, 2, 3, 4))
    with pytest.raises(ValueError, match=r'expects maps \(B, 4, ...\), but got \(1, 2, 3, 3\)'):
        CrossStitchUnit(2, channels=4)(x, x)


def test_cross_stitch_network():
    torch.manual_seed(0)
    stage = dict(type='Conv2d', in_channels=2, out_channels=2, kernel_size=1)
    with DefaultScope.overwrite_default_scope('mmengine'):
        net = MODELS.build(dict(type='CrossStitchNetwork', stages=[stage, stage], num_tasks=2,
                                init_same=1.0, channels=[2, None]))
    x = torch.rand(1, 2, 3, 3)
    out = net(x)  # identity stitches: each branch is its own two convs
    for t in range(2):
        torch.testing.assert_close(out[t], net.branches[t][1](net.branches[t][0](x)))
    with torch.no_grad():
        net.stitches[1].alpha.fill_(0.5)  # the last stitch averages: both outputs agree
    a, b = net([x, 2 * x])
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match='expects one input or num_tasks=2 inputs'):
        net([x, x, x])
    with pytest.raises(TypeError, match='stages must be a non-empty list'):
        CrossStitchNetwork([], 2)
    with pytest.raises(ValueError, match=r'one entry per stage \(1\), but got \[2, 2\]'):
        CrossStitchNetwork([stage], 2, channels=[2, 2])
    with pytest.raises(ValueError, match='num_tasks must be an int >= 2'):
        CrossStitchNetwork([stage], 1)


# ---------------------------------------------------------------------- SoftParameterSharing
def linear_sharing(tasks, weights, l2_weight):
    with DefaultScope.overwrite_default_scope('mmdet'):
        m = MODELS.build(dict(type='SoftParameterSharing', tasks=tasks, l2_weight=l2_weight,
                              branch=dict(type='Linear', in_features=2, out_features=1)))
    with torch.no_grad():
        for task, (w, b) in zip(tasks, weights):
            m.branches[task].weight.copy_(torch.tensor([w]))
            m.branches[task].bias.copy_(torch.tensor([b]))
    return m


def test_soft_sharing_l2_penalty_values():
    a, b, c = ([1., 2.], 0.5), ([0., -1.], 1.5), ([1., 1.], 0.5)
    m = linear_sharing(['person', 'animal'], [a, b], 0.5)
    loss = m.loss()
    assert list(loss) == ['soft_sharing.loss_l2']
    exact(loss['soft_sharing.loss_l2'], 5.5)  # 0.5 * ((1 + 9) + 1)
    m = linear_sharing(['a', 'b', 'c'], [a, b, c], 0.5)
    loss = m.loss()['soft_sharing.loss_l2']
    exact(loss, 9.)  # 0.5 * (11 + 1 + 6)
    loss.backward()
    # d/d theta_a = 2 * 0.5 * ((theta_a - theta_b) + (theta_a - theta_c))
    exact(m.branches['a'].weight.grad, [[1., 4.]])
    exact(m.branches['a'].bias.grad, [-1.])
    m.l2_weight = 0
    exact(m.loss()['soft_sharing.loss_l2'], 0.)


def test_soft_sharing_forward_routes_to_the_task_copy():
    m = linear_sharing(['person', 'animal'], [([1., 2.], 0.5), ([0., -1.], 1.5)], 1e-3)
    x = torch.tensor([[1., 1.]])
    exact(m(x, 'person'), [[3.5]])
    exact(m(x, task='animal'), [[0.5]])
    with pytest.raises(KeyError, match="unknown task 'cat'; tasks: \\['person', 'animal'\\]"):
        m(x, 'cat')


def test_soft_sharing_wraps_two_mmdet_fpn_necks():
    model = build_detector()
    fpn = dict(type='FPN', in_channels=[16, 32], out_channels=16, num_outs=2)
    with DefaultScope.overwrite_default_scope('mmdet'):
        neck = MODELS.build(dict(type='SoftParameterSharing', branch=fpn,
                                 tasks=['person', 'animal']))
    neck.init_weights()
    data = model.data_preprocessor(batch(['person', 'animal']), True)
    feats = model.backbone(data['inputs'])
    outs = {t: neck(feats, t) for t in neck.tasks}
    assert [tuple(o.shape) for o in outs['person']] == [(2, 16, 8, 8), (2, 16, 4, 4)]
    loss = neck.loss()['soft_sharing.loss_l2']
    assert math.isfinite(loss.item()) and loss.item() > 0
    (loss + sum(o.sum() for o in outs['person'])).backward()
    assert neck.branches['animal'].lateral_convs[0].conv.weight.grad.abs().sum() > 0
    neck.branches['animal'].load_state_dict(neck.branches['person'].state_dict())
    exact(neck.loss()['soft_sharing.loss_l2'], 0.)
    for p, a in zip(neck(feats, 'person'), neck(feats, 'animal')):
        assert torch.equal(p, a)


@pytest.mark.parametrize('kwargs, err, match', [
    (dict(tasks=['person']), ValueError, r"at least 2 .* but got \['person'\]"),
    (dict(tasks='person'), ValueError, "but got 'person'"),
    (dict(tasks=['a', 'b-c']), ValueError, 'identifiers'),
    (dict(tasks=['a', 'b', 'a']), ValueError, r"must be unique, but \['a'\] appear"),
    (dict(l2_weight=-1.), ValueError, 'l2_weight must be a finite float >= 0, but got -1.0'),
    (dict(l2_weight=float('inf')), ValueError, 'but got inf'),
    (dict(l2_weight='0.1'), TypeError, "l2_weight must be a finite float >= 0, but got '0.1'"),
    (dict(branch='FPN'), TypeError, "branch must be a module config dict .* but got 'FPN'"),
    (dict(branch=dict(type='NoSuchNeck')), KeyError, "branch type 'NoSuchNeck' is not a "
                                                      'registered model'),
    (dict(branch=dict(type='ReLU')), ValueError, 'branch ReLU has no parameters to tie'),
])
def test_soft_sharing_errors(kwargs, err, match):
    cfg = dict(branch=dict(type='Linear', in_features=2, out_features=1),
               tasks=['person', 'animal'])
    cfg.update(kwargs)
    with DefaultScope.overwrite_default_scope('mmdet'), pytest.raises(err, match=match):
        SoftParameterSharing(**cfg)


def test_soft_sharing_copies_must_match():
    built = iter([nn.Linear(2, 1), nn.Linear(3, 1)])
    with mock.patch.object(soft_sharing_module.MODELS, 'build',
                           side_effect=lambda cfg: next(built)), \
            pytest.raises(ValueError, match='copies of branch for "person" and "animal" differ'):
        SoftParameterSharing(dict(type='Linear'), ['person', 'animal'])
    m = linear_sharing(['person', 'animal'], [([1., 2.], 0.5)] * 2, 1.)
    with pytest.raises(ValueError, match='l2_weight must be a finite float >= 0'):
        m.l2_weight = float('nan')


# ---------------------------------------------------------------------- registry / integration
CONFIGS = dict(
    AdaptivePoolAlign=dict(type='AdaptivePoolAlign', output_size=3),
    ChannelAlign=dict(type='ChannelAlign', in_channels=[2, 3], out_channels=4),
    ConcatFusion=dict(type='ConcatFusion', in_channels=[2, 3], out_channels=4),
    AttentionFusion=dict(type='AttentionFusion', channels=4, num_heads=2),
    CrossStitchUnit=dict(type='CrossStitchUnit', num_tasks=2, channels=4),
    CrossStitchNetwork=dict(type='CrossStitchNetwork', num_tasks=2,
                            stages=[dict(type='Conv2d', in_channels=4, out_channels=4,
                                         kernel_size=1)]),
    SoftParameterSharing=dict(type='SoftParameterSharing', tasks=['a', 'b'],
                              branch=dict(type='FPN', in_channels=[2, 3], out_channels=4,
                                          num_outs=2)),
)


@pytest.mark.parametrize('scope', ['mmdet', 'mmengine'])
@pytest.mark.parametrize('name', list(CONFIGS))
def test_builds_in_every_scope(name, scope):
    with DefaultScope.overwrite_default_scope(scope):
        module = MODELS.build(copy.deepcopy(CONFIGS[name]))
    assert type(module).__name__ == name
    if hasattr(module, 'init_weights'):
        module.init_weights()


def test_soft_sharing_snippet_builds_for_resnet18_features():
    cfg = Config.fromfile(SNIPPET)
    for scope in ('mmdet', 'mmengine'):
        with DefaultScope.overwrite_default_scope(scope):
            neck = MODELS.build(copy.deepcopy(cfg.soft_sharing_neck))
    feats = [torch.rand(1, c, 16 // 2**i, 16 // 2**i) for i, c in enumerate([64, 128, 256, 512])]
    outs = neck(feats, 'animal')
    assert [tuple(o.shape[1:]) for o in outs] == [(64, 8, 8), (64, 4, 4), (64, 2, 2),
                                                  (64, 1, 1), (64, 1, 1)]
    assert set(neck.loss()) == {'soft_sharing.loss_l2'}


def pool_align_detector():
    heads = {}
    for name, num_classes in (('person', 1), ('animal', 2)):
        heads[name] = retina(num_classes)
        heads[name]['anchor_generator']['strides'] = [16]
    return build_detector(
        heads=heads, neck=dict(type='AdaptivePoolAlign', output_size=4),
        backbone=dict(type='ResNet', depth=18, base_channels=8, out_indices=(1, ),
                      norm_cfg=dict(type='BN')))  # (B, 16, 8, 8) -> (B, 16, 4, 4)


@pytest.mark.parametrize('make', [
    lambda: build_detector(neck=dict(type='ChannelAlign', in_channels=[16, 32],
                                     out_channels=16, act_cfg=dict(type='ReLU'))),
    pool_align_detector,
], ids=['ChannelAlign', 'AdaptivePoolAlign'])
def test_alignment_as_detector_neck(make):
    model = make()
    data = model.data_preprocessor(batch(['person', 'animal', 'animal'], seed=1), True)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model.train()
        losses = model(**data, mode='loss')
        assert {'person.loss_cls', 'animal.loss_bbox'} <= set(losses)
        total = sum(v if torch.is_tensor(v) else sum(v) for k, v in losses.items()
                    if 'loss' in k)
        assert math.isfinite(total.item())
        total.backward()
        assert model.backbone.conv1.weight.grad.abs().sum() > 0
        model.eval()
        with torch.no_grad():
            preds = model(**data, mode='predict')
    assert len(preds) == 3 and all(p.pred_instances.bboxes.shape[1] == 4 for p in preds)
