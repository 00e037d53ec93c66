"""Loads a function's handler module from the source tree, the way Lambda imports it.

Each function folder has its own `handler.py`; loading by path under a unique module name
keeps them apart in one process (tests). Local mode's workers (mlops_local.workers) import one each.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO_ROOT / "functions"


def load_handler_module(function_dir: str | Path, *, fresh: bool = True) -> ModuleType:
    """Import `<function_dir>/handler.py` (a folder name under functions/ or a path).

    `fresh=True` re-imports, so module-level settings read the environment as it is now.
    """
    folder = Path(function_dir)
    if not folder.is_absolute():
        folder = FUNCTIONS_DIR / folder
    module_name = f"lambda_fn_{folder.name}_handler"
    if not fresh and module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, folder / "handler.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"no handler.py in {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
