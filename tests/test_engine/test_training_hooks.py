"""CurriculumLearningHook and StagedTrainingHook on a tiny toy model with MMEngine's Runner."""
import math
import os.path as osp
import uuid
from types import SimpleNamespace

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

import mtl_plugin  # noqa: F401  (safe globals for resuming mmengine checkpoints)
from mtl_plugin.engine.hooks.curriculum import CurriculumLearningHook, schedule_value
from mtl_plugin.engine.hooks.staged_training import StagedTrainingHook

PERSON_W = 'model.heads.person.loss_cls.group_id_weight.1'


class ToyLoss(nn.Module):

    def __init__(self):
        super().__init__()
        self.group_id_weight = {1: 1.0}
        self.loss_weight = 1.0
        self.register_buffer('temperature', torch.tensor(1.0))


class ToyHead(nn.Module):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)
        self.loss_cls = ToyLoss()


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4))
        self.heads = nn.ModuleDict(dict(person=ToyHead()))
        self.aux_head = ToyLoss()
        self.grl = SimpleNamespace(lambd=0.0)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = self.heads['person'].fc(self.backbone(inputs))
        if mode == 'loss':
            w = self.heads['person'].loss_cls.group_id_weight[1] * self.aux_head.loss_weight
            return dict(loss=(x - 1).pow(2).mean() * w)
        return x


class GroupSampler(torch.utils.data.Sampler):
    """Sampler-like object whose weights must be set through ``set_group_weights``."""

    def __init__(self, n):
        self.n = n
        self.group_weights = {0: 1.0, 1: 1.0}
        self.calls = []

    def set_group_weights(self, weights):
        assert isinstance(weights, dict) and all(w > 0 for w in weights.values())
        self.calls.append(dict(weights))
        self.group_weights = weights

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


class Probe(Hook):
    """Records ``fn(runner)`` before every training iteration, after all other hooks."""

    priority = 'LOWEST'

    def __init__(self, fn):
        self.fn = fn
        self.at_train = None
        self.records = []

    def before_train(self, runner):
        self.at_train = self.fn(runner)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.records.append((runner.epoch, runner.iter, self.fn(runner)))


def make_runner(work_dir, hooks, max_epochs=3, max_iters=None, sampler=None, model=None,
                **kw):
    by_epoch = max_iters is None
    g = torch.Generator().manual_seed(0)
    data = [dict(inputs=torch.rand(2, generator=g)) for _ in range(4)]
    train_cfg = dict(by_epoch=True, max_epochs=max_epochs) if by_epoch else \
        dict(by_epoch=False, max_iters=max_iters, val_interval=10**6)
    return Runner(
        model=model or ToyModel(), work_dir=str(work_dir),
        experiment_name=f'hooks_{uuid.uuid4().hex[:8]}',
        train_dataloader=dict(
            dataset=data, batch_size=2, num_workers=0,
            sampler=sampler or dict(type='DefaultSampler' if by_epoch else 'InfiniteSampler',
                                    shuffle=False),
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        train_cfg=train_cfg,
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1 if by_epoch else 1000,
                            by_epoch=by_epoch),
            logger=dict(type='LoggerHook', interval=1)),
        log_processor=dict(by_epoch=by_epoch),
        custom_hooks=hooks, log_level='WARNING', **kw)


def person_w(runner):
    return runner.model.heads.person.loss_cls.group_id_weight[1]


def per_epoch(records):
    """{epoch: value} (checks the value is constant within an epoch)."""
    out = {}
    for epoch, _, value in records:
        assert out.setdefault(epoch, value) == value
    return out


