"""Group-weighted losses (mtl_plugin.models.losses): exact values vs hand computations."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData
from mmpose.structures import PoseDataSample

import mtl_plugin.models.losses as L  # noqa: F401  (registers the modules)
from mtl_plugin.models.losses import (GroupContextError,
                                      GroupWeightedFocalHeatmapLoss,
                                      GroupWeightedKeypointMSELoss, GroupWeightedLoss,
                                      clear_group_context, get_group_context, group_context,
                                      has_group_context, set_group_context)

ATOL = 1e-6


@pytest.fixture(autouse=True)
def _no_context_leak():
    clear_group_context()
    yield
    clear_group_context()


def det_samples(groups):
    out = []
    for gid, name in groups:
        s = DetDataSample()
        s.set_metainfo(dict(group_id=gid, group_name=name, img_shape=(32, 32),
                            pad_shape=(32, 32), batch_input_shape=(32, 32),
                            scale_factor=(1.0, 1.0)))
        out.append(s)
    return out


# the dataset the contexts come from: 'easy' (id 0) has 3 samples, 'hard' (id 1) has 1, so
# normalised weights divide by the dataset's mean weight: {1: 2.0} -> (3 * 1 + 1 * 2) / 4
DATASET = dict(groups={'easy': 0, 'hard': 1}, group_sizes={'easy': 3, 'hard': 1})
REF = 1.25


def close(a, b, atol=ATOL):
    return torch.allclose(torch.as_tensor(a, dtype=torch.float64),
                          torch.as_tensor(b, dtype=torch.float64), atol=atol, rtol=1e-5)


# ------------------------------------------------------------------ group context
def test_context_manager_nests_and_restores():
    assert not has_group_context()
    outer = det_samples([(0, 'a'), (1, 'b'), (1, 'b')])
    inner = det_samples([(1, 'b')])
    with group_context(outer) as ctx:
        assert ctx.group_ids.tolist() == [0, 1, 1] and ctx.group_names == ['a', 'b', 'b']
        with group_context(inner):
            assert get_group_context().group_ids.tolist() == [1]
        assert get_group_context().group_ids.tolist() == [0, 1, 1]
        with pytest.raises(ZeroDivisionError):
            with group_context(group_ids=torch.tensor([5]), group_names=['x']):
                assert get_group_context().group_names == ['x']
                1 / 0
        assert get_group_context().group_ids.tolist() == [0, 1, 1]  # restored on error
    assert not has_group_context()
    prev = set_group_context([2, 3], ['c', 'd'])
    assert prev is None and get_group_context().group_ids.dtype == torch.long
    assert clear_group_context().group_names == ['c', 'd']


def test_missing_context_error():
    with pytest.raises(GroupContextError, match="dict\\(type='GroupAwareModel'"):
        get_group_context()
    loss = GroupWeightedKeypointMSELoss(group_id_weight={1: 2.0})
    with pytest.raises(GroupContextError, match='MultiHeadDetector/MultiHeadPoseEstimator'):
        loss(torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4))
    with pytest.raises(GroupContextError, match='group_id'):  # sample without group
        with group_context([DetDataSample()]):
            pass
    with pytest.raises(ValueError, match='exactly one'):
        with group_context():
            pass
    with pytest.raises(ValueError, match='one name per sample'):
        set_group_context([0, 1], ['a'])


def test_group_aware_model_sets_and_clears():
    """The context exists exactly while the wrapped model's loss() runs."""
    from mmengine.model import BaseModel
    from mmengine.registry import HOOKS, MODELS

    from mtl_plugin.models import GroupAwareModel

    seen = []

    class Stock(BaseModel):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 1, 1)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            return self.loss(inputs, data_samples) if mode == 'loss' else inputs

        def loss(self, inputs, data_samples):
            seen.append(get_group_context())
            return dict(loss=self.conv(torch.stack(inputs)).mean())

    stock = Stock()
    model = GroupAwareModel(stock)
    assert model is stock and type(model) is Stock
    assert list(model.state_dict()) == ['conv.weight', 'conv.bias']  # checkpoint keys kept
    batch = dict(inputs=[torch.zeros(3, 8, 8)] * 2,
                 data_samples=det_samples([(1, 'hard'), (0, 'easy')]))
    model(**batch, mode='loss')
    ctx = seen[-1]
    assert ctx.group_ids.tolist() == [1, 0] and ctx.group_names == ['hard', 'easy']
    assert not has_group_context()
    with pytest.raises(GroupContextError, match='data_samples'):
        model.loss(batch['inputs'], None)
    assert not has_group_context()
    assert GroupAwareModel(model) is model  # idempotent: loss() is wrapped once
    # the old hook is a shim that names the fix
    for reg in (HOOKS, __import__('mmdet.registry', fromlist=['HOOKS']).HOOKS,
                __import__('mmpose.registry', fromlist=['HOOKS']).HOOKS):
        with pytest.raises(TypeError, match=r"GroupContextHook was removed.*"
                                            r"model=dict\(type='GroupAwareModel'"):
            reg.build(dict(type='GroupContextHook'))
    assert isinstance(MODELS.build(dict(type='GroupAwareModel', model=Stock())), Stock)


