"""Loss weighting + gradient surgery on the real MultiHeadDetector (tiny), with its aux head."""
import copy

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import mtl_plugin  # noqa: F401
from mtl_plugin.engine.hooks.head_isolation import HeadIsolationHook
from tiny_models import META, batch, build_detector

AUX = dict(type='DatasetClsHead', in_channels=16, num_groups=2, hidden_channels=None,
           loss_weight=0.5)


def _clock(it):
    hub = MessageHub.get_current_instance()
    for k, v in dict(iter=it, epoch=0, max_iters=100, max_epochs=1).items():
        hub.update_info(k, v)


def _params(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


@pytest.mark.parametrize('weighting', [None, dict(type='UncertaintyWeighting')])
def test_pcgrad_on_multi_head_detector(weighting):
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = build_detector(aux_head=AUX, loss_weighting=weighting)
        model.dataset_meta = copy.deepcopy(META)
        wrapper = build_optim_wrapper(model, dict(
            type='GradSurgeryOptimWrapper', aggregator=dict(type='PCGrad'),
            optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))
        hook = HeadIsolationHook()

        class _Runner:  # what the hook reads from a runner
            pass
        runner = _Runner()
        runner.model, runner.optim_wrapper = model, wrapper
        runner.train_dataloader = None
        hook.before_train(runner)
        model.train()
        _clock(0)
        seen = []  # the task losses handed to the wrapper
        update = wrapper.update_params
        wrapper.update_params = lambda loss, *a, **kw: (seen.append(loss.task_losses),
                                                        update(loss, *a, **kw))[1]
        log = model.train_step(batch(['person', 'animal']), wrapper)
        # the weighted task losses add up to the logged total
        tasks = seen[0]
        assert list(tasks) == ['person', 'animal', 'aux']
        assert torch.allclose(sum(tasks.values()).detach(), log['loss'])
        if weighting is not None:
            assert set(k for k in log if k.startswith('weight.')) == {
                'weight.person', 'weight.animal', 'weight.aux'}
        before = _params(model)
        _clock(1)
        model.train_step(batch(['person', 'person'], seed=1), wrapper)  # no animal sample
        after = _params(model)
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    # the idle head stays bit-identical (momentum included), the shared trunk moves
    assert not any(k.startswith('heads.animal.') for k in moved)
    assert any(k.startswith('heads.person.') for k in moved)
    assert any(k.startswith('backbone.') for k in moved)
    assert wrapper.num_updates == 2


def test_soft_shared_neck_per_head():
    """A SoftParameterSharing neck gives each head its own FPN copy, tied by the L2 penalty."""
    from tiny_models import backbone_neck
    fpn = backbone_neck()['neck']
    neck = dict(type='SoftParameterSharing', branch=fpn, tasks=['person', 'animal'],
                l2_weight=0.5)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = build_detector(neck=neck, loss_weighting=dict(type='EqualWeighting'))
        model.dataset_meta = copy.deepcopy(META)
        assert model.loss_task_names() == ['person', 'animal', 'soft_sharing']
        model.train()
        _clock(0)
        data = model.data_preprocessor(batch(['person', 'animal']), True)
        losses = model.loss(data['inputs'], data['data_samples'])
        copies = list(model.neck.branches.values())
        expected = 0.5 * sum((a - b).pow(2).sum() for a, b in zip(copies[0].parameters(),
                                                                  copies[1].parameters()))
        assert torch.allclose(losses['soft_sharing.loss_l2'], expected)
        # each head's loss reaches only its own neck copy (the penalty aside)
        grads = torch.autograd.grad(sum(losses['person.loss_cls']),
                                    [next(c.parameters()) for c in copies], allow_unused=True)
        assert grads[0] is not None and grads[1] is None
        model.eval()
        with torch.no_grad():
            data = model.data_preprocessor(batch(['person', 'animal']), False)
            out = model.predict(data['inputs'], data['data_samples'])
        assert len(out) == 2 and out[0].pred_instances.bboxes.shape[1] == 4
        with pytest.raises(ValueError, match='one copy per head'):
            build_detector(neck=dict(neck, tasks=['animal', 'person']))
