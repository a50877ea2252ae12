"""GradSurgeryOptimWrapper: torchjd maths, exact gradients, Runner runs, accumulation, DDP."""
import math
import os
import socket
import uuid
from collections import OrderedDict

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.model import BaseModel
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from torch import nn
from torchjd.aggregation import CAGrad, GradVac, PCGrad

import mtl_plugin  # noqa: F401  (registers GradSurgeryOptimWrapper)
from mtl_plugin.task_losses import MultiTaskLoss
from mtl_plugin.engine.optim_wrappers.grad_surgery import (AGGREGATORS,
                                                           GradSurgeryOptimWrapper,
                                                           build_aggregator)

AGG_CFGS = dict(PCGrad=dict(type='PCGrad'), GradVac=dict(type='GradVac', beta=0.5),
                CAGrad=dict(type='CAGrad', c=0.4))


class TinyMTL(BaseModel):
    """Shared trunk ``tanh(Linear(4, 3))`` and one ``Linear -> 1`` head per task.

    ``data_samples`` (B, 3) holds the target ``y``, the mask of task ``c`` and the target
    of task ``d``. Task ``a`` regresses ``y`` and ``b`` regresses ``-y`` from the trunk with
    identical heads, so their trunk gradients conflict; ``d`` is a third trunk task; ``c``
    is task-specific only (a head on the raw inputs) and present on masked samples only.
    """

    def __init__(self, tasks=('a', 'b'), expose: bool = True) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.trunk = nn.Linear(4, 3)
            self.heads = nn.ModuleDict({t: nn.Linear(4 if t == 'c' else 3, 1) for t in tasks})
        if 'b' in tasks:
            self.heads['b'].load_state_dict(self.heads['a'].state_dict())
        self.expose = expose
        self.autocast_seen = []

    def forward(self, inputs, data_samples=None, mode='tensor'):
        self.autocast_seen.append(torch.is_autocast_enabled('cpu'))
        feats = torch.tanh(self.trunk(inputs))  # (B, 3)
        y, mask, y_d = data_samples.unbind(1)
        targets = dict(a=y, b=-y, d=y_d)
        losses = OrderedDict()
        for task, head in self.heads.items():
            if task == 'c':
                err = (head(inputs).squeeze(1) - y) ** 2
                losses['c.loss'] = (mask * err).sum() / len(y) if mask.any() \
                    else inputs.new_zeros(())  # absent task: no graph
            else:
                losses[f'{task}.loss'] = ((head(feats).squeeze(1) - targets[task]) ** 2).mean()
        return losses

    def parse_losses(self, losses):
        total, log_vars = super().parse_losses(losses)
        if self.expose:  # the explicit hand-off: the total carries the task losses
            total = MultiTaskLoss.of(OrderedDict((k.split('.')[0], v)
                                                 for k, v in losses.items()), total)
        return total, log_vars


def make_batch(n: int = 8, seed: int = 0, c_mask=None, dtype=torch.float32) -> dict:
    g = torch.Generator().manual_seed(seed)
    inputs = torch.rand(n, 4, generator=g)
    y = 2 + torch.rand(n, generator=g)
    mask = torch.zeros(n) if c_mask is None else torch.tensor(c_mask, dtype=torch.float)
    samples = torch.stack([y, mask, torch.rand(n, generator=g)], 1)
    return dict(inputs=inputs.to(dtype), data_samples=samples.to(dtype))


def build(model, **cfg):
    base = dict(type='GradSurgeryOptimWrapper', optimizer=dict(type='SGD', lr=0.1))
    return build_optim_wrapper(model, dict(base, **cfg))


def capture_grads(wrapper, model):
    """Record every parameter's ``.grad`` just before each optimizer step."""
    seen = []
    wrapper.optimizer.register_step_pre_hook(lambda *_: seen.append(
        {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}))
    return seen


def task_grads(model, batch, task):
    """Reference: autograd of one task alone, on a fresh forward."""
    losses = model(**batch, mode='loss')
    names = [n for n, p in model.named_parameters()]
    grads = torch.autograd.grad(losses[f'{task}.loss'], list(model.parameters()),
                                allow_unused=True)
    return dict(zip(names, grads))