# ------------------------------------------------------------------ MSE heatmap loss
def test_keypoint_mse_exact_weights():
    torch.manual_seed(0)
    out, tgt = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    l_b = ((out - tgt) ** 2).mean(dim=(1, 2, 3))  # per-sample mean loss
    l0, l1 = l_b.tolist()
    with group_context(group_ids=[0, 1], group_names=['easy', 'hard']):
        raw = GroupWeightedKeypointMSELoss(group_id_weight={1: 2.0}, normalize=False)
        norm = GroupWeightedKeypointMSELoss(group_id_weight={1: 2.0})
        assert close(raw(out, tgt), (1 * l0 + 2 * l1) / 2)
        with pytest.raises(GroupContextError, match="normalize=True.*dataset's groups"):
            norm(out, tgt)  # bare ids: no dataset-level reference
        by_name = GroupWeightedKeypointMSELoss(group_id_weight={'hard': 2.0},
                                               normalize=False, loss_weight=0.5)
        assert close(by_name(out, tgt), 0.5 * (1 * l0 + 2 * l1) / 2)
        # a name not in the context -> every sample weighs 1.0
        other = GroupWeightedKeypointMSELoss(group_id_weight={'nope': 3.0}, normalize=False)
        assert close(other(out, tgt), F.mse_loss(out, tgt))
    with group_context(group_ids=[0, 1], group_names=['easy', 'hard'], **DATASET):
        assert close(norm(out, tgt), (1 * l0 + 2 * l1) / REF / 2)
    # one group only: the weight still acts (the reference is the dataset's, not the
    # batch's): a batch of weight-2 samples weighs 2 / REF, and 100 differs from 2
    from mmpose.models.losses import KeypointMSELoss
    tw = torch.tensor([[1.0, 0.0, 0.5], [1.0, 1.0, 0.0]])
    plain = KeypointMSELoss(use_target_weight=True)(out, tgt, tw)
    with group_context(group_ids=[1, 1], **DATASET):
        assert close(GroupWeightedKeypointMSELoss(True, group_id_weight={1: 2.0})(out, tgt, tw),
                     2 / REF * plain)
        assert close(GroupWeightedKeypointMSELoss(True, group_id_weight={1: 100.0})(
            out, tgt, tw), 100 / ((3 + 100) / 4) * plain)
        assert close(GroupWeightedKeypointMSELoss(True, group_id_weight={1: 2.0},
                                                  normalize=False)(out, tgt, tw), 2 * plain)
    with group_context(group_ids=[0, 0], **DATASET):  # the weight-1 group: 1 / REF
        assert close(GroupWeightedKeypointMSELoss(True, group_id_weight={1: 2.0})(out, tgt, tw),
                     plain / REF)
    # no weights configured: the MMPose loss, no context needed
    assert torch.equal(GroupWeightedKeypointMSELoss(True)(out, tgt, tw), plain)


def test_keypoint_mse_target_weights_mask_skip_empty():
    torch.manual_seed(1)
    out, tgt = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    tgt[0, 2] = 0  # empty channel
    tw = torch.tensor([[1.0, 0.5, 1.0], [0.0, 1.0, 2.0]])
    mask = (torch.rand(2, 1, 4, 4) > 0.3).float()
    m = tw[:, :, None, None] * mask * (tgt != 0).flatten(2).any(2)[:, :, None, None]
    l_b = (((out - tgt) ** 2) * m).mean(dim=(1, 2, 3))
    with group_context(group_ids=[0, 1], **DATASET):
        loss = GroupWeightedKeypointMSELoss(use_target_weight=True, skip_empty_channel=True,
                                            group_id_weight={0: 3.0, 1: 1.0})
        w = torch.tensor([3.0, 1.0]) / ((3 * 3.0 + 1 * 1.0) / 4)
        assert close(loss(out, tgt, tw, mask), (w * l_b).mean())


