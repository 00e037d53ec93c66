"""Each zip function's handler imports with only what its layers ship.

The dev environment has every library, so a handler that reaches numpy, pyarrow, pandas or
scikit-learn through some shared module passes every other test and then fails with an
ImportError at each cold start in AWS. Here each handler is imported in a fresh process where
the heavy libraries its layers do not ship are refused.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from infra.catalog import FUNCTIONS
from infra.layers import REPO_ROOT

HEAVY = {"numpy", "pyarrow", "pandas", "sklearn", "scipy", "onnxruntime", "skl2onnx", "onnx", "joblib", "yaml"}
# layer name -> the top-level packages it ships that are in HEAVY
SHIPS = {"numpy": {"numpy"}, "pyarrow": {"pyarrow"}, "onnxruntime": {"onnxruntime"}}

ZIP_FUNCTIONS = sorted(name for name, spec in FUNCTIONS.items() if not spec.container_image)


@pytest.mark.parametrize("folder", ZIP_FUNCTIONS)
def test_handler_imports_only_what_its_layers_ship(folder: str) -> None:
    spec = FUNCTIONS[folder]
    refused = HEAVY - set().union(*(SHIPS.get(layer, set()) for layer in spec.layers))
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys
        REFUSED = {sorted(refused)!r}
        class Refuse(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in REFUSED:
                    raise ImportError(f"{folder} must not import {{name}}: its layers do not ship it")
        sys.meta_path.insert(0, Refuse())
        sys.path[:0] = ["src", "functions/{folder}"]
        import handler
        """
    )
    env = {name: _placeholder(name) for name in spec.settings.env_names()} | spec.settings.env_defaults()
    env |= {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "1"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


def _placeholder(name: str) -> str:
    return "arn:aws:sns:us-east-1:123456789012:placeholder" if name.endswith("_ARN") else "placeholder"
