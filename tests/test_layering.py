"""Layers import downwards, and ``import mtl_plugin`` loads neither mmpose nor torchjd."""
import ast
import os.path as osp
import subprocess
import sys
from pathlib import Path

from conftest import REPO

PKG = Path(REPO) / 'mtl_plugin'
#: layer -> the layers it must not import
FORBIDDEN = {
    'datasets': ('engine', 'analysis', 'apis', 'checkpoints', 'visualization'),
    'models': ('engine', 'analysis', 'apis', 'checkpoints', 'visualization'),
    'evaluation': ('engine', 'analysis', 'apis', 'checkpoints', 'visualization'),
    'engine': ('analysis', 'apis', 'checkpoints'),
    'visualization': ('engine', 'analysis', 'apis', 'checkpoints'),
    'checkpoints': ('analysis', 'apis'),
    'apis': ('analysis', ),
}


def _imports(path: Path):
    """(line, absolute module) of every import in a package file, relative ones resolved."""
    parts = path.relative_to(PKG.parent).with_suffix('').parts
    package = parts[:-1] if parts[-1] != '__init__' else parts[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[:len(package) - node.level + 1])
                module = '.'.join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ''
            yield node.lineno, module
            for alias in node.names:  # `from .. import engine`
                yield node.lineno, f'{module}.{alias.name}'


def wrong_way_imports():
    bad = []
    for path in sorted(PKG.rglob('*.py')):
        layer = path.relative_to(PKG).parts[0]
        for line, module in _imports(path):
            parts = module.split('.')
            if parts[0] != 'mtl_plugin' or len(parts) < 2:
                continue
            if parts[1] in FORBIDDEN.get(layer, ()):
                bad.append(f'{path.relative_to(PKG.parent)}:{line} imports {module}')
    return bad


def test_layers_import_downwards():
    assert wrong_way_imports() == []


def _probe_module(tmp_path):
    pkg = tmp_path / 'mtl_plugin' / 'models'
    pkg.mkdir(parents=True)
    (pkg / 'bad.py').write_text('from ..engine.hooks import HeadIsolationHook\n')
    return pkg / 'bad.py'


def test_relative_imports_are_resolved(tmp_path, monkeypatch):
    bad = _probe_module(tmp_path)
    monkeypatch.setattr(sys.modules[__name__], 'PKG', tmp_path / 'mtl_plugin')
    assert wrong_way_imports() == [
        'mtl_plugin/models/bad.py:1 imports mtl_plugin.engine.hooks',
        'mtl_plugin/models/bad.py:1 imports mtl_plugin.engine.hooks.HeadIsolationHook']
    assert bad.exists()


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={'PYTHONPATH': REPO, 'PATH': ''})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_import_loads_neither_mmpose_nor_torchjd():
    out = _run('import sys, mtl_plugin; print(sorted(m for m in ("mmpose", "torchjd") '
               'if m in sys.modules))')
    assert out.strip() == '[]'


def test_detector_path_works_without_mmpose_and_torchjd():
    code = f'''
import sys
sys.modules["mmpose"] = None; sys.modules["torchjd"] = None  # any import of them fails
sys.path.insert(0, {osp.join(REPO, "tests")!r})
import mtl_plugin
from tiny_models import batch, build_detector
model = build_detector()
losses = model(**model.data_preprocessor(batch(["person", "animal"]), True), mode="loss")
print(sorted(losses)[:2])
'''
    assert _run(code).strip().splitlines()[-1] == "['animal.loss_bbox', 'animal.loss_cls']"
