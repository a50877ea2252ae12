"""GradSurgeryOptimWrapper's copy-free path (issue 14) against a straightforward reference.

The reference is what the wrapper did before: a fresh whole-batch forward, one
``torch.autograd.grad`` per task, the (T, n_shared) matrix of task gradients stacked in
float64 and given to the torchjd aggregator; task-specific parameters get the sum of the
task gradients. The wrapper runs a tiny frozen-BN multi-head RetinaNet (2 heads; 3 tasks
with the dataset head), with and without ``trunk_per_head``, in three layouts of its task
gradients: every small parameter packed into one matrix (the default for a tiny model),
many small chunks, and every parameter left in place (dot products, in-place combination:
the default for large parameters).

Stated tolerance: each parameter's float32 gradient within ``1e-5 * max|reference|`` of
the float64 reference's (measured: <= 6e-7, float32 rounding; the aggregation moves the
trunk's gradient away from the plain sum by far more); with the whole-batch trunk, the
heads' own gradients are bit-identical to the reference's.
"""
import copy
from collections import OrderedDict

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from tiny_models import GROUP_CLASSES, backbone_neck, batch, build_detector

import mtl_plugin  # noqa: F401  (registers the models and the wrapper)
from mtl_plugin.engine.optim_wrappers.grad_surgery import build_aggregator
from mtl_plugin.task_losses import task_losses_of

AGG_CFGS = dict(PCGrad=dict(type='PCGrad'), GradVac=dict(type='GradVac', beta=0.5),
                CAGrad=dict(type='CAGrad', c=0.4))
LAYOUTS = dict(packed={}, chunked=dict(chunk_bytes=4096, own_bytes=2**20),
               in_place=dict(own_bytes=0))
GROUPS = ['person', 'animal', 'person', 'animal']


def _model(tasks: int, per_head: bool):
    parts = copy.deepcopy(backbone_neck())
    parts['backbone'] = dict(parts['backbone'], norm_eval=True,
                             norm_cfg=dict(type='BN', requires_grad=False))
    extra = dict(aux_head=dict(type='DatasetClsHead', in_channels=16, num_groups=2)) \
        if tasks == 3 else {}
    model = build_detector(**parts, head_classes=GROUP_CLASSES, trunk_per_head=per_head,
                           loss_weighting=dict(type='EqualWeighting'), **extra)
    with torch.no_grad():  # the heads' trunk gradients conflict (cos < 0): surgery acts
        for module in [*model.heads['animal'].cls_convs, *model.heads['animal'].reg_convs]:
            module.conv.weight.neg_()
    model.train()
    return model


def _seeded(aggregator):
    """PCGrad / GradVac draw a random task order: the same draw in both computations."""
    def seed(*_) -> None:
        torch.manual_seed(7)

    aggregator.gramian_weighting.register_forward_pre_hook(seed)
    return aggregator


def _reference(tasks: int, name: str, data: dict) -> dict:
    """Parameter name -> expected gradient (float64), by the straightforward computation."""
    model = _model(tasks, per_head=False)
    data = model.data_preprocessor(copy.deepcopy(data), True)
    total, _ = model.parse_losses(model(**data, mode='loss'))
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = OrderedDict()
    for task, loss in task_losses_of(total).items():
        if loss.grad_fn is not None:
            grads[task] = torch.autograd.grad(loss, [p for _, p in named], retain_graph=True,
                                              allow_unused=True)
    shared = [i for i in range(len(named)) if sum(g[i] is not None for g in grads.values()) >= 2]
    rows = [g for g in grads.values() if any(g[i] is not None for i in shared)]
    matrix = torch.stack([torch.cat([(g[i] if g[i] is not None else torch.zeros_like(
        named[i][1])).double().reshape(-1) for i in shared]) for g in rows])
    vector = _seeded(build_aggregator(AGG_CFGS[name]))(matrix)
    out, n0 = {}, named[shared[0]][1].numel()
    assert not _close(matrix.sum(0)[:n0], vector[:n0], 1e-3)  # the aggregation acted
    for i, chunk in zip(shared, vector.split([named[i][1].numel() for i in shared])):
        out[named[i][0]] = chunk.view_as(named[i][1])
    for i, (n, _) in enumerate(named):
        present = [g[i] for g in grads.values() if g[i] is not None]
        if i not in shared and present:
            out[n] = present[0]  # one task: exactly its gradient
    assert len(rows) == tasks and len(shared) > 20, (len(rows), len(shared))
    return out