def test_batch_size_mismatch_error():
    with group_context(group_ids=[0, 1, 1]):
        with pytest.raises(GroupContextError, match='holds 3 samples.*batch of 2'):
            GroupWeightedKeypointMSELoss(group_id_weight={1: 2.0})(
                torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4))


# ------------------------------------------------------------------ focal heatmap loss
def focal_reference(pred, target, alpha, beta, kpt_w=None, eps=1e-6, sample_w=None):
    """Straightforward loop implementation of the CornerNet focal heatmap loss."""
    B, K, H, W = pred.shape
    total, num_pos = 0.0, 0.0
    for b in range(B):
        s = 0.0
        for k in range(K):
            kw = 1.0 if kpt_w is None else float(kpt_w[b, k])
            for i in range(H):
                for j in range(W):
                    p = min(max(float(pred[b, k, i, j]), eps), 1 - eps)
                    t = float(target[b, k, i, j])
                    if t == 1:
                        s += -kw * (1 - p) ** alpha * math.log(p)
                        num_pos += kw
                    else:
                        s += -kw * (1 - t) ** beta * p ** alpha * math.log(1 - p)
        total += (1.0 if sample_w is None else sample_w[b]) * s
    return total / (num_pos if num_pos > 0 else 1.0)


def focal_case():
    torch.manual_seed(2)
    pred = torch.rand(2, 2, 3, 3)
    pred[0, 0, 0, 0] = 0.0  # exercises the clamp
    target = torch.rand(2, 2, 3, 3) * 0.9
    target[0, 0, 1, 1] = 1.0
    target[0, 1, 2, 0] = 1.0
    target[1, 1, 0, 2] = 1.0
    return pred, target


def test_mmpose_ships_focal_heatmap_loss():
    import inspect

    from mmpose.models.losses.heatmap_loss import FocalHeatmapLoss
    assert issubclass(GroupWeightedFocalHeatmapLoss, FocalHeatmapLoss)
    assert 'FocalHeatmapLoss' in inspect.getsource(GroupWeightedFocalHeatmapLoss)


def test_focal_heatmap_vs_reference():
    pred, target = focal_case()
    kw = torch.tensor([[1.0, 0.5], [0.0, 1.0]])
    with group_context(group_ids=[0, 1], group_names=['easy', 'hard'], **DATASET):
        plain = GroupWeightedFocalHeatmapLoss(alpha=2.0, beta=4.0)
        assert close(plain(pred, target), focal_reference(pred, target, 2, 4), 1e-5)
        # no group weights -> MMPose FocalHeatmapLoss on the clamped prediction
        from mmpose.models.losses.heatmap_loss import FocalHeatmapLoss
        assert close(plain(pred, target),
                     FocalHeatmapLoss()(pred.clamp(1e-6, 1 - 1e-6), target))
        tw = GroupWeightedFocalHeatmapLoss(use_target_weight=True, loss_weight=2.0)
        assert close(tw(pred, target, kw), 2 * focal_reference(pred, target, 2, 4, kw), 1e-5)
        raw = GroupWeightedFocalHeatmapLoss(alpha=1.5, beta=3.0, use_target_weight=True,
                                            group_id_weight={'hard': 2.0}, normalize=False)
        assert close(raw(pred, target, kw),
                     focal_reference(pred, target, 1.5, 3.0, kw, sample_w=[1, 2]), 1e-5)
        norm = GroupWeightedFocalHeatmapLoss(group_id_weight={1: 2.0})
        assert close(norm(pred, target),
                     focal_reference(pred, target, 2, 4, sample_w=[1 / REF, 2 / REF]), 1e-5)
    with group_context(group_ids=[1, 1], **DATASET):
        assert close(norm(pred, target), 2 / REF * plain(pred, target))
        raw1 = GroupWeightedFocalHeatmapLoss(group_id_weight={1: 2.0}, normalize=False)
        assert close(raw1(pred, target), 2 * plain(pred, target))


