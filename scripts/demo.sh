#!/usr/bin/env bash
# The local end-to-end story, after setting everything up (see scripts/bootstrap.sh).
# Options go to `mlops demo` (try --help), e.g. `scripts/demo.sh --keep-running`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/mlops demo "$@"
