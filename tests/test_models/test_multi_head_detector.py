import copy
from types import SimpleNamespace
from unittest import mock

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.structures import InstanceData

from mtl_plugin.engine import HeadIsolationHook
from tiny_models import GROUP_CLASSES, META, batch, build_detector, retina, two_stage_kwargs


def _snapshot(model, optim_wrapper, head):
    """Parameters, buffers and optimizer state of one head (deep copies)."""
    mod = model.heads[head]
    state = optim_wrapper.optimizer.state
    return dict(params={k: v.detach().clone() for k, v in mod.named_parameters()},
                buffers={k: v.clone() for k, v in mod.named_buffers()},
                opt={k: copy.deepcopy(state.get(p, {})) for k, p in mod.named_parameters()})


def _identical(a, b):
    for part in ('params', 'buffers'):
        if a[part].keys() != b[part].keys() or not all(
                torch.equal(a[part][k], b[part][k]) for k in a[part]):
            return False
    for k in a['opt']:
        sa, sb = a['opt'][k], b['opt'][k]
        if sa.keys() != sb.keys():
            return False
        for key in sa:
            va, vb = sa[key], sb[key]
            if isinstance(va, torch.Tensor) and not torch.equal(va, vb):
                return False
            if not isinstance(va, torch.Tensor) and va != vb:
                return False
    return True


def _setup(optimizer, accumulative_counts=1, hook=True):
    model = build_detector()
    model.train()
    wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=optimizer, accumulative_counts=accumulative_counts))
    runner = SimpleNamespace(model=model, optim_wrapper=wrapper,
                             train_dataloader=SimpleNamespace(dataset=SimpleNamespace(metainfo=META)))
    if hook:
        HeadIsolationHook().before_train(runner)
    else:
        model.dataset_meta = META
    return model, wrapper


OPTIMIZERS = dict(
    sgd=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-2),
    adamw=dict(type='AdamW', lr=0.01, weight_decay=1e-2))


@pytest.mark.parametrize('opt', list(OPTIMIZERS))
def test_idle_head_is_bit_identical_after_steps(opt):
    model, wrapper = _setup(OPTIMIZERS[opt])
    model.train_step(batch(['person', 'animal', 'animal'], seed=1), wrapper)  # both active
    before = {h: _snapshot(model, wrapper, h) for h in ('person', 'animal')}
    assert before['animal']['opt']['retina_cls.weight'], 'optimizer state should exist'
    for seed in (2, 3):
        model.train_step(batch(['person', 'person'], seed=seed), wrapper)
    after = {h: _snapshot(model, wrapper, h) for h in ('person', 'animal')}
    assert _identical(before['animal'], after['animal'])
    assert not _identical(before['person'], after['person'])


@pytest.mark.parametrize('opt', list(OPTIMIZERS))
def test_isolation_with_gradient_accumulation(opt):
    model, wrapper = _setup(OPTIMIZERS[opt], accumulative_counts=2)
    model.train_step(batch(['person', 'animal'], seed=1), wrapper)
    model.train_step(batch(['person', 'animal'], seed=2), wrapper)
    before = _snapshot(model, wrapper, 'animal')
    # a window where animal takes part in the first micro-batch only: it updates
    model.train_step(batch(['animal'], seed=3), wrapper)
    mid = _snapshot(model, wrapper, 'animal')
    assert _identical(before, mid), 'no step before the window ends'
    model.train_step(batch(['person'], seed=4), wrapper)
    after_window = _snapshot(model, wrapper, 'animal')
    assert not _identical(mid, after_window)
    # a window without animal at all: untouched
    model.train_step(batch(['person'], seed=5), wrapper)
    model.train_step(batch(['person'], seed=6), wrapper)
    assert _identical(after_window, _snapshot(model, wrapper, 'animal'))


def test_hook_clears_zero_gradients_that_would_move_an_idle_head():
    """The naive way (a zero loss / zero grads) moves the head through momentum + decay."""
    for use_hook in (False, True):
        model, wrapper = _setup(OPTIMIZERS['sgd'], hook=use_hook)
        model.train_step(batch(['person', 'animal'], seed=1), wrapper)
        before = _snapshot(model, wrapper, 'animal')
        wrapper.zero_grad = lambda: None  # keep the zeroed grads set below
        for p in model.heads['animal'].parameters():
            p.grad = torch.zeros_like(p)
        model.train_step(batch(['person'], seed=2), wrapper)
        assert _identical(before, _snapshot(model, wrapper, 'animal')) == use_hook


