"""Partitioned heads (issue 14): heads share the first head's towers, keep their outputs.

Exact against a full-heads model whose towers are tied copies of the first head's: the same
losses and predictions, the shared towers' gradient = the sum of the copies' gradients; the
towers run once in merged inference; an idle head's own parameters stay untouched."""
import copy

import pytest
import torch
from tiny_models import (DENSE_TRAIN, TRAIN_CFG, backbone_neck, batch, build_detector,
                         dense_head)

from mtl_plugin.engine import HeadIsolationHook
from mtl_plugin.models.detectors.partition import SharedPart

CLASSES = dict(person=('person', ), animal=('cat', 'bird'), vehicle=('car', ))
KINDS = ['retina', 'fcos', 'atss', 'gfl', 'rtmdet']


def _pair(kind, share_box=False):
    """(partitioned, full with the first head's parts copied into every head)."""
    heads = {g: dense_head(kind, len(c)) for g, c in CLASSES.items()}
    kw = dict(heads=heads, head_classes=CLASSES,
              train_cfg=TRAIN_CFG if DENSE_TRAIN[kind] is None else DENSE_TRAIN[kind])
    kw.update(copy.deepcopy(backbone_neck()))
    kw['backbone'] = dict(kw['backbone'], norm_eval=True)
    part = build_detector(**kw, partition_heads=dict(share_box=share_box, owner='person'))
    full = build_detector(**kw)
    full.load_state_dict(part.state_dict(), strict=False)  # backbone, neck, own parts
    ref = part.heads['person']
    for name in ('animal', 'vehicle'):
        for key in part.partition.parts:
            getattr(full.heads[name], key).load_state_dict(getattr(ref, key).state_dict())
    return part, full


def _losses(model, data):
    data = model.data_preprocessor(copy.deepcopy(data), training=True)
    return model.loss(data['inputs'], data['data_samples'])


def _total(losses):
    return sum(sum(v) if isinstance(v, list) else v for k, v in losses.items() if 'loss' in k)


@pytest.mark.parametrize('kind', KINDS)
def test_partitioned_equals_tied_full_heads(kind):
    part, full = _pair(kind, share_box=kind == 'fcos')
    for name in ('animal', 'vehicle'):  # stand-ins, no parameters of their own there
        assert isinstance(part.heads[name].cls_convs[0], SharedPart)
        assert not any(k.startswith(f'heads.{name}.cls_convs') for k in part.state_dict())
    n_part = sum(p.numel() for p in part.parameters())
    assert n_part < sum(p.numel() for p in full.parameters())
    data = batch(['person', 'animal', 'animal', 'person'], seed=2)
    lp, lf = _losses(part, data), _losses(full, data)
    assert list(lp) == list(lf)
    for key in lp:
        assert torch.allclose(torch.as_tensor(_total({key: lp[key]}) if 'loss' in key else 0.),
                              torch.as_tensor(_total({key: lf[key]}) if 'loss' in key else 0.),
                              rtol=1e-5, atol=1e-7), key
    _total(lp).backward()
    _total(lf).backward()
    ref, tied = part.heads['person'].cls_convs, [full.heads[h].cls_convs for h in CLASSES]
    for i, p in enumerate(ref.parameters()):
        want = sum(list(t.parameters())[i].grad for t in tied
                   if list(t.parameters())[i].grad is not None)
        assert torch.allclose(p.grad, want, rtol=1e-4, atol=1e-7)
    # merged inference: the same predictions, the towers run once per level
    part.eval(), full.eval()
    data = part.data_preprocessor(copy.deepcopy(data), training=False)
    calls = []
    hook = part.heads['person'].cls_convs[0].register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        out_p = part.predict(data['inputs'], copy.deepcopy(data['data_samples']))
        out_f = full.predict(data['inputs'], copy.deepcopy(data['data_samples']))
    hook.remove()
    assert len(calls) == 2  # two levels, once each (not once per head)
    for a, b in zip(out_p, out_f):
        assert torch.allclose(a.pred_instances.scores, b.pred_instances.scores, atol=1e-6)
        assert torch.equal(a.pred_instances.labels, b.pred_instances.labels)