# --------------------------------------------------------------------------- curriculum
def test_schedule_values_exact():
    step = dict(param=PERSON_W, milestones=[50, 100], values=[1.0, 1.5, 2.0])
    assert [schedule_value(step, t) for t in (0, 49, 50, 99, 100, 500)] == \
        [1.0, 1.0, 1.5, 1.5, 2.0, 2.0]
    lin = dict(param='model.aux_head.loss_weight', type='linear', start=0.0, end=2.0, begin=10,
               end_at=20)
    assert [schedule_value(lin, t) for t in (0, 10, 15, 18, 20, 99)] == \
        [0.0, 0.0, 1.0, pytest.approx(1.6), 2.0, 2.0]
    cos = dict(lin, type='cosine')
    assert [schedule_value(cos, t) for t in (0, 10, 15, 20, 30)] == \
        [0.0, 0.0, pytest.approx(1.0), 2.0, 2.0]
    assert schedule_value(cos, 12) == pytest.approx(1 - math.cos(math.pi * 0.2))
    dann = dict(param='model.grl.lambd', type='dann')
    assert schedule_value(dann, 0, total=10) == 0.0
    assert schedule_value(dann, 5, total=10) == pytest.approx(0.9866142981514303)
    assert schedule_value(dann, 10, total=10) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert schedule_value(dict(dann, gamma=5.0, scale=0.5), 10, total=10) == \
        pytest.approx(0.5 * (2 / (1 + math.exp(-5)) - 1))


def test_one_line_example_and_linear_epochs(tmp_path):
    probe = Probe(lambda r: (person_w(r), r.model.aux_head.loss_weight))
    runner = make_runner(tmp_path, [
        dict(type='CurriculumLearningHook', schedules=[
            dict(param=PERSON_W, milestones=[2, 4], values=[1.0, 1.5, 2.0]),
            dict(param='model.aux_head.loss_weight', type='linear', start=0.0, end=1.0,
                 name='aux')]),
        probe], max_epochs=5)
    runner.train()
    # end_at defaults to max_epochs (5): 'end' is reached at t=5, after the last epoch
    assert per_epoch(probe.records) == {0: (1.0, 0.0), 1: (1.0, 0.2), 2: (1.5, 0.4),
                                        3: (1.5, pytest.approx(0.6)), 4: (2.0, 0.8)}
    hub = runner.message_hub
    assert hub.get_scalar(f'train/curriculum/{PERSON_W}').current() == 2.0
    assert hub.get_scalar('train/curriculum/aux').current() == 0.8
    assert len(hub.get_scalar('train/curriculum/aux').data[0]) == 10  # one per iteration
    # the name matches the log processor's mean pattern ('loss'): logged as current value
    assert dict(data_src=f'curriculum/{PERSON_W}', method_name='current') in \
        runner.log_processor.custom_cfg


def test_iteration_clock_linear_cosine_dann(tmp_path):
    probe = Probe(lambda r: (r.model.aux_head.loss_weight, r.model.aux_head.temperature.item(),
                             r.model.grl.lambd))
    runner = make_runner(tmp_path, [
        dict(type='CurriculumLearningHook', schedules=[
            dict(param='model.aux_head.loss_weight', type='linear', start=0.0, end=1.0,
                 begin=1, end_at=5, by_epoch=False),
            dict(param='model.aux_head.temperature', type='cosine', start=1.0, end=0.0, begin=0,
                 end_at=4, by_epoch=False),
            dict(param='model.grl.lambd', type='dann', by_epoch=False, name='grl')]),
        probe], max_iters=6)
    runner.train()
    iters = [it for _, it, _ in probe.records]
    lin, cos, dann = zip(*[v for _, _, v in probe.records])
    assert iters == [0, 1, 2, 3, 4, 5]
    assert list(lin) == [0.0, 0.0, 0.25, 0.5, 0.75, 1.0]
    assert list(cos) == pytest.approx([1.0, 0.8535533905932737, 0.5, 0.1464466094067262, 0, 0])
    assert list(dann) == pytest.approx([2 / (1 + math.exp(-10 * t / 6)) - 1 for t in range(6)])
    assert dann[3] == pytest.approx(0.9866142981514303)
    assert runner.message_hub.get_scalar('train/curriculum/grl').current() == \
        pytest.approx(dann[-1])


def test_sampler_setter_called_with_updated_dict(tmp_path):
    runner = make_runner(tmp_path, [dict(type='CurriculumLearningHook', schedules=[
        dict(param='sampler.group_weights.1', milestones=[1, 2], values=[1.0, 2.0, 4.0]),
        dict(param='batch_sampler.sampler.group_weights.0', type='linear', start=1.0,
             end=3.0, begin=0, end_at=2, name='w0')])],
        sampler=GroupSampler(4), max_epochs=3)
    runner.train()
    sampler = runner.train_dataloader.sampler
    # one call per change (not per iteration), each with a fresh, complete dict
    assert sampler.calls == [{0: 1.0, 1: 2.0}, {0: 2.0, 1: 2.0},  # epoch 1
                             {0: 2.0, 1: 4.0}, {0: 3.0, 1: 4.0}]  # epoch 2
    assert sampler.group_weights == {0: 3.0, 1: 4.0}
    assert runner.message_hub.get_scalar('train/curriculum/w0').current() == 3.0


