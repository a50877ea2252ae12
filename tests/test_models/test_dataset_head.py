"""DatasetClsHead (dataset classification, optional DANN gradient reversal) and its use as
``aux_head`` of MultiHeadDetector."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from mmengine.structures import BaseDataElement

from mtl_plugin.models.heads import DatasetClsHead, GradientReversal, GradientReversalLayer
from tiny_models import META, batch, build_detector


def _samples(group_ids):
    return [BaseDataElement(metainfo=dict(group_id=g, group_name=f'g{g}')) for g in group_ids]


def _feats(seed=0, batch_size=4, channels=(8, 8)):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch_size, c, 4 + 2 * i, 4 + 2 * i, generator=g)
                 for i, c in enumerate(channels))


def _head(**kw):
    torch.manual_seed(0)
    cfg = dict(in_channels=8, num_groups=3, hidden_channels=16)
    cfg.update(kw)
    return DatasetClsHead(**cfg)


# ---------------------------------------------------------------------- gradient reversal
@pytest.mark.parametrize('lambd', [0.0, 0.37, 1.0, 2.5])
def test_gradient_reversal_multiplies_gradient_by_minus_lambda(lambd):
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    upstream = torch.tensor([0.5, 4.0, -1.5])
    y = GradientReversal.apply(x, lambd)
    assert torch.equal(y, x)  # identity forward
    (y * upstream).sum().backward()
    assert torch.allclose(x.grad, -lambd * upstream)

    layer = MODELS.build(dict(type='GradientReversalLayer', lambd=lambd))
    x2 = x.detach().clone().requires_grad_()
    (layer(x2) * upstream).sum().backward()
    assert torch.allclose(x2.grad, -lambd * upstream)


def test_gradient_reversal_layer_lambd_is_settable_and_validated():
    layer = GradientReversalLayer()
    layer.lambd = 0.25
    x = torch.ones(2, requires_grad=True)
    layer(x).sum().backward()
    assert torch.allclose(x.grad, torch.full((2, ), -0.25))
    for bad in (-1.0, float('nan'), float('inf')):
        with pytest.raises(ValueError, match='lambd'):
            layer.lambd = bad
    with pytest.raises(TypeError, match='lambd'):
        GradientReversalLayer(lambd='1')


# ---------------------------------------------------------------------- DatasetClsHead
def test_loss_is_weighted_cross_entropy_with_accuracy():
    head = MODELS.build(dict(type='DatasetClsHead', in_channels=8, num_groups=3,
                             hidden_channels=16, loss_weight=0.3))
    feats = _feats()
    samples = _samples([0, 2, 1, 2])
    target = torch.tensor([0, 2, 1, 2])
    # manual forward: GAP of the last level -> MLP
    pooled = feats[-1].mean(dim=(2, 3))
    fc1, fc2 = head.classifier[0], head.classifier[2]
    logits = fc2(torch.relu(fc1(pooled)))
    assert torch.allclose(head(feats), logits, atol=1e-6)

    losses = head.loss(feats, samples)
    assert set(losses) == {'loss_dataset_cls', 'acc_dataset_cls'}
    expected = 0.3 * F.cross_entropy(logits, target)
    assert torch.allclose(losses['loss_dataset_cls'], expected, atol=1e-6)
    acc = (logits.argmax(1) == target).float().mean() * 100
    assert torch.allclose(losses['acc_dataset_cls'], acc)
    assert not losses['acc_dataset_cls'].requires_grad
    probs = head.predict(feats)
    assert probs.shape == (4, 3)
    assert torch.allclose(probs.sum(1), torch.ones(4))
    assert torch.allclose(probs, logits.softmax(1), atol=1e-6)


def test_exact_cross_entropy_and_accuracy_on_known_logits():
    head = _head(hidden_channels=None, num_groups=2, in_channels=2, loss_weight=1.0)
    with torch.no_grad():  # logits = pooled features
        head.classifier.weight.copy_(torch.eye(2))
        head.classifier.bias.zero_()
    pooled = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 0.0]])
    feats = (pooled[:, :, None, None].expand(4, 2, 3, 3).contiguous(), )
    losses = head.loss(feats, _samples([0, 1, 1, 0]))
    # sample 0: right, 1: right, 2: wrong, 3: tie -> argmax 0 = right  => 75 %
    expected = sum(-torch.log_softmax(pooled[i], 0)[t] for i, t in enumerate([0, 1, 1, 0])) / 4
    assert math.isclose(losses['loss_dataset_cls'].item(), expected.item(), rel_tol=1e-6)
    assert losses['acc_dataset_cls'].item() == pytest.approx(75.0)


def test_loss_weight_factor_and_schedulable_attributes():
    feats, samples = _feats(), _samples([0, 1, 2, 0])
    head = _head(loss_weight=1.0)
    base = head.loss(feats, samples)['loss_dataset_cls']
    for w in (0.0, 0.15, 0.4, 2.0):
        head.loss_weight = w  # as CurriculumLearningHook's setattr does
        assert isinstance(head.loss_weight, float)
        assert torch.allclose(head.loss(feats, samples)['loss_dataset_cls'], base * w)
    head.grl_lambda = 0.5
    assert head.grl_lambda == 0.5


def test_feat_index_all_concatenates_pooled_levels():
    feats = _feats(channels=(8, 6))
    head = _head(in_channels=[8, 6], feat_index='all')
    pooled = torch.cat([f.mean(dim=(2, 3)) for f in feats], 1)  # (B, 14)
    assert torch.allclose(head(feats), head.classifier(pooled), atol=1e-6)
    # an int in_channels with num_levels
    feats = _feats(channels=(8, 8, 8))
    head = _head(in_channels=8, feat_index='all', num_levels=3)
    pooled = torch.cat([f.mean(dim=(2, 3)) for f in feats], 1)
    assert torch.allclose(head(feats), head.classifier(pooled), atol=1e-6)
    # feat_index selects one level
    head = _head(in_channels=6, feat_index=0)
    with pytest.raises(ValueError, match=r'channels \[6\]'):
        head(_feats(channels=(8, 6)))
    assert head(_feats(channels=(6, 8))).shape == (4, 3)


def test_group_ids_map_group_ids_to_classes():
    feats = _feats()
    head = _head(num_groups=2, group_ids=[3, 7])  # class 0 = group 3, class 1 = group 7
    assert head.targets(_samples([7, 3, 7])) == [1, 0, 1]
    head = _head(num_groups=2, group_ids={0: 0, 1: 1, 2: 1})  # groups 1 and 2 share a class
    assert head.targets(_samples([2, 0, 1])) == [1, 0, 1]
    logits = head(feats)
    expected = head.loss_weight * F.cross_entropy(logits, torch.tensor([1, 0, 1, 1]))
    assert torch.allclose(head.loss(feats, _samples([2, 0, 1, 2]))['loss_dataset_cls'],
                          expected, atol=1e-6)


@pytest.mark.parametrize('lambd', [1.0, 0.3])
def test_gradient_reversal_reverses_gradient_of_input_features(lambd):
    samples = _samples([0, 1, 2, 1])
    grads = {}
    for reverse in (False, True):
        head = _head(gradient_reversal=reverse, grl_lambda=lambd, loss_weight=0.5,
                     feat_index='all', in_channels=[8, 8])
        feats = tuple(f.requires_grad_() for f in _feats())
        losses = head.loss(feats, samples)
        losses['loss_dataset_cls'].backward()
        grads[reverse] = ([f.grad for f in feats],
                          [p.grad.clone() for p in head.parameters()],
                          losses['loss_dataset_cls'].detach())
    plain, reversed_ = grads[False], grads[True]
    assert torch.equal(plain[2], reversed_[2])  # same forward / loss value
    for a, b in zip(plain[0], reversed_[0]):
        assert a.abs().sum() > 0
        assert torch.allclose(b, -lambd * a, atol=1e-7)
    for a, b in zip(plain[1], reversed_[1]):  # the classifier itself is unaffected
        assert torch.allclose(a, b)


def test_errors_name_the_culprit():
    with pytest.raises(ValueError, match='num_groups'):
        DatasetClsHead(in_channels=8, num_groups=1)
    for name in ('loss_weight', 'grl_lambda'):
        for bad in (-0.1, float('nan'), float('inf')):
            with pytest.raises(ValueError, match=name):
                DatasetClsHead(in_channels=8, num_groups=2, **{name: bad})
        with pytest.raises(TypeError, match=name):
            DatasetClsHead(in_channels=8, num_groups=2, **{name: None})
    head = _head(num_groups=2)
    with pytest.raises(ValueError, match='loss_weight'):
        head.loss_weight = float('nan')  # a schedule writing a bad value fails loudly
    with pytest.raises(ValueError, match=r'group_id=5'):
        head.loss(_feats(), _samples([0, 1, 5, 0]))
    with pytest.raises(KeyError, match='group_id'):
        head.loss(_feats(), [BaseDataElement(metainfo=dict(group_name='x'))] * 4)
    with pytest.raises(ValueError, match='feat_index'):
        DatasetClsHead(in_channels=8, num_groups=2, feat_index='last')
    with pytest.raises(ValueError, match='num_levels'):
        DatasetClsHead(in_channels=8, num_groups=2, feat_index='all')
    with pytest.raises(ValueError, match='in_channels'):
        DatasetClsHead(in_channels=[8, 8], num_groups=2)
    with pytest.raises(ValueError, match='group_ids'):
        DatasetClsHead(in_channels=8, num_groups=2, group_ids=[0, 0])
    with pytest.raises(ValueError, match='group_ids'):
        DatasetClsHead(in_channels=8, num_groups=2, group_ids={0: 0, 1: 2})
    with pytest.raises(ValueError, match='hidden_channels'):
        DatasetClsHead(in_channels=8, num_groups=2, hidden_channels=0)
    with pytest.raises(IndexError, match='feat_index=5'):
        _head(feat_index=5)(_feats())


# ---------------------------------------------------------------------- as aux_head
AUX = dict(type='DatasetClsHead', in_channels=16, num_groups=2)


def _aux_detector(**aux):
    model = build_detector(aux_head=dict(AUX, **aux))
    model.dataset_meta = META
    model.train()
    return model


def test_aux_head_losses_in_multi_head_detector():
    model = _aux_detector()
    assert isinstance(model.aux_head, DatasetClsHead)
    data = model.data_preprocessor(batch(['animal', 'person', 'animal'], seed=1), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'aux.loss_dataset_cls', 'aux.acc_dataset_cls'} <= set(losses)
    assert any(k.startswith('person.') for k in losses)
    assert any(k.startswith('animal.') for k in losses)
    # computed on the full batch: equals the head's loss on all features
    feats = model.extract_feat(data['inputs'])
    expected = model.aux_head.loss(feats, data['data_samples'])
    assert torch.allclose(losses['aux.loss_dataset_cls'], expected['loss_dataset_cls'])
    total, log_vars = model.parse_losses(losses)
    assert 'aux.acc_dataset_cls' in log_vars and torch.isfinite(total)
    # an ordinary detector has no aux head
    assert build_detector().aux_head is None


def test_aux_head_gradient_reversal_flips_backbone_gradient():
    lambd = 0.5
    data = None
    grads = {}
    for reverse in (False, True):
        model = _aux_detector(gradient_reversal=reverse, grl_lambda=lambd)
        if data is None:
            data = model.data_preprocessor(batch(['person', 'animal'], seed=2), True)
        model.zero_grad()
        model.loss(data['inputs'], data['data_samples'])['aux.loss_dataset_cls'].backward()
        shared = {f'{part}.{n}': p.grad.clone()
                  for part in ('backbone', 'neck')
                  for n, p in getattr(model, part).named_parameters() if p.grad is not None}
        grads[reverse] = dict(shared=shared,
                              aux=[p.grad.clone() for p in model.aux_head.parameters()])
        assert all(p.grad is None for p in model.heads.parameters())
    plain, rev = grads[False]['shared'], grads[True]['shared']
    assert plain.keys() == rev.keys()
    assert 'backbone.conv1.weight' in plain and any(k.startswith('neck.') for k in plain)
    for name in plain:
        assert torch.allclose(rev[name], -lambd * plain[name], rtol=1e-4, atol=1e-7), name
    conv1 = plain['backbone.conv1.weight']
    assert conv1.abs().sum() > 0
    # sign-wise: every non-negligible backbone gradient entry flips its sign
    big = conv1.abs() > 1e-3 * conv1.abs().max()
    assert torch.equal(torch.sign(rev['backbone.conv1.weight'][big]), -torch.sign(conv1[big]))
    for a, b in zip(grads[False]['aux'], grads[True]['aux']):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-8)


def test_curriculum_style_loss_weight_change_scales_aux_loss():
    model = _aux_detector(loss_weight=0.4)
    model.eval()  # frozen BN statistics: two calls see the same features
    data = model.data_preprocessor(batch(['person', 'animal'], seed=3), True)
    first = model.loss(data['inputs'], data['data_samples'])['aux.loss_dataset_cls']
    # what CurriculumLearningHook does for dict(param='model.aux_head.loss_weight', ...)
    setattr(model.aux_head, 'loss_weight', 0.15)
    second = model.loss(data['inputs'], data['data_samples'])['aux.loss_dataset_cls']
    assert torch.allclose(second, first * 0.15 / 0.4, rtol=1e-5)


def test_aux_head_losses_in_multi_head_pose_estimator(shared_real):
    import copy

    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS, init_default_scope

    from conftest import REPO
    init_default_scope('mmpose')
    cfg = Config.fromfile(
        f'{REPO}/configs/pose/multihead-td-hm_res18_1xb4-1e_coco-ap10k-128x96.py')
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    for src in ds_cfg.datasets:
        src.data_root = shared_real + '/'
    dataset = DATASETS.build(ds_cfg)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.update(aux_head=dict(type='DatasetClsHead', in_channels=512, num_groups=2,
                                   gradient_reversal=True, grl_lambda=0.5))
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.dataset_meta = dataset.metainfo
    model.train()
    idx = [list(dataset.group_ids).index(0), list(dataset.group_ids).index(1)]
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in idx]), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'aux.loss_dataset_cls', 'aux.acc_dataset_cls'} <= set(losses)
    assert any(k.startswith('person.') for k in losses)
    feats = model.extract_feat(data['inputs'])
    assert torch.allclose(losses['aux.loss_dataset_cls'],
                          model.aux_head.loss(feats, data['data_samples'])['loss_dataset_cls'])
