"""Multi-task loss weighting: grouping, the maths of each method, Runner runs, errors."""
import copy
import itertools
import math
import os
import socket
from collections import OrderedDict

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import DataLoader

import mtl_plugin  # noqa: F401
from conftest import REPO
from mtl_plugin.models.multitask import (DWAWeighting, FixedWeighting, GradNormWeighting,
                                        RLWWeighting, ScheduledWeighting,
                                        UncertaintyWeighting, attach_loss_weighting,
                                        group_losses_by_task)
from mtl_plugin.models.multitask import weighting_methods
from tiny_models import TEST_CFG, TRAIN_CFG, backbone_neck, batch, build_detector, retina, sample

_hub_ids = itertools.count()


@pytest.fixture
def clock():
    """A fresh current MessageHub; ``clock(iter=3, epoch=0)`` sets its runtime info."""
    hub = MessageHub.get_instance(f'test_loss_weighting_{next(_hub_ids)}')

    def set_info(**info):
        for key, value in info.items():
            hub.update_info(key, value)
    return set_info


def t(*values):
    return torch.tensor(values if len(values) > 1 else values[0], dtype=torch.float32)


def od(**losses):
    return OrderedDict((k, t(v)) for k, v in losses.items())


# ---------------------------------------------------------------------------- grouping
MULTI_HEAD = {'person.loss_cls': t(1.0, 3.0), 'person.loss_bbox': [t(1.0), t(0.5)],
              'animal.loss_cls': t(4.0), 'aux.loss_dataset_cls': t(0.25),
              'aux.acc_dataset_cls': t(90.0)}
STOCK = {'loss_rpn_cls': [t(0.5), t(0.25)], 'loss_rpn_bbox': t(1.0), 'loss_cls': t(2.0),
         'loss_bbox': t(3.0), 'acc': t(50.0)}


def test_group_by_prefix_sums_terms_like_mmengine():
    grouped = group_losses_by_task(MULTI_HEAD)
    assert list(grouped) == ['person', 'animal', 'aux']  # first appearance; acc not a term
    assert [float(v) for v in grouped.values()] == [3.5, 4.0, 0.25]
    assert list(group_losses_by_task(MULTI_HEAD, ['aux', 'person', 'animal'])) == \
        ['aux', 'person', 'animal']


def test_group_by_dict_and_patterns():
    grouped = group_losses_by_task(STOCK, dict(rpn=['loss_rpn_*'], roi=['loss_cls', 'loss_bbox']))
    assert list(grouped) == ['rpn', 'roi'] and [float(v) for v in grouped.values()] == [1.75, 5.0]
    grouped = group_losses_by_task(MULTI_HEAD, dict(fine=['person.*', 'animal.*'], aux=['aux.*']))
    assert [float(v) for v in grouped.values()] == [7.5, 0.25]


@pytest.mark.parametrize('losses, tasks, match', [
    (STOCK, dict(cls=['loss_cls'], box=['loss_bbox']), r"\['loss_rpn_cls', 'loss_rpn_bbox'\] "
     r'belong to no task.*Loss keys'),
    (STOCK, dict(a=['loss_*'], b=['loss_cls']), "'loss_cls' is claimed by several tasks"),
    (STOCK, dict(rpn=['loss_rpn_*'], roi=['loss_cls', 'loss_bbox'], x=['loss_mask']),
     r"tasks \['x'\] match no loss key"),
    (STOCK, None, r'no "<task>." prefix.*tasks=dict\(cls='),
    (MULTI_HEAD, ['person', 'animal'], r"\['aux.loss_dataset_cls'\] belong to no task"),
    (MULTI_HEAD, ['person', 'animal', 'aux', 'persn'], r"tasks \['persn'\] match no loss key"),
    ({'acc': t(1.0)}, None, 'no loss terms'),
])
def test_group_errors(losses, tasks, match):
    with pytest.raises(ValueError, match=match):
        group_losses_by_task(losses, tasks)


def test_group_optional_and_bad_arguments():
    grouped = group_losses_by_task(MULTI_HEAD, ['person', 'animal', 'aux', 'rpn'],
                                   optional=['rpn'])  # an idle task is left out
    assert list(grouped) == ['person', 'animal', 'aux']
    with pytest.raises(TypeError, match='non-empty list of loss keys'):
        group_losses_by_task(STOCK, dict(cls='loss_cls', box=['loss_bbox']))
    with pytest.raises(ValueError, match='distinct non-empty strings'):
        group_losses_by_task(MULTI_HEAD, ['person', 'person'])
    with pytest.raises(TypeError, match='not a tensor or list of tensors'):
        group_losses_by_task({'a.loss': 1.0, 'b.loss': t(1.0)})