def test_focal_heatmap_no_positives():
    pred, target = focal_case()
    target = target.clamp(max=0.9)
    with group_context(group_ids=[0, 1]):
        loss = GroupWeightedFocalHeatmapLoss(group_id_weight={1: 3.0}, normalize=False)
        val = loss(pred, target)
        assert torch.isfinite(val)
        assert close(val, focal_reference(pred, target, 2, 4, sample_w=[1, 3]), 1e-5)


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize('cls', [GroupWeightedKeypointMSELoss, GroupWeightedFocalHeatmapLoss])
@pytest.mark.parametrize('gw, exc, msg', [
    ([1, 2], TypeError, 'must be a dict'),
    ({1.5: 2.0}, TypeError, 'key 1.5'),
    ({True: 2.0}, TypeError, 'key True'),
    ({1: 'x'}, TypeError, r"group_id_weight\[1\] = 'x'"),
    ({1: 0.0}, ValueError, r'group_id_weight\[1\] = 0.0 must be finite and > 0'),
    ({'hard': -1}, ValueError, r"group_id_weight\['hard'\] = -1.0"),
    ({1: float('inf')}, ValueError, 'finite'),
    ({1: float('nan')}, ValueError, 'finite'),
])
def test_validation_errors(cls, gw, exc, msg):
    with pytest.raises(exc, match=msg):
        cls(group_id_weight=gw)


def test_validation_errors_misc():
    with pytest.raises(TypeError, match='normalize must be True or False'):
        GroupWeightedKeypointMSELoss(group_id_weight={1: 2.0}, normalize=1)
    with pytest.raises(TypeError, match='normalize must be True or False'):
        GroupWeightedLoss(dict(type='mmdet.L1Loss'), {1: 2.0}, normalize='yes')
    with pytest.raises(TypeError, match='must be a dict'):
        GroupWeightedLoss(dict(type='mmdet.L1Loss'), None)
    with pytest.raises(ValueError, match=r'group_id_weight\[1\] = -2.0'):
        GroupWeightedLoss(dict(type='mmdet.L1Loss'), {1: -2.0})
    with pytest.raises(TypeError, match='loss config dict'):
        GroupWeightedLoss('FocalLoss', {1: 2.0})
    with pytest.raises(ValueError, match='add use_sigmoid=True next to'):
        GroupWeightedLoss(dict(type='mmdet.FocalLoss', use_sigmoid=True), {1: 2.0})
    with pytest.raises(ValueError, match='make them equal'):
        GroupWeightedLoss(dict(type='mmdet.FocalLoss', use_sigmoid=True), {1: 2.0},
                          use_sigmoid=False)
    # an id key and a name key matching one sample must agree
    loss = GroupWeightedKeypointMSELoss(group_id_weight={1: 2.0, 'hard': 3.0})
    with group_context(group_ids=[1], group_names=['hard']):
        with pytest.raises(ValueError, match='matches both'):
            loss(torch.rand(1, 1, 2, 2), torch.rand(1, 1, 2, 2))


# ------------------------------------------------------------------ registries / scopes
def test_build_from_scopes():
    from mmdet.registry import MODELS as DET
    from mmengine.registry import MODELS as ROOT
    from mmpose.registry import MODELS as POSE
    assert POSE.parent is ROOT and DET.parent is ROOT
    for reg in (DET, POSE, ROOT):
        assert isinstance(reg.build(dict(type='GroupWeightedKeypointMSELoss',
                                         group_id_weight={1: 2.0})),
                          GroupWeightedKeypointMSELoss)
        assert isinstance(reg.build(dict(type='GroupWeightedFocalHeatmapLoss',
                                         group_id_weight={'hard': 2.0})),
                          GroupWeightedFocalHeatmapLoss)
        w = reg.build(dict(type='GroupWeightedLoss', use_sigmoid=True,
                           loss=dict(type='mmdet.FocalLoss', use_sigmoid=True),
                           group_id_weight={1: 2.0}))
        assert isinstance(w, GroupWeightedLoss)
        assert w.use_sigmoid is True and w.loss_weight == 1.0  # delegated
    # an unprefixed mmdet type is found without default scope
    w = ROOT.build(dict(type='GroupWeightedLoss', loss=dict(type='L1Loss', loss_weight=3.0),
                        group_id_weight={1: 2.0}))
    assert type(w.loss).__name__ == 'L1Loss' and w.loss_weight == 3.0
    assert not getattr(w, 'custom_cls_channels', False)
    with pytest.raises(AttributeError):
        w.no_such_attribute