def _close(got: torch.Tensor, ref: torch.Tensor, tol: float = 1e-5) -> bool:
    got, ref = got.double(), ref.double()
    return float((got - ref).abs().max()) <= tol * float(ref.abs().max())


def _wrapper_grads(tasks: int, per_head: bool, name: str, layout: str, data: dict) -> dict:
    model = _model(tasks, per_head)
    wrapper = build_optim_wrapper(model, dict(type='GradSurgeryOptimWrapper',
                                              optimizer=dict(type='SGD', lr=0.1),
                                              aggregator=AGG_CFGS[name]))
    for key, value in LAYOUTS[layout].items():
        setattr(wrapper, key, value)
    _seeded(wrapper.aggregator)
    seen = []
    wrapper.optimizer.register_step_pre_hook(lambda *_: seen.append(
        {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    model.train_step(copy.deepcopy(data), wrapper)
    return seen[0]


@pytest.mark.parametrize('per_head', [False, True])
@pytest.mark.parametrize('tasks', [2, 3])
@pytest.mark.parametrize('name', sorted(AGG_CFGS))
def test_same_update_as_the_reference(name, tasks, per_head):
    data = batch(GROUPS, seed=3)
    expected = _reference(tasks, name, data)
    for layout in LAYOUTS:
        got = _wrapper_grads(tasks, per_head, name, layout, data)
        assert sorted(got) == sorted(expected), layout  # idle parameters: no gradient
        for key, ref in expected.items():
            assert _close(got[key], ref), (layout, key, float(
                (got[key].double() - ref.double()).abs().max() / ref.double().abs().max()))
        if not per_head:  # the same forward as the reference's: the heads' own gradients
            for key in ('heads.person.retina_cls.weight', 'heads.animal.retina_reg.bias'):
                assert torch.equal(got[key], expected[key]), (layout, key)


# ------------------------------------------- accumulation and DDP with every layout
def _layout(monkeypatch, layout: str) -> None:
    from mtl_plugin.engine.optim_wrappers.grad_surgery import GradSurgeryOptimWrapper
    for key, value in LAYOUTS[layout].items():
        monkeypatch.setattr(GradSurgeryOptimWrapper, key, value)


@pytest.mark.parametrize('layout', ['chunked', 'in_place'])
def test_accumulation_equals_full_batch_in_every_layout(monkeypatch, layout):
    from test_grad_surgery import TinyMTL, build, capture_grads, make_batch
    _layout(monkeypatch, layout)
    full = make_batch(8, c_mask=[1, 0, 1, 0, 0, 0, 0, 0], dtype=torch.float64)
    halves = [{k: v[s] for k, v in full.items()} for s in (slice(0, 4), slice(4, 8))]
    results = []
    for counts, batches in ((1, [full]), (2, halves)):
        model = TinyMTL(('a', 'b', 'c')).double()
        wrapper = build(model, accumulative_counts=counts)
        seen = capture_grads(wrapper, model)
        for b in batches:
            model.train_step(b, wrapper)
        assert len(seen) == 1 and wrapper.num_updates == 1
        results.append(seen[0])
    assert results[0]['heads.c.weight'] is not None
    for k, g in results[0].items():
        assert torch.allclose(g, results[1][k], rtol=1e-9, atol=1e-12), k


def _ddp_in_place_worker(rank: int, port: int, out_dir: str) -> None:
    from test_grad_surgery import _ddp_worker

    from mtl_plugin.engine.optim_wrappers.grad_surgery import GradSurgeryOptimWrapper
    GradSurgeryOptimWrapper.own_bytes = 0  # every parameter in place (a fresh process)
    _ddp_worker(rank, port, out_dir)


@pytest.mark.slow
def test_ddp_matches_single_process_in_place(tmp_path, monkeypatch):
    import torch.multiprocessing as mp
    from test_grad_surgery import DDP_TASKS, TinyMTL, _free_port, build, ddp_batch
    mp.spawn(_ddp_in_place_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f'rank{r}.pth', weights_only=False) for r in (0, 1))
    for tasks in DDP_TASKS:
        for k in r0[tasks]:
            assert torch.equal(r0[tasks][k], r1[tasks][k]), (tasks, k)
    _layout(monkeypatch, 'in_place')
    model = TinyMTL(DDP_TASKS[0])
    wrapper = build(model, optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
    for step in range(2):
        model.train_step(ddp_batch(step), wrapper)
    for k, p in model.named_parameters():
        assert torch.allclose(r0[DDP_TASKS[0]][k], p, rtol=0, atol=1e-6), k