# ---------------------------------------------------------------------------- methods
def test_uncertainty_total_and_exact_gradients():
    weighting = UncertaintyWeighting(tasks=['a', 'b'])
    losses = od(a=2.0, b=3.0)
    weighting(losses)  # names are fixed on the first step
    with torch.no_grad():
        weighting.log_vars.copy_(t(0.5, -1.0))
    total, weights = weighting(losses)
    s = weighting.log_vars.detach()
    assert math.isclose(float(total.detach()), math.exp(-0.5) * 2 + 0.5 + math.exp(1.0) * 3 - 1,
                        rel_tol=1e-6)
    assert weights == {'a': float(torch.exp(-s[0])), 'b': float(torch.exp(-s[1]))}
    total.backward()
    assert torch.equal(weighting.log_vars.grad, -torch.exp(-s) * t(2.0, 3.0) + 1)


def feed_dwa(weighting, clock, steps):
    """``steps``: (iteration, dict task -> loss); returns the weights of each step."""
    out = []
    for it, losses in steps:
        clock(iter=it)
        out.append(weighting(od(**losses))[1])
    return out


def test_dwa_weights_from_period_means(clock):
    weighting = DWAWeighting(temperature=2.0, window=2, tasks=['a', 'b'])
    weights = feed_dwa(weighting, clock, [
        (0, dict(a=0.5, b=1.0)), (1, dict(a=1.5, b=1.0)),   # period 0: means (1, 1)
        (2, dict(a=0.25, b=2.0)), (3, dict(a=0.75, b=0.0)),  # period 1: means (0.5, 1)
        (4, dict(a=9.0, b=9.0))])
    assert weights[:4] == [dict(a=1.0, b=1.0)] * 4  # the first two periods
    expected = 2 * torch.softmax(t(0.5 / 1, 1 / 1) / 2.0, 0)  # r = (0.5, 1)
    assert weights[4] == dict(a=float(expected[0]), b=float(expected[1]))
    assert math.isclose(weights[4]['a'], 2 * math.exp(0.25) / (math.exp(0.25) + math.exp(0.5)),
                        rel_tol=1e-6)


def test_dwa_warns_when_training_is_too_short(clock, monkeypatch):
    messages = []
    monkeypatch.setattr(weighting_methods, 'print_log', lambda msg, **kw: messages.append(msg))
    clock(iter=0, max_iters=20)
    DWAWeighting(window=10, tasks=['a', 'b'])(od(a=1.0, b=1.0))
    assert len(messages) == 1 and 'training has 2 period(s) of 10 iterations' in messages[0]
    DWAWeighting(window=9, tasks=['a', 'b'])(od(a=1.0, b=1.0))
    assert len(messages) == 1


def test_dwa_epochs_missing_task_and_eval(clock):
    weighting = DWAWeighting(temperature=1.0, tasks=['a', 'b', 'c'])
    for epoch, losses in enumerate([dict(a=2.0, b=1.0), dict(a=1.0, b=2.0)]):
        clock(epoch=epoch, max_epochs=12)
        weighting(od(**losses))  # c never has a loss: r_c = 1
    clock(epoch=2)
    weighting.eval()  # no state change in eval mode
    before = {k: v.clone() for k, v in weighting.state_dict().items()}
    _, w_eval = weighting(od(a=1.0))
    assert all(torch.allclose(before[k], v, rtol=0, atol=0, equal_nan=True)
               for k, v in weighting.state_dict().items())
    weighting.train()
    _, w = weighting(od(a=1.0, b=1.0, c=1.0))
    expected = 3 * torch.softmax(t(0.5, 2.0, 1.0), 0)
    assert w == dict(a=float(expected[0]), b=float(expected[1]), c=float(expected[2]))
    assert w_eval == dict(a=1.0)  # eval: no roll, still the first periods' weights


