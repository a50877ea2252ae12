"""Distributed set-up that also works on CPU-only machines (gloo)."""
import os

import torch
import torch.distributed as torch_dist
from mmengine.config import Config


def setup_cpu_distributed(cfg: Config, launcher: str) -> bool:
    """Prepare ``cfg`` for DDP on a machine without CUDA.

    MMEngine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` unconditionally and
    the Runner hands ``device_ids=[LOCAL_RANK]`` to DDP; both fail without a GPU. When no
    GPU is present we initialise a gloo process group ourselves (the Runner then skips
    its own ``init_dist``) and pass ``device_ids=None`` to the model wrapper. With a GPU,
    nothing changes: the stock NCCL path runs.

    Args:
        cfg (Config): The run's config; ``model_wrapper_cfg`` is set in place on CPU.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Returns:
        bool: True when a CPU (gloo) process group was initialised here.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise ValueError(f'launcher {launcher!r} on a machine without GPU: use '
                         "--launcher pytorch with torchrun (gloo backend)")
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo', rank=int(os.environ['RANK']),
                                      world_size=int(os.environ['WORLD_SIZE']))
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel'))
    wrapper['device_ids'] = None
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    return True


def finish_distributed() -> None:
    """Tear the process group down in step on every rank, before the interpreter exits.

    Leaving a gloo group to the interpreter's exit lets one rank destroy its pairs while
    another still holds them, which aborts that rank (SIGABRT) after a run that
    succeeded. A barrier followed by ``destroy_process_group`` ends every rank in order.
    Does nothing in a single-process run.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
