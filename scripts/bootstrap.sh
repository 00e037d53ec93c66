#!/usr/bin/env bash
# Idempotent set-up on a fresh machine with Python 3.11 and Node 20: a virtualenv from pinned
# requirements, the CDK CLI from package-lock.json, and the Lambda layers. Each step is skipped
# when its inputs have not changed since it last ran (stamps under .venv/ and node_modules/).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
digest() { cat "$@" | sha256sum | cut -c1-16; }

python_bin="${PYTHON:-}"
if [ -z "$python_bin" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python_bin="$candidate"; break
    fi
  done
fi
[ -n "$python_bin" ] || { echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
command -v npm >/dev/null || { echo "Node.js 20 with npm is required" >&2; exit 1; }

want=$(digest requirements/dev.txt pyproject.toml)
if [ "$(cat .venv/.stamp 2>/dev/null)" != "$want" ]; then
  say "Python environment (.venv) from requirements/dev.txt"
  [ -x .venv/bin/python ] || "$python_bin" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
  echo "$want" > .venv/.stamp
fi

want=$(digest package.json package-lock.json)
if [ "$(cat node_modules/.stamp 2>/dev/null)" != "$want" ]; then
  say "CDK CLI (node_modules) from package-lock.json"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > node_modules/.stamp
fi

if [ -f scripts/build_layers.py ]; then
  .venv/bin/python scripts/build_layers.py
fi