def test_an_idle_head_keeps_its_own_parameters_and_the_towers_train():
    from types import SimpleNamespace

    from mmengine.optim import build_optim_wrapper
    part, _ = _pair('retina')
    wrapper = build_optim_wrapper(part, dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9,
                                                            weight_decay=1e-2)))
    HeadIsolationHook().before_train(SimpleNamespace(model=part, optim_wrapper=wrapper))
    before = copy.deepcopy(part.state_dict())
    part.train()
    part.train_step(batch(['animal', 'animal'], seed=3), wrapper)  # person and vehicle idle
    after = part.state_dict()
    for key in before:
        moved = not torch.equal(before[key], after[key])
        if key.startswith(('heads.person.retina_', 'heads.vehicle.')):
            assert not moved, key  # idle heads' own outputs
        if key.startswith(('heads.person.cls_convs', 'heads.animal.retina_cls')) and \
                key.endswith('weight'):
            assert moved, key  # the shared towers learn from the animal samples


def test_partition_errors():
    heads = {g: dense_head('retina', len(c)) for g, c in CLASSES.items()}
    heads['vehicle'] = dict(heads['vehicle'], feat_channels=8)
    with pytest.raises(ValueError, match=r"'cls_convs' of heads\[\"vehicle\"\] and "
                                         r'heads\["animal"\] differ in shape'):  # sorted first
        build_detector(heads=heads, head_classes=CLASSES, partition_heads=dict())
    with pytest.raises(KeyError, match="owner='dog' is not a head"):
        build_detector(heads=heads, head_classes=CLASSES, partition_heads=dict(owner='dog'))
    heads['vehicle'] = dense_head('fcos', 1)
    with pytest.raises(TypeError, match='share_box must be True or False'):
        build_detector(heads=heads, head_classes=CLASSES, partition_heads=dict(share_box=1))


def _deep_head(kind, n):
    """Three stacked convs per tower; ``rtmdet_sepbn``: one list of them per level."""
    if kind == 'retina':
        return dict(dense_head('retina', n), stacked_convs=3)
    return dict(dense_head('rtmdet', n), type='RTMDetSepBNHead', stacked_convs=3,
                norm_cfg=dict(type='BN'), share_conv=True)


@pytest.mark.parametrize('kind', ['retina', 'rtmdet_sepbn'])
def test_merged_inference_memo_keeps_only_each_towers_final_output(kind):
    heads = {g: _deep_head(kind, len(c)) for g, c in CLASSES.items()}
    kw = dict(heads=heads, head_classes=CLASSES, **copy.deepcopy(backbone_neck()))
    part = build_detector(**kw, partition_heads=dict(share_box=True, owner='person'))
    full = build_detector(**kw)
    full.load_state_dict(part.state_dict(), strict=False)
    for name in ('animal', 'vehicle'):
        for key in part.partition.parts:
            getattr(full.heads[name], key).load_state_dict(
                getattr(part.heads['person'], key).state_dict())
    part.eval(), full.eval()
    data = part.data_preprocessor(batch(['person', 'animal'], seed=4), training=False)
    towers = part.heads['person'].cls_convs
    last = towers[-1] if kind == 'retina' else towers[0][-1]  # level 0's last conv
    runs, memo = [], []
    last.register_forward_hook(lambda *a: runs.append(1))
    vehicle = part.heads['vehicle']
    out_conv = vehicle.retina_cls if kind == 'retina' else vehicle.rtm_cls[0]
    out_conv.register_forward_hook(lambda *a: memo.append(
        (sorted({k[0] for k in part.partition.memo}), len(part.partition.pending))))
    with torch.no_grad():
        out_p = part.predict(data['inputs'], copy.deepcopy(data['data_samples']))
        out_f = full.predict(data['inputs'], copy.deepcopy(data['data_samples']))
    for a, b in zip(out_p, out_f):  # the same predictions as tied full heads
        assert torch.allclose(a.pred_instances.scores, b.pred_instances.scores, atol=1e-6)
        assert torch.equal(a.pred_instances.labels, b.pred_instances.labels)
    assert len(runs) == (2 if kind == 'retina' else 1)  # once per level, not per head
    box = ['retina_reg'] if kind == 'retina' else ['rtm_reg.0', 'rtm_reg.1']
    chains = (['cls_convs', 'reg_convs'] if kind == 'retina' else
              ['cls_convs.0', 'cls_convs.1', 'reg_convs.0', 'reg_convs.1'])
    # the memo: whole chains (no per-conv entries) and box layers; no link left pending
    assert memo[0] == (sorted(chains + box), 0)


