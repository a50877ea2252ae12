"""Head isolation under 2-process DDP (gloo on CPU)."""
import pytest
import os
import socket
from types import SimpleNamespace

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _heads_state(model, wrapper):
    state = wrapper.optimizer.state
    out = {}
    for head in ('person', 'animal'):
        for k, p in model.heads[head].named_parameters():
            out[f'{head}.{k}'] = p.detach().clone()
            buf = state.get(p, {}).get('momentum_buffer')
            out[f'{head}.{k}.momentum'] = None if buf is None else buf.clone()
    return out


def _worker(rank, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    import mtl_plugin  # noqa: F401
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import build_optim_wrapper

    from mtl_plugin.engine import HeadIsolationHook
    from tiny_models import META, batch, build_detector
    model = build_detector()
    ddp = MMDistributedDataParallel(module=model, device_ids=None, find_unused_parameters=True)
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-2)))
    runner = SimpleNamespace(model=ddp, optim_wrapper=wrapper, train_dataloader=SimpleNamespace(
        dataset=SimpleNamespace(metainfo=META)))
    HeadIsolationHook().before_train(runner)
    ddp.train()
    states = [_heads_state(model, wrapper)]
    # step 1: rank 0 sees only persons, rank 1 only animals -> both heads update everywhere
    ddp.train_step(batch(['person', 'person'] if rank == 0 else ['animal', 'animal'], seed=1 + rank),
                   wrapper)
    states.append(_heads_state(model, wrapper))
    # step 2: no rank has an animal -> the animal head stays bit-identical
    ddp.train_step(batch(['person', 'person'], seed=3 + rank), wrapper)
    states.append(_heads_state(model, wrapper))
    torch.save(states, os.path.join(out_dir, f'rank{rank}.pth'))
    dist.destroy_process_group()


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _same(a, b):
    return (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))


@pytest.mark.slow
def test_ddp_isolation(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f'rank{r}.pth', weights_only=False) for r in (0, 1))
    init, step1, step2 = r0
    for key in step1:  # ranks agree bit for bit after every step
        for s in range(3):
            assert _same(r0[s][key], r1[s][key]), (s, key)
    params = [k for k in step1 if not k.endswith('.momentum')]
    for head in ('person', 'animal'):
        assert any(not torch.equal(init[k], step1[k]) for k in params if k.startswith(head))
    for key in step1:
        if key.startswith('animal.'):
            assert _same(step1[key], step2[key]), key
    assert any(not torch.equal(step1[k], step2[k]) for k in params if k.startswith('person.'))