def test_resume_curriculum_and_stages(tmp_path):
    hooks = [dict(type='CurriculumLearningHook', schedules=[
        dict(param=PERSON_W, milestones=[1, 2], values=[1.0, 2.0, 3.0])]),
        dict(type='StagedTrainingHook', stages=[dict(begin=0, freeze=['backbone']),
                                                dict(begin=2, unfreeze=['backbone'])])]
    first = make_runner(tmp_path, hooks, max_epochs=2)
    first.train()
    ckpt_path = osp.join(str(tmp_path), 'epoch_1.pth')
    ckpt = torch.load(ckpt_path, map_location='cpu')
    assert ckpt['curriculum'] == {PERSON_W: dict(value=1.0, clock=0)}

    probe = Probe(lambda r: (person_w(r), r.model.backbone[0].weight.requires_grad,
                             r.model.backbone[1].training))
    resumed = make_runner(tmp_path, hooks + [probe], max_epochs=3, resume=True,
                          load_from=ckpt_path)
    resumed.train()
    # the scheduled value of epoch 1 right away (the fresh model had 1.0), then epoch 2's
    assert probe.at_train[0] == 2.0
    assert per_epoch(probe.records) == {1: (2.0, False, False), 2: (3.0, True, True)}
    # the backbone stayed frozen in the resumed epoch 1: as in the epoch-1 checkpoint
    after_2 = torch.load(osp.join(str(tmp_path), 'epoch_2.pth'), map_location='cpu')
    for key in ('backbone.0.weight', 'backbone.1.running_mean'):
        assert torch.equal(after_2['state_dict'][key], ckpt['state_dict'][key])
    assert not torch.equal(resumed.model.state_dict()['backbone.0.weight'],
                           ckpt['state_dict']['backbone.0.weight'])

    # a schedule changed since the checkpoint is reported (and the configured one is used)
    changed = make_runner(tmp_path, [dict(type='CurriculumLearningHook', schedules=[
        dict(param=PERSON_W, milestones=[1, 2], values=[5.0, 2.0, 3.0])])], max_epochs=2,
        resume=True, load_from=ckpt_path)
    warnings = []
    changed.logger.warning = lambda msg, *a, **k: warnings.append(msg)
    changed.train()
    assert any('schedule changed since the checkpoint: at clock 0 it gave 1, now 5' in w
               for w in warnings), warnings
    assert person_w(changed) == 2.0


@pytest.mark.parametrize('schedule, match', [
    (dict(param=PERSON_W, type='exp', start=0.0, end=1.0), "unknown type 'exp'"),
    (dict(param=PERSON_W, milestones=[2, 2], values=[1, 2, 3]), 'strictly increasing'),
    (dict(param=PERSON_W, milestones=[3, 1], values=[1, 2, 3]), 'strictly increasing'),
    (dict(param=PERSON_W, milestones=[1, 2], values=[1, 2]), r'len\(milestones\) \+ 1 = 3'),
    (dict(param=PERSON_W, milestones=[1], values=[1.0, float('nan')]), 'finite'),
    (dict(param=PERSON_W, type='linear', start=0.0, end=float('inf')), 'finite'),
    (dict(param=PERSON_W, type='cosine', start=0.0, end=1.0, begin=5, end_at=5),
     'begin < end_at'),
    (dict(param=PERSON_W, values=[1.0]), 'give type='),
    (dict(param=PERSON_W, milestone=[1], values=[1, 2]), 'give type='),
    (dict(param=PERSON_W, type='step', milestone=[1], values=[1, 2]), r"unknown key\(s\)"),
    (dict(param='optimizer.lr', milestones=[1], values=[1, 2]), 'dotted path'),
    (dict(param=PERSON_W, type='dann', gamma=float('nan')), 'finite'),
])
def test_curriculum_config_errors(schedule, match):
    with pytest.raises((ValueError, TypeError), match=match) as err:
        CurriculumLearningHook([dict(param='model.aux_head.loss_weight', milestones=[1],
                                     values=[1.0, 2.0]), schedule])
    assert 'schedule 1' in str(err.value)


