"""Shared fixtures: paths, generated data, the real samples in ../shared/data/real."""
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHARED_REAL = osp.normpath(osp.join(REPO, '..', 'shared', 'data', 'real'))
PYTHON = sys.executable


def pytest_configure(config):
    config.addinivalue_line('markers', 'real_data: needs ../shared/data/real')
    config.addinivalue_line('markers', 'slow: Runner / subprocess / DDP runs (skip with -m "not slow")')


@pytest.fixture(scope='session')
def shared_real() -> str:
    """Path of the real sample data; tests using it skip only when it is absent."""
    if not osp.isdir(SHARED_REAL):
        pytest.skip(f'{SHARED_REAL} is absent')
    return SHARED_REAL


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory) -> str:
    """A small generated two-source dataset (person; cat + bird), 128 px."""
    from mtl_plugin.synthetic import GeneratorConfig, generate_multi_source
    root = str(tmp_path_factory.mktemp('synthetic'))
    generate_multi_source(root, GeneratorConfig(num_train=16, num_val=8, num_test=8, seed=0))
    return root


def load_tool(rel: str):
    """Import a ``tools/*.py`` script (relative to the repo) as a module."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'tool_{osp.basename(rel)[:-3]}',
                                                  osp.join(REPO, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(args, cwd=REPO, timeout=600, env=None) -> subprocess.CompletedProcess:
    """Run a tools/*.py script (or any argv) and fail with its output if it fails."""
    full_env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1', **(env or {}))
    proc = subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        # the lines that name a failure, wherever they are in a long, warning-filled stderr
        causes = [line for line in proc.stderr.splitlines() if any(
            word in line for word in ('Error', 'error:', 'terminate', 'what()', 'Abort'))]
        raise AssertionError(f'{args} exited {proc.returncode}\n--- failure lines\n'
                             + '\n'.join(causes[-40:]) + f'\n--- stdout\n{proc.stdout[-4000:]}'
                             f'\n--- stderr\n{proc.stderr[-6000:]}')
    return proc
