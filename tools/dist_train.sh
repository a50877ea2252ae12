#!/usr/bin/env bash
# Distributed training with torchrun: bash tools/dist_train.sh CONFIG NUM_PROCS [train.py args]
# On machines without GPUs the processes use the gloo backend (see mtl_plugin/engine/dist.py).
set -euo pipefail
CONFIG=$1
NPROC=$2
PORT=${PORT:-29500}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
PYTHONPATH="$ROOT:${PYTHONPATH:-}" "$PY" -m torch.distributed.run --nnodes=1 \
  --nproc_per_node="$NPROC" --master_port="$PORT" \
  "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "${@:3}"
