"""Shared helpers for benchmarks: machine note, alternating timing, results table + JSON."""
import json
import os
import platform
import statistics
import subprocess
import time
from typing import Callable, Dict, List

import torch


def machine() -> dict:
    """What the numbers were measured on."""
    try:
        cpu = subprocess.run(['lscpu'], capture_output=True, text=True).stdout
        model = next((l.split(':', 1)[1].strip() for l in cpu.splitlines()
                      if l.startswith('Model name')), platform.processor())
    except OSError:
        model = platform.processor()
    return dict(cpu=model, cores=os.cpu_count(), torch_threads=torch.get_num_threads(),
                python=platform.python_version(), torch=torch.__version__,
                gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)


def time_alternating(fns: Dict[str, Callable[[], None]], repeats: int = 7,
                     warmup: int = 2) -> Dict[str, float]:
    """Median seconds of each function, run in turn A, B, C, A, B, C, ... in one process."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def print_table(title: str, rows: List[dict], cols: List[str]) -> None:
    """Print rows as a fixed-width table."""
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in cols]
    print(f'\n{title}')
    print('  '.join(c.ljust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print('  '.join(_fmt(r.get(c)).ljust(w) for c, w in zip(cols, widths)))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f'{v:.3f}'
    return '' if v is None else str(v)


def save(path: str, payload: dict) -> None:
    """Write results JSON (with the machine noted)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    payload = dict(machine=machine(), date=time.strftime('%Y-%m-%d'), **payload)
    with open(path, 'w') as f:
        json.dump(payload, f, indent=1)
    print(f'\nsaved {path}')