def test_curriculum_duplicate_schedules():
    s = dict(param=PERSON_W, milestones=[1], values=[1.0, 2.0])
    with pytest.raises(ValueError, match='schedules 0 and 1 share the name'):
        CurriculumLearningHook([s, s])
    with pytest.raises(ValueError, match='non-empty list'):
        CurriculumLearningHook([])


@pytest.mark.parametrize('param, match', [
    ('model.heads.person.loss_cls.group_id_weigth.1',
     r"ToyLoss at 'model.heads.person.loss_cls' has no attribute or key 'group_id_weigth'"
     r".*group_id_weight"),
    (f'{PERSON_W[:-1]}7', r"dict at .*group_id_weight' has no attribute or key '7'.*\[1\]"),
    ('model.heads.persn.fc', r"Did you mean \['person'\]"),
    ('model.heads.person', 'numeric values'),
    ('dataset.0.inputs', 'numeric values'),
])
def test_curriculum_path_errors_before_first_iter(tmp_path, param, match):
    probe = Probe(lambda r: None)
    runner = make_runner(tmp_path, [dict(type='CurriculumLearningHook', schedules=[
        dict(param=param, milestones=[1], values=[1.0, 2.0])]), probe], max_epochs=1)
    with pytest.raises((ValueError, TypeError), match=match) as err:
        runner.train()
    assert 'schedule 0' in str(err.value)
    assert probe.records == []


def test_epoch_clock_on_iteration_loop_fails(tmp_path):
    runner = make_runner(tmp_path, [dict(type='CurriculumLearningHook', schedules=[
        dict(param=PERSON_W, milestones=[1], values=[1.0, 2.0])])], max_iters=2)
    with pytest.raises(ValueError, match='iteration-based'):
        runner.train()
    runner = make_runner(tmp_path, [dict(type='StagedTrainingHook',
                                         stages=[dict(begin=0, freeze=['backbone'])])],
                         max_iters=2)
    with pytest.raises(ValueError, match='iteration-based'):
        runner.train()


# --------------------------------------------------------------------------- staged training
class Snapshots(Hook):
    priority = 'LOWEST'

    def __init__(self):
        self.initial = None
        self.after_epoch = []
        self.after_iter = []
        self.bn_training = []
        self.momentum_keys = []

    @staticmethod
    def _state(runner):
        return {k: v.detach().clone() for k, v in runner.model.state_dict().items()}

    def before_train(self, runner):
        self.initial = self._state(runner)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.bn_training.append(runner.model.backbone[1].training)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.after_iter.append(self._state(runner))

    def after_train_epoch(self, runner):
        self.after_epoch.append(self._state(runner))
        opt = runner.optim_wrapper.optimizer
        self.momentum_keys.append(
            sum(1 for p in runner.model.backbone.parameters() if opt.state.get(p)))


BACKBONE_KEYS = ('backbone.0.weight', 'backbone.0.bias', 'backbone.1.weight',
                 'backbone.1.running_mean', 'backbone.1.running_var',
                 'backbone.1.num_batches_tracked')


def test_freeze_then_unfreeze_epochs(tmp_path):
    snap = Snapshots()
    runner = make_runner(tmp_path, [dict(type='StagedTrainingHook', stages=[
        dict(begin=0, freeze=['backbone']), dict(begin=2, unfreeze=['backbone'])]), snap],
        max_epochs=3)
    runner.train()
    init, (e0, e1, e2) = snap.initial, snap.after_epoch
    for key in BACKBONE_KEYS:  # bit-identical while frozen, incl. BatchNorm statistics
        assert torch.equal(e0[key], init[key]) and torch.equal(e1[key], init[key]), key
    for key in BACKBONE_KEYS:  # trains again after the stage boundary
        assert not torch.equal(e2[key], e1[key]), key
    for key in ('heads.person.fc.weight', 'heads.person.fc.bias'):  # heads always train
        assert not torch.equal(e0[key], init[key])
        assert not torch.equal(e1[key], e0[key])
        assert not torch.equal(e2[key], e1[key])
    # runner.model.train() ran every epoch, the frozen BatchNorm stayed in eval mode
    assert snap.bn_training == [False] * 4 + [True] * 2
    # frozen params never entered the optimizer state; unfrozen ones did
    assert snap.momentum_keys == [0, 0, 4]
    assert all(p.requires_grad for p in runner.model.parameters())