# ---------------------------------------------------------------- torchjd maths
def test_pcgrad_conflicting_pair_is_sum_of_projections():
    # g1' = g1 - (g1.g2/|g2|^2) g2 = (0.5, 0.5); g2' = g2 - (g2.g1/|g1|^2) g1 = (0, 1)
    out = PCGrad()(torch.tensor([[1.0, 0.0], [-1.0, 1.0]]))
    assert torch.equal(out, torch.tensor([0.5, 1.5]))  # torchjd returns the SUM


def test_pcgrad_leaves_non_conflicting_pair():
    assert torch.equal(PCGrad()(torch.tensor([[1.0, 0.0], [1.0, 1.0]])), torch.tensor([2.0, 1.0]))


def test_gradvac_two_steps_and_ema_target():
    agg = GradVac(beta=0.5, eps=0.0)  # no denominator epsilon: exact closed forms
    matrix = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    phi = -1 / math.sqrt(2)  # cos(g1, g2)
    # step 1: target 0 > phi, w = |g_i| (0 - phi) / |g_j| -> g1 + 0.5 g2, g2 + g1 (= PCGrad)
    assert torch.allclose(agg(matrix), torch.tensor([0.5, 1.5], dtype=torch.float64))
    hat = 0.5 * phi  # EMA: (1 - beta) * 0 + beta * phi
    assert torch.allclose(agg.gramian_weighting._phi_t,
                          torch.tensor([[0.0, hat], [hat, 0.0]], dtype=torch.float64))
    # step 2: w_ij = |g_i| (hat sqrt(1-phi^2) - phi sqrt(1-hat^2)) / (|g_j| sqrt(1-hat^2))
    # w_12 = 1/2 - 1/(2 sqrt 7), w_21 = 1 - 1/sqrt 7; sum = (w_21 - w_12, 1 + w_12)
    r7 = math.sqrt(7)
    expected = torch.tensor([0.5 - 0.5 / r7, 1.5 - 0.5 / r7], dtype=torch.float64)
    assert torch.allclose(agg(matrix), expected, rtol=0, atol=1e-12)
    hat2 = 0.5 * hat + 0.5 * phi  # = -3 / (4 sqrt 2)
    assert math.isclose(float(agg.gramian_weighting._phi_t[0, 1]), hat2, abs_tol=1e-12)


@pytest.mark.parametrize('rows', [[[1.0, 0.0], [-1.0, 1.0]], [[2.0, 1.0], [-1.0, 0.5]]])
def test_cagrad_matches_scipy(rows):
    from scipy.optimize import minimize_scalar
    c = 0.5
    g = torch.tensor(rows, dtype=torch.float64)
    g0 = g.mean(0)
    # CAGrad: w* = argmin_{w in simplex} g_w . g0 + c |g0| |g_w|;  d = g0 + c |g0| g_w / |g_w|
    def cost(t):
        gw = t * g[0] + (1 - t) * g[1]
        return float(gw @ g0 + c * g0.norm() * gw.norm())
    t = minimize_scalar(cost, bounds=(0, 1), method='bounded', options=dict(xatol=1e-12)).x
    gw = t * g[0] + (1 - t) * g[1]
    expected = g0 + c * g0.norm() * gw / gw.norm()
    # torchjd solves the QP with CLARABEL (interior point): ~2e-5 off at a simplex vertex
    assert torch.allclose(CAGrad(c=c)(g), expected, atol=1e-4)


def test_cagrad_hand_computed():
    # g0 = (0, 0.5); F(t) = 0.5 (1 - t) + 0.25 |(2t - 1, 1 - t)| is minimal at t = 1, so
    # g_w = g1 = (1, 0) and d = g0 + c |g0| g1 / |g1| = (0.25, 0.5)
    out = CAGrad(c=0.5)(torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64))
    assert torch.allclose(out, torch.tensor([0.25, 0.5], dtype=torch.float64), atol=1e-4)
    assert not torch.allclose(out, torch.tensor([0.0, 0.5], dtype=torch.float64), atol=1e-2)


def test_build_aggregator():
    assert {'PCGrad', 'GradVac', 'CAGrad', 'UPGrad', 'MGDA'} <= set(AGGREGATORS)
    assert 'PCGradWeighting' not in AGGREGATORS and 'Aggregator' not in AGGREGATORS
    assert build_aggregator(dict(type='CAGrad', c=0.3)).c == 0.3
    with pytest.raises(ValueError, match=r"unknown aggregator 'PCGard'.*'PCGrad'"):
        build_aggregator(dict(type='PCGard'))
    with pytest.raises(TypeError, match='cannot build aggregator CAGrad'):
        build_aggregator(dict(type='CAGrad'))
    with pytest.raises(TypeError, match="dict\\(type='PCGrad'\\)"):
        build_aggregator('PCGrad')