def test_dwa_state_survives_state_dict(clock):
    steps = [(i, dict(a=1.0 + (i * 7 % 5) / 4, b=2.0 - (i * 3 % 4) / 8)) for i in range(10)]
    original = DWAWeighting(window=2, tasks=['a', 'b'])
    feed_dwa(original, clock, steps[:5])
    resumed = DWAWeighting(window=2, tasks=['a', 'b'])
    resumed.set_task_names(['a', 'b'])
    resumed.load_state_dict(copy.deepcopy(original.state_dict()))
    a, b = feed_dwa(original, clock, steps[5:]), feed_dwa(resumed, clock, steps[5:])
    assert a == b and a[-1]['a'] != 1.0


class TwoTask(nn.Module):
    """h = w * x with w = 1: L_a = 3 h and L_b = c h have gradients 3 and c on w."""

    def __init__(self):
        super().__init__()
        self.shared = nn.Linear(1, 1, bias=False)
        self.other = nn.Linear(1, 1, bias=False)
        nn.init.ones_(self.shared.weight)

    def losses(self, scale_a, scale_b):
        h = self.shared(torch.ones(1, 1)).sum()
        return OrderedDict(a=scale_a * h, b=scale_b * h)


def gradnorm_step(w, n, rel, alpha, lr):
    """Hand computation of one GradNorm update (python floats)."""
    mean_rel = sum(rel) / len(rel)
    g = [wi * ni for wi, ni in zip(w, n)]
    target = [sum(g) / len(g) * (r / mean_rel) ** alpha for r in rel]
    new = [wi - lr * math.copysign(1.0, gi - ti) * ni for wi, gi, ti, ni in zip(w, g, target, n)]
    return [x * sum(w) / sum(new) for x in new]


def test_gradnorm_update_direction_and_sum():
    model = TwoTask()
    weighting = GradNormWeighting(shared_layer='shared', alpha=1.5, lr=0.025, tasks=['a', 'b'])
    weighting.attach(model)
    total, weights = weighting(model.losses(3.0, 1.0))  # n = (3, 1), G = (3, 1), r = (1, 1)
    assert weights == dict(a=1.0, b=1.0)  # the weights before the update
    assert float(total.detach()) == 4.0
    w1 = weighting.weights.tolist()
    assert w1 == pytest.approx([0.925 * 2 / 1.95, 1.025 * 2 / 1.95], rel=1e-6)
    assert w1[0] < 1 < w1[1] and sum(w1) == pytest.approx(2.0, rel=1e-6)
    # L(0) = (3, 1); now L = (3, 2): task b trains slower (r_b > 1) and gains weight
    total, weights = weighting(model.losses(3.0, 2.0))
    assert weights == dict(a=w1[0], b=w1[1])
    assert float(total.detach()) == pytest.approx(3 * w1[0] + 2 * w1[1], rel=1e-6)
    expected = gradnorm_step(w1, [3.0, 2.0], [1.0, 2.0], 1.5, 0.025)
    assert weighting.weights.tolist() == pytest.approx(expected, rel=1e-6)
    assert weighting.initial_losses.tolist() == [3.0, 1.0]


def test_gradnorm_ddp_means_over_ranks(monkeypatch):
    """Fake rank 1 contributes n = (1, 5), L = (3, 5): the update uses the means."""
    other = torch.tensor([[1.0, 5.0], [3.0, 5.0], [1.0, 1.0]])
    calls = []

    def fake_all_reduce(data, op='sum'):
        calls.append(op)
        data += other
    monkeypatch.setattr(weighting_methods, 'all_reduce', fake_all_reduce)
    model = TwoTask()
    weighting = GradNormWeighting(shared_layer='shared', alpha=1.0, lr=0.1, tasks=['a', 'b'])
    weighting.attach(model)
    weighting(model.losses(3.0, 1.0))  # this rank: n = (3, 1), L = (3, 1)
    assert calls == ['sum']
    assert weighting.initial_losses.tolist() == [3.0, 3.0]  # mean L over the two ranks
    expected = gradnorm_step([1.0, 1.0], [2.0, 3.0], [1.0, 1.0], 1.0, 0.1)
    assert weighting.weights.tolist() == pytest.approx(expected, rel=1e-6)


def test_gradnorm_errors():
    with pytest.raises(ValueError, match=r"'sharde' is not a module.*close names: \['shared'\]"):
        GradNormWeighting(shared_layer='sharde', tasks=['a', 'b']).attach(TwoTask())
    model = TwoTask()
    weighting = GradNormWeighting(shared_layer='other', tasks=['a', 'b'])
    weighting.attach(model)
    with pytest.raises(ValueError, match="task 'a' does not reach shared_layer 'other'"):
        weighting(model.losses(1.0, 1.0))