@pytest.mark.parametrize('kind', ['retina', 'rtmdet_sepbn'])
def test_shared_convs_shares_the_first_convs_and_each_head_keeps_the_rest(kind):
    from types import SimpleNamespace

    from mmengine.optim import build_optim_wrapper
    heads = {g: _deep_head(kind, len(c)) for g, c in CLASSES.items()}
    kw = dict(heads=heads, head_classes=CLASSES, **copy.deepcopy(backbone_neck()))
    kw['backbone'] = dict(kw['backbone'], norm_eval=True)
    part = build_detector(**kw, partition_heads=dict(owner='person', shared_convs=2))
    full = build_detector(**kw)
    missing, unexpected = full.load_state_dict(part.state_dict(), strict=False)
    assert unexpected == [] and missing  # the full model's keys of the shared convs
    chain = (lambda t: t) if kind == 'retina' else (lambda t: t[0])  # level 0's chain
    for name in ('animal', 'vehicle'):
        for tower in ('cls_convs', 'reg_convs'):
            convs = chain(getattr(part.heads[name], tower))
            assert [isinstance(c, SharedPart) for c in convs] == [True, True, False]
            for k in (0, 1):  # tie the shared convs of the full model
                chain(getattr(full.heads[name], tower))[k].load_state_dict(
                    chain(getattr(part.heads['person'], tower))[k].state_dict())
    keys = part.state_dict()
    conv = 'cls_convs.' if kind == 'retina' else 'cls_convs.0.'  # level 0's chain
    assert any(k.startswith(f'heads.animal.{conv}2.') for k in keys)
    assert not any(k.startswith((f'heads.animal.{conv}0.', f'heads.animal.{conv}1.'))
                   for k in keys)
    shared = part.partition.shared_parameters()
    owner_tail = chain(part.heads['person'].cls_convs)[2]
    assert not any(id(p) in shared for p in owner_tail.parameters())
    assert all(id(p) in shared for p in chain(part.heads['person'].cls_convs)[1].parameters())
    part.eval(), full.eval()
    data = part.data_preprocessor(batch(['person', 'animal'], seed=5), training=False)
    runs = []
    chain(part.heads['person'].cls_convs)[1].register_forward_hook(lambda *a: runs.append(1))
    with torch.no_grad():
        out_p = part.predict(data['inputs'], copy.deepcopy(data['data_samples']))
        out_f = full.predict(data['inputs'], copy.deepcopy(data['data_samples']))
    for a, b in zip(out_p, out_f):  # the same as full heads with the first convs tied
        assert torch.allclose(a.pred_instances.scores, b.pred_instances.scores, atol=1e-6)
        assert torch.equal(a.pred_instances.labels, b.pred_instances.labels)
    assert len(runs) == (2 if kind == 'retina' else 1)  # the shared convs: once per level
    # training: an idle head's own tail convs stay, the shared convs learn
    part.train()
    wrapper = build_optim_wrapper(part, dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9,
                                                            weight_decay=1e-2)))
    HeadIsolationHook().before_train(SimpleNamespace(model=part, optim_wrapper=wrapper))
    before = copy.deepcopy(part.state_dict())
    part.train_step(batch(['animal', 'animal'], seed=3), wrapper)  # person, vehicle idle
    after = part.state_dict()
    for key in before:
        moved = not torch.equal(before[key], after[key])
        if key.startswith((f'heads.person.{conv}2.', f'heads.vehicle.{conv}2.')):
            assert not moved, key  # idle heads' own tail convs
        if key.startswith((f'heads.person.{conv}0.', f'heads.animal.{conv}2.')) and \
                key.endswith('conv.weight'):
            assert moved, key


def test_shared_convs_errors():
    heads = {g: dense_head('retina', len(c)) for g, c in CLASSES.items()}
    for bad in (0, True, 1.5):
        with pytest.raises(ValueError, match='shared_convs must be an int >= 1'):
            build_detector(heads=heads, head_classes=CLASSES,
                           partition_heads=dict(shared_convs=bad))
    n = dense_head('retina', 1).get('stacked_convs', 4)
    with pytest.raises(ValueError, match=rf'shared_convs={n + 1} but the towers of '
                                         rf'heads\["animal"\] \(RetinaHead\) have {n} convs'):
        build_detector(heads=heads, head_classes=CLASSES,
                       partition_heads=dict(shared_convs=n + 1))