def test_each_head_runs_only_on_its_samples_and_loss_keys_are_prefixed():
    model = build_detector()
    model.dataset_meta = META
    data = model.data_preprocessor(batch(['animal', 'person', 'animal', 'person'], seed=1), True)
    feats = model.extract_feat(data['inputs'])
    calls = {}
    originals = {n: h.loss for n, h in model.heads.items()}

    def spy(name):
        def loss(x, samples):
            calls[name] = ([s.img_id for s in samples], x)
            return originals[name](x, samples)
        return loss

    for name, head in model.heads.items():
        head.loss = spy(name)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert calls['animal'][0] == [100, 102] and calls['person'][0] == [101, 103]
    for level, f in enumerate(calls['animal'][1]):
        assert torch.allclose(f, feats[level][[0, 2]], atol=1e-6)
    assert set(losses) == {'person.loss_cls', 'person.loss_bbox', 'animal.loss_cls',
                           'animal.loss_bbox'}


def _fake_predict(labels):
    def predict(x, samples, rescale=True):
        return [InstanceData(bboxes=torch.tensor([[0., 0, 10, 10]] * len(labels)),
                             scores=torch.linspace(0.9, 0.5, len(labels)),
                             labels=torch.tensor(labels)) for _ in samples]
    return predict


def test_merged_inference_maps_labels_into_the_unified_space():
    model = build_detector()
    model.dataset_meta = META
    model.eval()
    model.heads['person'].predict = mock.Mock(side_effect=_fake_predict([0]))
    model.heads['animal'].predict = mock.Mock(side_effect=_fake_predict([1, 0]))
    data = model.data_preprocessor(batch(['animal', 'person'], seed=1), False)
    out = model.predict(data['inputs'], data['data_samples'])
    for s in out:
        assert s.pred_instances.labels.tolist() == [0, 2, 1]  # person | bird, cat
        assert s.pred_label_space == 'unified'
    assert model.heads['person'].predict.call_count == 1


def test_routed_inference_runs_only_the_group_head():
    model = build_detector(test_cfg=dict(route_by_group=True, **_test_cfg()))
    model.dataset_meta = META
    model.eval()
    model.heads['person'].predict = mock.Mock(side_effect=_fake_predict([0]))
    model.heads['animal'].predict = mock.Mock(side_effect=_fake_predict([1]))
    data = model.data_preprocessor(batch(['animal', 'animal', 'person'], seed=1), False)
    out = model.predict(data['inputs'], data['data_samples'])
    assert [s.pred_instances.labels.tolist() for s in out] == [[2], [2], [0]]
    assert len(model.heads['animal'].predict.call_args[0][1]) == 2
    assert len(model.heads['person'].predict.call_args[0][1]) == 1


def test_merge_nms_and_cap():
    model = build_detector(test_cfg=dict(merge_nms=dict(type='nms', iou_threshold=0.5,
                                                        class_agnostic=True),
                                         merge_max_per_img=1, **_test_cfg()))
    model.dataset_meta = META
    model.eval()
    model.heads['person'].predict = mock.Mock(side_effect=_fake_predict([0]))
    model.heads['animal'].predict = mock.Mock(side_effect=_fake_predict([1]))
    data = model.data_preprocessor(batch(['animal'], seed=1), False)
    assert len(model.predict(data['inputs'], data['data_samples'])[0].pred_instances) == 1


def _test_cfg():
    from tiny_models import TEST_CFG
    return copy.deepcopy(TEST_CFG)


def test_real_heads_predict_in_unified_space():
    model = build_detector()
    model.dataset_meta = META
    model.eval()
    raw = {}
    for name, head in model.heads.items():
        def spy(x, samples, rescale=True, _orig=head.predict, _name=name):
            results = _orig(x, samples, rescale=rescale)
            raw[_name] = [r.labels.clone() for r in results]
            return results
        head.predict = spy
    data = model.data_preprocessor(batch(['animal', 'person'], seed=1), False)
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])
    offset = dict(person=torch.tensor([0]), animal=torch.tensor([1, 2]))
    for i, s in enumerate(out):
        want = torch.cat([offset[h][raw[h][i]] for h in ('person', 'animal')])
        assert torch.equal(s.pred_instances.labels, want)
    assert sum(len(r) for rs in raw.values() for r in rs) > 0


