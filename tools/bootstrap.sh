#!/usr/bin/env bash
# Create or reuse .venv/ with the verified OpenMMLab stack, then install mtl_plugin (editable).
#
# Usage: bash tools/bootstrap.sh            (idempotent: a second run installs nothing)
# Env:   MTL_MMCV_WHEEL_DIR  folder searched for a prebuilt mmcv-2.1.0 wheel
#                            (default: ../shared/wheels); without one, mmcv is compiled (~21 min).
#        MTL_FORCE_MMCV_BUILD=1  ignore any prebuilt wheel and compile mmcv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
REQ="$ROOT/requirements"
STAMP="$VENV/.mtl_plugin_installed"
log() { echo "[bootstrap] $*" >&2; }

want_stamp() {
  cat "$REQ/constraints.txt" "$REQ/runtime.txt" "$ROOT/setup.py" | sha256sum | cut -d' ' -f1
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(want_stamp)" ] && "$PY" -c "import mtl_plugin" 2>/dev/null; then
  log "environment up to date: $VENV"
  exit 0
fi

start=$(date +%s)
if [ ! -x "$PY" ]; then
  PYTHON="${PYTHON:-python3.11}"
  command -v "$PYTHON" >/dev/null || PYTHON=python3
  log "creating $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$PY" -m pip --disable-pip-version-check)
export PIP_CONSTRAINT="$REQ/constraints.txt"

log "installing pinned runtime requirements"
"${PIP[@]}" install -q 'setuptools>=77.0.3,<81' wheel
"${PIP[@]}" install -q -r "$REQ/runtime.txt"

if ! "$PY" -c "import mmcv, mmcv.ops; from mmcv.ops import nms; assert mmcv.__version__ == '2.1.0'" 2>/dev/null; then
  WHEEL_DIR="${MTL_MMCV_WHEEL_DIR:-$ROOT/../shared/wheels}"
  wheel=$(ls "$WHEEL_DIR"/mmcv-2.1.0-cp311-*.whl 2>/dev/null | head -1 || true)
  if [ -n "$wheel" ] && [ "${MTL_FORCE_MMCV_BUILD:-0}" != 1 ]; then
    log "installing prebuilt mmcv wheel $wheel"
    "${PIP[@]}" install -q --no-deps "$wheel"
  else
    log "compiling mmcv 2.1.0 with its C++ ops (CPU, ~21 min on 2 cores)"
    build="$(mktemp -d)"
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation -d "$build" mmcv==2.1.0
    tar -xzf "$build"/mmcv-2.1.0.tar.gz -C "$build"
    # torch 2.14's headers need C++20; mmcv's setup.py forces c++14/17 after torch's flags.
    sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$build/mmcv-2.1.0/setup.py"
    (cd "$build/mmcv-2.1.0" && MAX_JOBS="${MAX_JOBS:-2}" "${PIP[@]}" install --no-build-isolation --no-deps .)
    rm -rf "$build"
  fi
  "${PIP[@]}" install -q addict yapf packaging pyyaml regex
  "$PY" -c "from mmcv.ops import nms, batched_nms, RoIAlign"
fi

if ! "$PY" -c "import mmpose" 2>/dev/null; then
  log "installing mmpose 1.3.2 without its chumpy requirement"
  "${PIP[@]}" install -q --no-deps mmpose==1.3.2
fi

log "installing mtl_plugin (editable)"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"
"$PY" -c "import numpy, mmcv, mmdet, mmpose, mmengine, mtl_plugin; assert numpy.__version__.startswith('1.'), numpy.__version__"
want_stamp > "$STAMP"
log "done in $(( $(date +%s) - start )) s"
