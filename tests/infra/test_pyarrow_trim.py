"""The pyarrow layer's prune list drops only what validation and feedback ingestion never load.

The layer is built for Python 3.12 and the tests run under the dev interpreter, so the same prune
list is applied to a copy of the dev environment's pyarrow (the same version, `layers/pyarrow.txt`)
and the functions' own tests run against that copy in a fresh process.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow
import pytest

from infra.layers import LAYERS, REPO_ROOT, _prune

# The tests of everything the pyarrow layer serves: validate_dataset and ingest_feedback.
USERS_TESTS = sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "tests" / "unit").glob("test_validation*.py"))
USERS_TESTS.append("tests/unit/test_feedback_files.py")


@pytest.fixture(scope="module")
def trimmed_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pinned = (REPO_ROOT / "layers" / "pyarrow.txt").read_text()
    assert f"pyarrow=={pyarrow.__version__}\n" in pinned, "the dev pyarrow is not the layer's version"
    site = tmp_path_factory.mktemp("trimmed-site")
    shutil.copytree(Path(pyarrow.__file__).parent, site / "pyarrow", symlinks=True)
    _prune(site, LAYERS["pyarrow"].prune)
    return site


def _run(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{site}:{REPO_ROOT / 'src'}:{REPO_ROOT}",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True)


def test_pyarrow_trim_really_drops_flight_and_s3(trimmed_site: Path) -> None:
    probe = _run(
        trimmed_site,
        "-c",
        "import pyarrow, pyarrow.fs, importlib.util as u; print(pyarrow.__file__);"
        "print(u.find_spec('pyarrow._flight'), u.find_spec('pyarrow._s3fs'))",
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    where, missing = probe.stdout.splitlines()
    assert where.startswith(str(trimmed_site)), probe.stdout
    assert missing == "None None", probe.stdout


def test_pyarrow_trim_keeps_what_validation_and_feedback_tests_load(trimmed_site: Path) -> None:
    result = _run(trimmed_site, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *USERS_TESTS)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