def test_nested_stage_iteration_clock(tmp_path):
    snap = Snapshots()
    hook = StagedTrainingHook(by_epoch=False, stages=[
        dict(begin=0, freeze=['backbone'], unfreeze=['backbone.1']),
        dict(begin=3, freeze='heads')])
    runner = make_runner(tmp_path, [hook, snap], max_iters=5)
    runner.train()
    init, its = snap.initial, snap.after_iter
    assert torch.equal(its[-1]['backbone.0.weight'], init['backbone.0.weight'])
    assert not torch.equal(its[-1]['backbone.1.weight'], init['backbone.1.weight'])
    assert not torch.equal(its[-1]['backbone.1.running_mean'], its[-2]['backbone.1.running_mean'])
    assert snap.bn_training == [True] * 5
    head = 'heads.person.fc.weight'
    assert not torch.equal(its[2][head], its[1][head])  # iter 2 still trains the head
    assert torch.equal(its[4][head], its[2][head])  # frozen from iter 3 on
    assert hook.frozen_eval_modules == []  # no norm layer in a frozen module


def test_eval_mode_all_keeps_unfrozen_child_training():
    model = nn.Module()
    model.backbone = nn.Sequential(nn.Dropout(0.5), nn.Sequential(nn.Linear(2, 2),
                                                                  nn.BatchNorm1d(2)))
    model.head = nn.Linear(2, 1)
    runner = SimpleNamespace(model=model, epoch=0, iter=0, max_epochs=2, max_iters=2,
                             train_loop=None, logger=MMLogger.get_current_instance())
    hook = StagedTrainingHook(eval_mode='all', stages=[
        dict(begin=0, freeze=['backbone'], unfreeze=['backbone.1'])])
    model.train()
    hook.before_train(runner)
    model.train()  # what the loop does every epoch
    hook.before_train_iter(runner, 0)
    assert not model.backbone.training and not model.backbone[0].training
    assert model.backbone[1].training and model.backbone[1][1].training and model.head.training
    assert not any(p.requires_grad for p in model.backbone[0].parameters())
    assert all(p.requires_grad for p in model.backbone[1].parameters())
    assert hook.frozen_eval_modules == ['backbone', 'backbone.0']


@pytest.mark.parametrize('stages, match', [
    ([dict(begin=2, freeze=['backbone']), dict(begin=1, unfreeze=['backbone'])],
     'strictly increasing'),
    ([dict(begin=1, freeze=['backbone']), dict(begin=1, unfreeze=['heads'])],
     'strictly increasing'),
    ([dict(begin=0, freeze=['backbone', 'heads'], unfreeze=['heads'])],
     r"\['heads'\] both frozen and unfrozen"),
    ([dict(begin=-1, freeze=['backbone'])], "'begin' must be a non-negative int"),
    ([dict(begin=0)], "give 'freeze' and/or 'unfreeze'"),
    ([dict(begin=0, frozen=['backbone'])], r"unknown key\(s\) \['frozen'\]"),
    ([dict(begin=0, freeze=[1])], 'list of module names'),
    ([], 'non-empty list'),
])
def test_staged_config_errors(stages, match):
    with pytest.raises((ValueError, TypeError), match=match):
        StagedTrainingHook(stages)
    with pytest.raises(ValueError, match='eval_mode'):
        StagedTrainingHook([dict(begin=0, freeze=['backbone'])], eval_mode='bn')


@pytest.mark.parametrize('path, match', [
    ('heads.persn', r"no module 'heads.persn'.*Close names: \['heads.person'"),
    ('backbone.2', r"no module 'backbone.2'.*modules under 'backbone': "
                   r"\['backbone.0', 'backbone.1'\]"),
])
def test_staged_unknown_module(tmp_path, path, match):
    runner = make_runner(tmp_path, [dict(type='StagedTrainingHook', stages=[
        dict(begin=0, freeze=['backbone']), dict(begin=1, unfreeze=[path])])], max_epochs=1)
    with pytest.raises(ValueError, match=match):
        runner.train()
