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
        log = model.train_step(batch(['person', 'animal']), wrapper)
        # the weighted task losses add up to the logged total
        tasks = model.mtl_task_losses
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
