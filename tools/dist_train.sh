#!/usr/bin/env bash
# Distributed training with torchrun: bash tools/dist_train.sh CONFIG NUM_PROCS [train.py args]
# Several nodes (as mmdet's dist_train.sh): NNODES=2 NODE_RANK=0|1 MASTER_ADDR=host PORT=port,
# one launch per node (on one machine too: two launches, each NUM_PROCS processes).
# On machines without GPUs the processes use the gloo backend (see mtl_plugin/engine/dist.py).
set -euo pipefail
CONFIG=$1
NPROC=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
PYTHONPATH="$ROOT:${PYTHONPATH:-}" "$PY" -m torch.distributed.run --nnodes="$NNODES" \
  --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" --nproc_per_node="$NPROC" \
  --master_port="$PORT" "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "${@:3}"