# ---------------------------------------------------------------- exact gradients
@pytest.mark.parametrize('name', sorted(AGG_CFGS))
def test_head_grads_exact_and_shared_aggregated(name):
    model = TinyMTL(('a', 'b', 'c'))
    wrapper = build(model, aggregator=AGG_CFGS[name])
    seen = capture_grads(wrapper, model)
    batch = make_batch()  # c absent: all-zero mask
    ref = {t: task_grads(model, batch, t) for t in ('a', 'b')}
    model.train_step(batch, wrapper)
    grads = seen[0]
    for task in ('a', 'b'):  # bit-identical to autograd of that task alone
        for k in ('weight', 'bias'):
            assert torch.equal(grads[f'heads.{task}.{k}'], ref[task][f'heads.{task}.{k}'])
    assert grads['heads.c.weight'] is None and grads['heads.c.bias'] is None  # idle head
    matrix = torch.stack([torch.cat([ref[t]['trunk.weight'].flatten(), ref[t]['trunk.bias']])
                          for t in ('a', 'b')])  # (2, 15)
    expected = build_aggregator(AGG_CFGS[name])(matrix)
    got = torch.cat([grads['trunk.weight'].flatten(), grads['trunk.bias']])
    assert torch.allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert not torch.allclose(got, matrix.sum(0), atol=1e-3)  # surgery changed something
    cos = wrapper.message_hub.get_scalar('train/grad_cos.a.b').current()
    assert math.isclose(cos, float(torch.cosine_similarity(*matrix, dim=0)), rel_tol=1e-5)
    assert cos < 0 and wrapper.message_hub.get_scalar('train/grad_conflicts').current() == 1
    assert model.heads.c.weight.grad is None and model.trunk.weight.grad is None  # zeroed


def test_shared_prefixes():
    batch = make_batch()
    outs = []
    for shared in (None, ['trunk']):
        model = TinyMTL()
        seen = capture_grads(wrapper := build(model, shared=shared), model)
        model.train_step(batch, wrapper)
        outs.append(seen[0])
    assert all(torch.equal(outs[0][k], outs[1][k]) for k in outs[0])
    model = TinyMTL()
    wrapper = build(model, shared=['heads.a'])  # only task a reaches it: no aggregation
    seen = capture_grads(wrapper, model)
    ref = task_grads(model, batch, 'a')
    model.train_step(batch, wrapper)
    assert torch.equal(seen[0]['heads.a.bias'], ref['heads.a.bias'])  # one task: its grad
    model = TinyMTL()
    wrapper = build(model, shared=['trunk', 'neck'])
    with pytest.raises(ValueError, match=r"shared prefixes \['neck'\] match no"):
        model.train_step(batch, wrapper)


def test_accumulation_equals_full_batch():
    # float64: a and b nearly cancel on the trunk, float32 round-off would dominate
    full = make_batch(8, c_mask=[1, 0, 1, 0, 0, 0, 0, 0], dtype=torch.float64)  # c: half 1
    halves = [{k: v[s] for k, v in full.items()} for s in (slice(0, 4), slice(4, 8))]
    results = []
    for counts, batches in ((1, [full]), (2, halves)):
        model = TinyMTL(('a', 'b', 'c')).double()
        wrapper = build(model, accumulative_counts=counts)
        seen = capture_grads(wrapper, model)
        for b in batches:
            model.train_step(b, wrapper)
        assert len(seen) == 1 and wrapper.num_updates == 1
        results.append((seen[0], dict(model.named_parameters())))
    # c: (masked sum) / 8 on the full batch; / 4 on half 1, then / 2 by accumulation
    (g1, p1), (g2, p2) = results
    for k in g1:
        assert torch.allclose(g1[k], g2[k], rtol=1e-9, atol=1e-12), k
        assert torch.allclose(p1[k], p2[k], rtol=1e-9, atol=1e-12), k


class RoutedTinyMTL(TinyMTL):
    """Like a routed multi-head model on a one-group batch: only task ``a`` has a loss."""

    def head_modules(self):
        return dict(self.heads)

    def forward(self, *args, **kwargs):
        losses = super().forward(*args, **kwargs)
        return losses if not isinstance(losses, dict) else OrderedDict({'a.loss': losses['a.loss']})

    def parse_losses(self, losses):
        total, log_vars = BaseModel.parse_losses(self, losses)
        return MultiTaskLoss.of(OrderedDict(a=losses['a.loss']), total), log_vars