# ------------------------------------------------------------------ GroupWeightedLoss
def test_wrapper_row_weights_shapes():
    from mmdet.models.losses import FocalLoss, L1Loss
    torch.manual_seed(3)
    n_per = 3
    pred, labels = torch.randn(6, 2), torch.tensor([0, 2, 1, 2, 2, 0])
    label_w = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    rows = torch.tensor([1.0] * n_per + [2.0] * n_per)
    with group_context(group_ids=[0, 1], **DATASET):
        w = GroupWeightedLoss(dict(type='mmdet.FocalLoss', use_sigmoid=True), {1: 2.0},
                              normalize=False, use_sigmoid=True)
        ref = FocalLoss(use_sigmoid=True)
        assert close(w(pred, labels, label_w, avg_factor=4.0),
                     ref(pred, labels, label_w * rows, avg_factor=4.0))
        assert close(w(pred, labels), ref(pred, labels, rows))  # weight=None: (N,)
        cw = torch.rand(6, 2)  # (N, C) weights
        assert close(w(pred, labels, cw, avg_factor=2.0),
                     ref(pred, labels, cw * rows[:, None], avg_factor=2.0))
        b = GroupWeightedLoss(dict(type='mmdet.L1Loss'), {1: 2.0})
        bp, bt, bw = torch.randn(6, 4), torch.randn(6, 4), torch.rand(6, 4)
        nrows = rows / REF
        assert close(b(bp, bt, bw, avg_factor=5.0),
                     L1Loss()(bp, bt, bw * nrows[:, None], avg_factor=5.0))
        assert close(b(bp, bt), ((bp - bt).abs() * nrows[:, None]).mean())
        with pytest.raises(ValueError, match='7 rows but the group context holds 2'):
            b(torch.randn(7, 4), torch.randn(7, 4))
        with pytest.raises(ValueError, match='does not have the 6 rows'):
            b(bp, bt, torch.rand(5, 4))


TRAIN_CFG = dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4,
                               min_pos_iou=0, ignore_iof_thr=-1),
                 sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1,
                 debug=False)


def retina_head(loss_cls, loss_bbox):
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):  # other tests may leave 'mmpose'
        return _build_retina(MODELS, loss_cls, loss_bbox)


def _build_retina(MODELS, loss_cls, loss_bbox):
    return MODELS.build(dict(
        type='mmdet.RetinaHead', num_classes=2, in_channels=8, feat_channels=8,
        stacked_convs=1,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                              scales_per_octave=1, ratios=[1.0], strides=[8]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder'), loss_cls=loss_cls, loss_bbox=loss_bbox,
        train_cfg=TRAIN_CFG))


def retina_inputs():
    torch.manual_seed(4)
    feats = [torch.randn(2, 8, 4, 4)]
    gts = [InstanceData(bboxes=torch.tensor([[2.0, 3.0, 20.0, 22.0]]),
                        labels=torch.tensor([0])),
           InstanceData(bboxes=torch.tensor([[10.0, 8.0, 30.0, 31.0], [0.0, 0.0, 12.0, 14.0]]),
                        labels=torch.tensor([1, 0]))]
    metas = [dict(img_shape=(32, 32), pad_shape=(32, 32), batch_input_shape=(32, 32))] * 2
    return feats, gts, metas


def retina_losses(head, feats, gts, metas):
    cls_scores, bbox_preds = head(feats)
    losses = head.loss_by_feat(cls_scores, bbox_preds, gts, metas)
    return sum(losses['loss_cls']), sum(losses['loss_bbox'])


PLAIN_CLS = dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25)
PLAIN_BOX = dict(type='mmdet.L1Loss')


def wrapped(normalize):
    return (dict(type='GroupWeightedLoss', use_sigmoid=True, loss=PLAIN_CLS,
                 group_id_weight={1: 2.0}, normalize=normalize),
            dict(type='GroupWeightedLoss', loss=PLAIN_BOX, group_id_weight={'hard': 2.0},
                 normalize=normalize))


def test_retina_head_single_group():
    feats, gts, metas = retina_inputs()
    plain = retina_head(PLAIN_CLS, PLAIN_BOX)
    assert plain.cls_out_channels == 2
    p_cls, p_box = retina_losses(plain, feats, gts, metas)
    assert p_cls > 0 and p_box > 0
    with group_context(group_ids=[1, 1], group_names=['hard', 'hard'], **DATASET):
        raw = retina_head(*wrapped(False))
        assert raw.cls_out_channels == 2 and raw.use_sigmoid_cls
        raw.load_state_dict(plain.state_dict())
        r_cls, r_box = retina_losses(raw, feats, gts, metas)
        assert close(r_cls, 2 * p_cls) and close(r_box, 2 * p_box)
        norm = retina_head(*wrapped(True))
        norm.load_state_dict(plain.state_dict())
        n_cls, n_box = retina_losses(norm, feats, gts, metas)
        assert close(n_cls, 2 / REF * p_cls) and close(n_box, 2 / REF * p_box)


