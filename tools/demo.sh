#!/usr/bin/env bash
# Set up .venv (idempotent), generate the two-source demo data and run the main job:
# train + evaluate on it, print per-group metrics, save a PNG of predictions.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/bootstrap.sh"
cd "$ROOT"
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$ROOT/.venv/bin/python" tools/demo.py "$@"