def test_one_task_batch_of_a_multi_head_model():
    model = RoutedTinyMTL()
    wrapper = build(model)
    seen = capture_grads(wrapper, model)
    batch = make_batch()
    ref = model(**batch, mode='loss')['a.loss']
    ref = dict(zip([n for n, _ in model.named_parameters()], torch.autograd.grad(
        ref, list(model.parameters()), allow_unused=True)))
    model.train_step(batch, wrapper)  # no error: the model has 2 heads
    for k, g in seen[0].items():  # nothing to aggregate: task a's own gradient everywhere
        assert (g is None and ref[k] is None) or torch.equal(g, ref[k]), k
    assert seen[0]['heads.b.weight'] is None


# ---------------------------------------------------------------- errors
def test_errors():
    batch = make_batch()
    model = TinyMTL(expose=False)
    with pytest.raises(RuntimeError, match=r"task_losses=\.\.\.\)\): give the model loss_weighting"):
        model.train_step(batch, build(model))
    model = TinyMTL(('a',))
    with pytest.raises(ValueError, match=r"needs >= 2 tasks, but the model exposes \['a'\]"):
        model.train_step(batch, build(model))
    model = TinyMTL()
    wrapper = build(model)
    with pytest.raises(RuntimeError, match='has not seen the model'):
        wrapper.update_params(torch.tensor(1.0, requires_grad=True))
    model.train_step(batch, wrapper)
    with wrapper.optim_context(model):  # a plain total carries no task losses
        losses = model(**batch, mode='loss')
        loss = sum(losses.values())
    with pytest.raises(RuntimeError, match='needs per-task losses'):
        wrapper.update_params(loss)
    tasks = OrderedDict((k.split('.')[0], v) for k, v in losses.items())
    with pytest.raises(ValueError, match='sum to .* every loss term must belong'):
        wrapper.update_params(loss + 1, task_losses=tasks)
    wrapper.update_params(loss, task_losses=tasks)  # explicit terms: accepted
    with pytest.raises(ValueError, match="float16 would need a loss scaler"):
        build(TinyMTL(), autocast=dict(dtype='float16'))
    with pytest.raises(TypeError, match="shared must be a non-empty list.*'trunk'"):
        build(TinyMTL(), shared='trunk')
    with pytest.raises(ValueError, match='unknown aggregator'):
        build(TinyMTL(), aggregator=dict(type='Nope'))


# ---------------------------------------------------------------- MMEngine Runner
@pytest.mark.parametrize('mode', ['fp32', 'bf16', 'accum2'])
@pytest.mark.parametrize('name', sorted(AGG_CFGS))
def test_runner(tmp_path, name, mode):
    from mmengine.runner import Runner
    g = torch.Generator().manual_seed(1)
    data = [dict(inputs=torch.rand(4, generator=g),
                 data_samples=torch.tensor([2.5, 0.0, 0.3])) for _ in range(8)]
    optim = dict(type='GradSurgeryOptimWrapper', optimizer=dict(type='SGD', lr=0.01),
                 aggregator=AGG_CFGS[name])
    if mode == 'bf16':
        optim['autocast'] = dict(dtype='bfloat16')
    if mode == 'accum2':
        optim['accumulative_counts'] = 2
    model = TinyMTL(('a', 'b', 'c'))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with DefaultScope.overwrite_default_scope('mmengine'):
        runner = Runner(
            model=model, work_dir=str(tmp_path), experiment_name=f'gs_{uuid.uuid4().hex[:8]}',
            train_dataloader=dict(dataset=data, batch_size=2, num_workers=0,
                                  sampler=dict(type='InfiniteSampler', shuffle=False),
                                  collate_fn=dict(type='default_collate')),
            optim_wrapper=optim, train_cfg=dict(by_epoch=False, max_iters=2),
            default_hooks=dict(checkpoint=None, logger=dict(type='LoggerHook', interval=1)),
            log_level='WARNING')
        runner.train()
    assert isinstance(runner.optim_wrapper, GradSurgeryOptimWrapper)
    assert runner.optim_wrapper.num_updates == (1 if mode == 'accum2' else 2)
    assert model.autocast_seen == [mode == 'bf16'] * 2
    after = model.state_dict()
    for k in ('trunk.weight', 'heads.a.weight', 'heads.b.bias'):
        assert not torch.equal(before[k], after[k]), k
    assert torch.equal(before['heads.c.weight'], after['heads.c.weight'])  # c never present
    assert runner.message_hub.get_scalar('train/grad_conflicts').current() == 1


