#!/usr/bin/env bash
# Set up .venv (idempotent) and run the test suite. Extra args go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/bootstrap.sh"
cd "$ROOT"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
set +e
"$ROOT/.venv/bin/python" -m pytest tests "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