def test_retina_head_mixed_batch():
    from mmdet.models.losses import FocalLoss, L1Loss
    feats, gts, metas = retina_inputs()
    plain = retina_head(PLAIN_CLS, PLAIN_BOX)
    calls = []
    orig_cls, orig_box = plain.loss_cls.forward, plain.loss_bbox.forward

    def rec(kind, fn):
        def f(pred, target, weight=None, avg_factor=None, **kw):
            calls.append((kind, pred, target, weight, avg_factor))
            return fn(pred, target, weight, avg_factor=avg_factor, **kw)
        return f

    plain.loss_cls.forward = rec('cls', orig_cls)
    plain.loss_bbox.forward = rec('box', orig_box)
    retina_losses(plain, feats, gts, metas)
    (_, cp, ct, cw, af), (_, bp, bt, bw, af2) = calls
    rows_per_img = 4 * 4 * 1  # H * W * anchors
    assert cp.shape[0] == 2 * rows_per_img
    for normalize, scale in ((False, 1.0), (True, REF)):
        # groups [0, 1]: explicit per-row weights, image-major
        r = torch.cat([torch.full((rows_per_img, ), 1.0),
                       torch.full((rows_per_img, ), 2.0)]) / scale
        exp_cls = FocalLoss(use_sigmoid=True)(cp, ct, cw * r, avg_factor=af)
        exp_box = L1Loss()(bp, bt, bw * r[:, None], avg_factor=af2)
        # and image by image: sum of per-image weighted sums / avg_factor
        from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss
        onehot = F.one_hot(ct, 3)[:, :2]  # background (2) -> all zeros
        per_img = [py_sigmoid_focal_loss(cp[s], onehot[s], cw[s, None], reduction='sum')
                   for s in (slice(0, 16), slice(16, 32))]
        assert close(exp_cls, (1 * per_img[0] + 2 * per_img[1]) / scale / af, 1e-5)
        with group_context(group_ids=[0, 1], group_names=['easy', 'hard'], **DATASET):
            head = retina_head(*wrapped(normalize))
            head.load_state_dict(plain.state_dict())
            g_cls, g_box = retina_losses(head, feats, gts, metas)
        assert close(g_cls, exp_cls) and close(g_box, exp_box)


# ------------------------------------------------------------------ MMPose HeatmapHead
def test_mmpose_heatmap_head_with_group_loss():
    from mmengine.registry import DefaultScope
    from mmpose.registry import MODELS
    torch.manual_seed(5)
    with DefaultScope.overwrite_default_scope('mmpose'):  # other tests may leave 'mmdet'
        head = MODELS.build(dict(type='HeatmapHead', in_channels=8, out_channels=3,
                                 deconv_out_channels=None,
                                 loss=dict(type='GroupWeightedKeypointMSELoss',
                                           use_target_weight=True, group_id_weight={1: 2.0})))
    assert isinstance(head.loss_module, GroupWeightedKeypointMSELoss)
    feats = (torch.randn(2, 8, 4, 4), )
    samples = []
    for gid, name in ((0, 'easy'), (1, 'hard')):
        s = PoseDataSample()
        s.set_metainfo(dict(group_id=gid, group_name=name, **DATASET))
        s.gt_fields = PixelData(heatmaps=torch.rand(3, 4, 4))
        s.gt_instance_labels = InstanceData(keypoint_weights=torch.tensor([[1.0, 0.5, 0.0]]))
        samples.append(s)
    with pytest.raises(GroupContextError):
        head.loss(feats, samples, train_cfg=dict(compute_acc=False))
    with group_context(samples):
        losses = head.loss(feats, samples)
    assert set(losses) == {'loss_kpt', 'acc_pose'}
    with torch.no_grad():
        pred = head.forward(feats)
    gt = torch.stack([s.gt_fields.heatmaps for s in samples])
    kw = torch.cat([s.gt_instance_labels.keypoint_weights for s in samples])
    l_b = (((pred - gt) ** 2) * kw[:, :, None, None]).mean(dim=(1, 2, 3))
    assert close(losses['loss_kpt'], (1 * l_b[0] + 2 * l_b[1]) / REF / 2)
    losses['loss_kpt'].backward()
    assert head.final_layer.weight.grad is not None