# ---------------------------------------------------------------- DDP (gloo, 2 ranks)
DDP_TASKS = (('a', 'b', 'c'), ('a', 'b', 'd'))


def ddp_batch(step: int, rank=None) -> dict:
    """Union batch of 8 (c present on 2 samples of rank 0's half, at step 0 only)."""
    batch = make_batch(8, seed=10 + step, c_mask=[1, 0, 1, 0, 0, 0, 0, 0] if step == 0 else None)
    return batch if rank is None else {k: v[4 * rank:4 * rank + 4] for k, v in batch.items()}


def _ddp_worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    from mmengine.model import MMDistributedDataParallel
    torch.manual_seed(100 + rank)  # different RNG per rank: aggregation must not care
    try:
        out, syncs = {}, []
        for tasks in DDP_TASKS:
            model = TinyMTL(tasks)
            ddp = MMDistributedDataParallel(module=model, device_ids=None)
            model.register_forward_pre_hook(  # DDP's own gradient sync is off in forward
                lambda *_: syncs.append(ddp.require_backward_grad_sync))
            wrapper = build(model, optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
            for step in range(2):
                ddp.train_step(ddp_batch(step, rank), wrapper)
            out[tasks] = {k: v.detach().clone() for k, v in model.named_parameters()}
        out['syncs'] = syncs
        torch.save(out, os.path.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_ddp_matches_single_process(tmp_path):
    mp.spawn(_ddp_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f'rank{r}.pth', weights_only=False) for r in (0, 1))
    assert r0['syncs'] == r1['syncs'] == [False] * 4  # every micro-step ran in no_sync
    for tasks in DDP_TASKS:  # ranks agree bit for bit (PCGrad with T=3 is randomised)
        for k in r0[tasks]:
            assert torch.equal(r0[tasks][k], r1[tasks][k]), (tasks, k)
    model = TinyMTL(DDP_TASKS[0])
    init = {k: v.detach().clone() for k, v in model.named_parameters()}
    wrapper = build(model, optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
    for step in range(2):
        model.train_step(ddp_batch(step), wrapper)
    for k, p in model.named_parameters():
        assert torch.allclose(r0[DDP_TASKS[0]][k], p, rtol=0, atol=1e-6), k
        assert not torch.equal(init[k], p), k  # every param moved (c at step 0 only)


class UncertaintyTinyMTL(TinyMTL):
    """TinyMTL whose task losses go through a learnt ``UncertaintyWeighting``."""

    def __init__(self) -> None:
        super().__init__()
        from mtl_plugin.models.multitask import UncertaintyWeighting
        self.loss_weighting = UncertaintyWeighting(init_log_var=0.3)
        self.loss_weighting.set_task_names(['a', 'b'])

    def parse_losses(self, losses):
        _, log_vars = BaseModel.parse_losses(self, losses)
        tasks = OrderedDict((k.split('.')[0], v) for k, v in losses.items())
        terms, _ = self.loss_weighting.weighted_losses(tasks)
        return MultiTaskLoss.of(terms), log_vars


@pytest.mark.parametrize('shared', [None, ['trunk', 'loss_weighting']])
def test_learnt_loss_weights_are_per_task_not_shared(shared):
    """Issue 12: log_vars got PCGrad'd with the trunk (every task reaches the tensor)."""
    model = UncertaintyTinyMTL()
    wrapper = build(model, shared=shared)
    seen = capture_grads(wrapper, model)
    batch = make_batch()
    # reference: each task's own gradient of its weighted term, summed (entry t = task t's)
    losses = model(**batch, mode='loss')
    total, _ = model.parse_losses(losses)
    expected, trunk_sum = torch.autograd.grad(
        total, [model.loss_weighting.log_vars, model.trunk.weight])
    model.train_step(batch, wrapper)
    assert torch.equal(seen[0]['loss_weighting.log_vars'], expected)
    # the trunk is still aggregated (PCGrad on the two conflicting tasks)
    assert not torch.allclose(seen[0]['trunk.weight'], trunk_sum, atol=1e-4)