def test_masked_union_head_blocks_unannotated_classes():
    union = dict(group_to_head=dict(person='union', animal='union'),
                 heads=dict(union=retina(3)))
    grads = {}
    for masking in (True, False):
        model = build_detector(partial_label_masking=masking, **union)
        model.dataset_meta = META
        data = model.data_preprocessor(batch(['person', 'person'], seed=1), True)
        model.parse_losses(model.loss(data['inputs'], data['data_samples']))[0].backward()
        # retina_cls: out channels = anchors(1) * classes(3); rows 1, 2 = cat, bird
        grads[masking] = model.heads['union'].retina_cls.weight.grad.flatten(1).abs().sum(1)
    assert grads[True][0] > 0 and grads[True][1:].eq(0).all()
    assert grads[False][1:].gt(0).all()
    model = build_detector(**union)
    model.dataset_meta = META
    assert model.label_space.group_classes['union'] == ('person', 'cat', 'bird')
    assert model.group_to_head_labels('animal', 'union').tolist() == [1, 2]


def test_two_stage_shared_rpn_with_per_dataset_roi_heads():
    model = build_detector(**two_stage_kwargs())
    model.dataset_meta = META
    data = model.data_preprocessor(batch(['person', 'animal'], seed=1), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'rpn.loss_rpn_cls', 'rpn.loss_rpn_bbox', 'person.loss_cls', 'animal.loss_bbox'} <= set(losses)
    model.eval()
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])
    assert all(set(s.pred_instances.labels.tolist()) <= {0, 1, 2} for s in out)


@pytest.mark.parametrize('kwargs, err, match', [
    (dict(heads={}), TypeError, 'non-empty dict'),
    (dict(heads=dict(person=retina(1), animal=dict(type='RetinaHeadX'))), KeyError,
     r'heads\["animal"\]: type .*RetinaHeadX.* is not a registered'),
    (dict(heads={'per.son': retina(1)}), ValueError, 'must be an identifier'),
    (dict(group_to_head=dict(person='human')), KeyError, 'unknown heads'),
    (dict(head_classes=dict(vehicle=('car', ))), KeyError, 'unknown heads'),
])
def test_build_errors_name_the_culprit(kwargs, err, match):
    with pytest.raises(err, match=match):
        build_detector(**kwargs)


def test_dataset_errors_name_the_culprit():
    model = build_detector(heads=dict(person=retina(1), animal=retina(3)))
    with pytest.raises(ValueError, match=r'head "animal" predicts 3 outputs but its dataset '
                                         r'"animal" has 2'):
        model.dataset_meta = META
    model = build_detector(heads=dict(person=retina(1)))
    with pytest.raises(KeyError, match='group "animal" has no head'):
        model.dataset_meta = META
    model = build_detector()
    model.dataset_meta = META
    with pytest.raises(KeyError, match='group "vehicle" has no head'):
        model.route([batch(['person'])['data_samples'][0].clone()] and
                    [type(batch(['person'])['data_samples'][0])(metainfo=dict(group_name='vehicle'))])


def test_init_weights_reaches_every_head():
    from mmdet.models.utils import multi_apply  # noqa: F401  (mmdet imported)
    from mmengine.model import bias_init_with_prob
    model = build_detector()
    for head in model.heads.values():
        assert torch.allclose(head.retina_cls.bias, torch.full_like(
            head.retina_cls.bias, bias_init_with_prob(0.01)))


def test_group_weighted_loss_inside_multi_head_sees_each_head_subset():
    """MultiHeadDetector sets the group context per head, so no hook is needed."""
    weighted = retina(2)
    weighted['loss_cls'] = dict(type='GroupWeightedLoss', use_sigmoid=True,
                                loss=weighted['loss_cls'], group_id_weight=dict(animal=2.0),
                                normalize=False)
    plain, heavy = build_detector(), build_detector(heads=dict(person=retina(1), animal=weighted))
    losses = {}
    for name, model in (('plain', plain), ('heavy', heavy)):
        model.dataset_meta = META
        data = model.data_preprocessor(batch(['animal', 'person', 'animal'], seed=3), True)
        losses[name] = model.loss(data['inputs'], data['data_samples'])
    total = lambda l: sum(l)  # noqa: E731  (per-level list)
    assert torch.allclose(total(losses['heavy']['animal.loss_cls']),
                          2 * total(losses['plain']['animal.loss_cls']))
    assert torch.equal(total(losses['heavy']['person.loss_cls']),
                       total(losses['plain']['person.loss_cls']))