def test_rlw_deterministic_per_iteration(clock):
    clock(iter=7)
    a = RLWWeighting(seed=3, tasks=['a', 'b', 'c'])(od(a=1.0, b=1.0, c=1.0))[1]
    b = RLWWeighting(seed=3, tasks=['a', 'b', 'c'])(od(a=1.0, b=1.0, c=1.0))[1]
    z = torch.randn(3, generator=torch.Generator().manual_seed(10))
    assert a == b == dict(zip('abc', torch.softmax(z, 0).tolist()))
    assert all(v > 0 for v in a.values()) and sum(a.values()) == pytest.approx(1.0, abs=1e-6)
    clock(iter=8)
    assert RLWWeighting(seed=3, tasks=['a', 'b', 'c'])(od(a=1.0, b=1.0, c=1.0))[1] != a


def test_fixed_and_scheduled_values(clock):
    total, weights = FixedWeighting(weights=dict(b=0.5), default=2.0)(od(a=1.0, b=4.0))
    assert weights == dict(a=2.0, b=0.5) and float(total) == 4.0
    seed_recipe = ScheduledWeighting(by='epoch', schedules=dict(
        aux=dict(milestones=[2], values=[0.4, 0.15])))
    ramp = ScheduledWeighting(schedules=dict(a=dict(type='linear', start=0.0, end=1.0), b=0.25))
    values = []
    for epoch, it in [(0, 0), (1, 5), (2, 10)]:
        clock(epoch=epoch, iter=it, max_epochs=3, max_iters=20)
        values.append((seed_recipe(od(fine=1.0, aux=1.0))[1], ramp(od(a=1.0, b=1.0))[1]))
    assert [v[0]['aux'] for v in values] == [0.4, 0.4, 0.15]
    assert all(v[0]['fine'] == 1.0 for v in values)
    assert [v[1]['a'] for v in values] == [0.0, 0.25, 0.5] and values[2][1]['b'] == 0.25


