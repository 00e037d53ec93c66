#!/usr/bin/env bash
# The whole test suite, after setting everything up (see scripts/bootstrap.sh).
# Extra arguments go to pytest, e.g. `scripts/test.sh tests/unit -q`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/pytest -n 2 --dist loadgroup --cov --cov-report=term:skip-covered "$@"