@pytest.mark.parametrize('build, match', [
    (lambda: FixedWeighting(weights=dict(a=-1.0)), r"weights\['a'\] must be a finite number "
     r'>= 0, but got -1.0'),
    (lambda: FixedWeighting(weights=dict(a=float('nan'))), r"weights\['a'\].*but got nan"),
    (lambda: FixedWeighting(weights=dict(a=0.0), default=0.0)(od(a=1.0, b=1.0)),
     'every task .* weighs 0'),
    (lambda: FixedWeighting(weights=dict(c=2.0))(od(a=1.0, b=1.0)),
     r"weights name unknown tasks \['c'\]; the tasks are \['a', 'b'\]"),
    (lambda: UncertaintyWeighting(tasks=['a'])(od(a=1.0)), 'needs >= 2 tasks'),
    (lambda: UncertaintyWeighting(tasks=['a', 'b'])(od(a=1.0, c=1.0)),
     r"tasks \['c'\] are not among its tasks"),
    (lambda: ScheduledWeighting(schedules=dict(a=dict(milestones=[1], values=[1.0, -0.5]))),
     r"schedules\['a'\] 'values' must be a finite number >= 0, but got -0.5"),
    (lambda: ScheduledWeighting(schedules=dict(a=dict(milestones=[1], values=[1.0]))),
     r"schedules\['a'\].*needs len\(milestones\) \+ 1"),
    (lambda: ScheduledWeighting(schedules=dict(a=dict(milestones=[1], values=[1, 2],
                                                       by_epoch=True))),
     r"sets \['by_epoch'\].*by='iter' \| 'epoch'"),
    (lambda: DWAWeighting(temperature=0.0), 'temperature must be a finite number > 0, but '
     'got 0.0'),
    (lambda: GradNormWeighting(shared_layer='neck', lr=-1), 'lr must be a finite number > 0'),
    (lambda: GradNormWeighting(shared_layer='neck', alpha=float('inf')),
     'alpha must be a finite number >= 0, but got inf'),
])
def test_weighting_errors(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_missing_clock_is_an_error(clock):
    with pytest.raises(RuntimeError, match="clock 'iter'.*RuntimeInfoHook"):
        RLWWeighting(tasks=['a', 'b'])(od(a=1.0, b=1.0))


# ---------------------------------------------------------------------------- models
def test_detector_parse_losses_without_weighting_is_mmengines():
    model = build_detector()
    losses = model.loss(*model.data_preprocessor(batch(['person', 'animal']), True).values())
    total, log_vars = model.parse_losses(losses)
    ref_total, ref_vars = BaseModel.parse_losses(model, losses)
    assert torch.equal(total, ref_total) and list(log_vars) == list(ref_vars)
    assert list(total.task_losses) == ['person', 'animal']
    assert torch.equal(sum(total.task_losses.values()), total)


def test_detector_idle_head_and_config_errors():
    model = build_detector(loss_weighting=dict(type='UncertaintyWeighting'))
    assert model.loss_weighting.task_names == ['person', 'animal']
    data = model.data_preprocessor(batch(['person', 'person']), True)
    total, log_vars = model.parse_losses(model(**data, mode='loss'))  # the animal head is idle
    assert 'weight.animal' not in log_vars and log_vars['weight.person'] == 1.0
    with pytest.raises(ValueError, match=r"weights name unknown tasks \['persn'\]"):
        build_detector(loss_weighting=dict(type='FixedWeighting', weights=dict(persn=2.0)))
    with pytest.raises(ValueError, match=r"tasks name unknown tasks \['aux'\]"):
        build_detector(loss_weighting=dict(type='EqualWeighting', tasks=['person', 'aux']))


def test_pose_estimator_takes_a_weighting():
    cfg = Config.fromfile(f'{REPO}/configs/pose/multihead-td-hm_res18_1xb4-1e_coco-ap10k-128x96.py')
    with DefaultScope.overwrite_default_scope('mmpose'):
        model = MODELS.build(dict(cfg.model, loss_weighting=dict(
            type='FixedWeighting', weights=dict(animal=0.5))))
    assert model.loss_weighting.task_names == ['person', 'animal']
    total, log_vars = model.parse_losses({'person.loss_kpt': t(2.0), 'animal.loss_kpt': t(3.0),
                                          'person.acc_pose': t(0.5)})
    assert float(total) == 3.5 and log_vars['weight.animal'] == 0.5
    assert {k: float(v) for k, v in total.task_losses.items()} == dict(person=2.0, animal=1.5)


class Record(Hook):
    """Keeps each iteration's log dict and the model's weighted task losses."""

    def __init__(self):
        self.outputs, self.terms = [], []

    def before_train(self, runner):
        update = runner.optim_wrapper.update_params  # the task losses handed to it

        def spy(loss, *args, **kwargs):
            self.terms.append({k: float(v) for k, v in loss.task_losses.items()})
            return update(loss, *args, **kwargs)
        runner.optim_wrapper.update_params = spy

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.outputs.append({k: float(v) for k, v in outputs.items()})


@pytest.fixture(autouse=True)
def quick_runner(monkeypatch):
    """Skip the Runner's environment report (gcc / git subprocesses, ~2 s per Runner)."""
    monkeypatch.setattr(Runner, '_log_env', lambda self, env_cfg: None)


def run(model, tmp_path, name, optim_wrapper=None):
    # two batches: no epoch transition in 2 iterations (mmengine sleeps 2 s there)
    data = [dict(inputs=b['inputs'][i], data_samples=b['data_samples'][i])
            for b in [batch(['person', 'animal'], seed=s) for s in (0, 1)] for i in range(2)]
    loader = DataLoader(data, batch_size=2, collate_fn=lambda x: dict(
        inputs=[d['inputs'] for d in x], data_samples=[d['data_samples'] for d in x]))
    record = Record()
    runner = Runner(model=model, work_dir=str(tmp_path), train_dataloader=loader,
                    train_cfg=dict(by_epoch=False, max_iters=2),
                    optim_wrapper=optim_wrapper or dict(optimizer=dict(type='SGD', lr=0.01)),
                    default_hooks=dict(checkpoint=None), custom_hooks=[record],
                    default_scope='mmdet', experiment_name=f'lw_{name}_{next(_hub_ids)}',
                    log_level='WARNING')
    runner.train()
    return runner, record


def check_logs(runner, record, prefixes, uncertainty, rel=1e-5):
    assert len(record.outputs) == 2
    for out, terms in zip(record.outputs, record.terms):
        assert out['loss'] == pytest.approx(sum(terms.values()), rel=1e-6)
        for task, keys in prefixes.items():
            loss = sum(v for k, v in out.items() if k in keys)
            w = out[f'weight.{task}']
            reg = -math.log(w) if uncertainty else 0.0  # s = -log(exp(-s))
            assert terms[task] == pytest.approx(w * loss + reg, rel=rel, abs=1e-6)
    for task in prefixes:
        logged = runner.message_hub.get_scalar(f'train/weight.{task}')
        assert logged.current() == pytest.approx(record.outputs[-1][f'weight.{task}'])


@pytest.mark.parametrize('cfg', [
    dict(type='UncertaintyWeighting'), dict(type='EqualWeighting'),
    dict(type='FixedWeighting', weights=dict(animal=0.5)),
    dict(type='ScheduledWeighting', schedules=dict(person=dict(milestones=[1],
                                                               values=[0.4, 0.15]))),
    dict(type='DWAWeighting', window=1), dict(type='GradNormWeighting', shared_layer='neck'),
    dict(type='RLWWeighting', seed=1)], ids=lambda c: c['type'])
def test_runner_logs_weights(cfg, tmp_path):
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = build_detector(loss_weighting=cfg)
        runner, record = run(model, tmp_path, cfg['type'])
    keys = {h: {f'{h}.loss_cls', f'{h}.loss_bbox'} for h in ('person', 'animal')}
    check_logs(runner, record, keys, cfg['type'] == 'UncertaintyWeighting')
    weights = [(o['weight.person'], o['weight.animal']) for o in record.outputs]
    if cfg['type'] == 'ScheduledWeighting':
        assert weights == [(0.4, 1.0), (0.15, 1.0)]
    if cfg['type'] == 'GradNormWeighting':
        assert weights[0] == (1.0, 1.0) and weights[1] != weights[0]
        assert sum(weights[1]) == pytest.approx(2.0, rel=1e-6)
        twin = copy.deepcopy(model)  # the shared-layer reference follows the copy
        assert twin.loss_weighting._shared is twin.neck is not model.neck
    if cfg['type'] == 'UncertaintyWeighting':  # log_vars learn with the model
        assert weights[1] != (1.0, 1.0)


OPTIM_MODES = dict(
    # gradient accumulation over 2 iterations (one optimizer step)
    accumulate=dict(optimizer=dict(type='SGD', lr=0.01), accumulative_counts=2),
    # bf16 autocast on CPU (MMEngine's AmpOptimWrapper refuses CPUs): the surgery wrapper
    # with torchjd's plain Sum aggregator is ordinary training under autocast
    bf16=dict(type='GradSurgeryOptimWrapper', aggregator=dict(type='Sum'),
              autocast=dict(dtype='bfloat16'), optimizer=dict(type='SGD', lr=0.01)))


@pytest.mark.parametrize('mode', list(OPTIM_MODES))
@pytest.mark.parametrize('cfg', [
    dict(type='UncertaintyWeighting'), dict(type='DWAWeighting', window=1),
    dict(type='GradNormWeighting', shared_layer='neck'), dict(type='RLWWeighting')],
    ids=lambda c: c['type'])
def test_runner_amp_and_accumulation(cfg, mode, tmp_path):
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = build_detector(loss_weighting=cfg)
        before = {k: v.detach().clone() for k, v in model.named_parameters()}
        runner, record = run(model, tmp_path, f'{cfg["type"]}_{mode}', OPTIM_MODES[mode])
    keys = {h: {f'{h}.loss_cls', f'{h}.loss_bbox'} for h in ('person', 'animal')}
    check_logs(runner, record, keys, cfg['type'] == 'UncertaintyWeighting',
               rel=1e-5 if mode == 'accumulate' else 2e-2)
    moved = [k for k, v in model.named_parameters() if not torch.equal(before[k], v)]
    assert any(k.startswith('backbone.') for k in moved)
    if mode == 'bf16':
        assert runner.optim_wrapper.num_updates == 2
    else:  # one step after two accumulated iterations
        assert runner.optim_wrapper._inner_count == 2


def _ddp_worker(rank, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import build_optim_wrapper
    hub = MessageHub.get_instance(f'ddp_{rank}')
    # rank 0 never sees an animal in step 1, rank 1 never a person: the weights must agree
    plan = [['person', 'animal'], ['person', 'person'] if rank == 0 else ['animal', 'animal'],
            ['animal', 'person']]
    result = {}
    for cfg in (dict(type='GradNormWeighting', shared_layer='neck'),
                dict(type='DWAWeighting', window=1)):
        model = build_detector(loss_weighting=cfg)
        ddp = MMDistributedDataParallel(module=model, device_ids=None,
                                        find_unused_parameters=True)
        wrapper = build_optim_wrapper(model, dict(optimizer=dict(type='SGD', lr=1e-4)))
        weights = []
        for it, groups in enumerate(plan):
            hub.update_info('iter', it)
            logs = ddp.train_step(batch(groups, seed=10 * rank + it), wrapper)
            weights.append({k: float(v) for k, v in logs.items() if k.startswith('weight.')})
        result[cfg['type']] = (weights, copy.deepcopy(model.loss_weighting.state_dict()))
    torch.save(result, os.path.join(out_dir, f'rank{rank}.pth'))
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_ranks_agree_on_weights_and_state(tmp_path):
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    mp.spawn(_ddp_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f'rank{r}.pth', weights_only=False) for r in (0, 1))
    for method in r0:
        (w0, state0), (w1, state1) = r0[method], r1[method]
        for step in (0, 2):  # both heads ran on both ranks: same weights
            assert w0[step] == w1[step], (method, step)
        # step 1: rank 0 logs the person weight, rank 1 the animal one, of one weight vector
        assert set(w0[1]) == {'weight.person'} and set(w1[1]) == {'weight.animal'}
        assert w0[2] != {'weight.person': 1.0, 'weight.animal': 1.0}, method
        for key in state0:  # checkpoints of any rank resume every rank identically
            assert torch.allclose(state0[key], state1[key], rtol=0, atol=0, equal_nan=True)
    gn0, gn1 = r0['GradNormWeighting'][0], r1['GradNormWeighting'][0]
    assert gn0[1]['weight.person'] + gn1[1]['weight.animal'] == pytest.approx(2.0, rel=1e-6)


def retinanet_cfg():
    return dict(type='RetinaNet', **backbone_neck(), bbox_head=retina(3), train_cfg=TRAIN_CFG,
                test_cfg=TEST_CFG)


def test_multitask_model_around_stock_retinanet(tmp_path):
    with DefaultScope.overwrite_default_scope('mmdet'):
        bare = MODELS.build(retinanet_cfg())
        model = MODELS.build(dict(type='MultiTaskModel', model=retinanet_cfg(),
                                  loss_weighting=dict(type='UncertaintyWeighting', tasks=dict(
                                      cls=['loss_cls'], box=['loss_bbox']))))
        assert type(model) is type(bare)
        runner, record = run(model, tmp_path, 'retinanet')
    check_logs(runner, record, dict(cls={'loss_cls'}, box={'loss_bbox'}), uncertainty=True)
    assert set(model.state_dict()) == set(bare.state_dict()) | {'loss_weighting.log_vars'}
    assert bare.load_state_dict(model.state_dict(), strict=False).unexpected_keys == \
        ['loss_weighting.log_vars']
    twin = copy.deepcopy(model)  # EMA hooks deep-copy the model (non-leaf task losses inside)
    assert twin.parse_losses.__self__ is twin and twin.loss_weighting is not model.loss_weighting
    assert torch.equal(twin.loss_weighting.log_vars, model.loss_weighting.log_vars)
    with pytest.raises(ValueError, match='already has a loss_weighting'):
        attach_loss_weighting(model, dict(type='EqualWeighting'))


def test_stateful_weighting_needs_task_names_on_stock_models():
    with DefaultScope.overwrite_default_scope('mmdet'):
        with pytest.raises(ValueError, match=r"needs the task names.*tasks=dict\(a="):
            MODELS.build(dict(type='MultiTaskModel', model=retinanet_cfg(),
                              loss_weighting=dict(type='DWAWeighting')))
        model = MODELS.build(dict(type='MultiTaskModel', model=retinanet_cfg(),
                                  loss_weighting=dict(type='EqualWeighting')))
        data = model.data_preprocessor(dict(inputs=[torch.zeros(3, 64, 64, dtype=torch.uint8)],
                                            data_samples=[sample('person', 0)]), True)
        with pytest.raises(ValueError, match='no "<task>." prefix'):
            model.parse_losses(model(**data, mode='loss'))
