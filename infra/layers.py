"""Lambda layers built without Docker, from manylinux wheels for the Python 3.12 runtime.

Each layer is a pinned requirements file in `layers/` (installed with `--no-deps`, so the file is
the complete list), for `mlops-core` a copy of `src/mlops`, or an external Lambda extension (an
executable from `layers/extensions/`, shipped as `extensions/<name>`). A build lands in
`layers/build/<layer>/` (`python/` or `extensions/`) and writes `layers/build/<layer>.stamp`
holding a hash of its inputs, so building again is a no-op until the inputs change. Plain Python (no CDK imports):
`scripts/build_layers.py`, `scripts/size_report.py` and `infra/app.py` all use it.
"""

# Every subprocess below runs pip, strip or a Python interpreter with arguments built from constants.
# ruff: noqa: S603

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LAYERS_DIR = REPO_ROOT / "layers"
BUILD_DIR = LAYERS_DIR / "build"
EXTENSIONS_SOURCE = LAYERS_DIR / "extensions"
MLOPS_SOURCE = REPO_ROOT / "src" / "mlops"

PYTHON_VERSION = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")
LAMBDA_LAYER_SITE = "/opt/python"  # where Lambda extracts a layer's python/ folder
# Bump when the build procedure changes, so existing stamps are invalidated.
BUILD_RECIPE_VERSION = "3"

# A one-node ONNX graph (Relu on a float [None, 2] input), serialized: the smoke test runs it.
_RELU_ONNX = (
    b'\x08\x08:7\n\x0c\n\x01x\x12\x01y"\x04Relu\x12\x01gZ\x11\n\x01x\x12\x0c\n\n\x08\x01\x12\x06\n\x00'
    b"\n\x02\x08\x02b\x11\n\x01y\x12\x0c\n\n\x08\x01\x12\x06\n\x00\n\x02\x08\x02B\x04\n\x00\x10\r"
)


@dataclass(frozen=True)
class LayerSpec:
    name: str
    description: str
    # `import` statements run against the built layer (plus `needs`) to prove it loads.
    smoke_imports: tuple[str, ...]
    requirements: str | None = None  # file name in layers/; None for the mlops-core source copy
    needs: tuple[str, ...] = ()  # layers that must sit beside this one at import time
    # Paths (globs relative to python/) the Lambda never loads; dropped to stay far below 250 MB.
    prune: tuple[str, ...] = ()
    # Extra Python run after the imports, to prove the native code works, not only that it loads.
    smoke_code: str = ""
    # An external extension: the file name in layers/extensions/, shipped as extensions/<name>
    # (Lambda starts every executable in /opt/extensions/ next to the runtime).
    extension: str | None = None

    @property
    def requirements_path(self) -> Path | None:
        return LAYERS_DIR / self.requirements if self.requirements else None

    @property
    def extension_source(self) -> Path | None:
        return EXTENSIONS_SOURCE / self.extension if self.extension else None

    @property
    def extension_path(self) -> Path | None:
        """Where the build puts the extension executable (None for a Python layer)."""
        return self.asset_dir / "extensions" / self.extension if self.extension else None

    @property
    def built_path(self) -> Path:
        return self.extension_path or self.site_dir

    @property
    def asset_dir(self) -> Path:
        """The directory handed to `lambda.Code.from_asset` (it contains `python/`)."""
        return BUILD_DIR / self.name

    @property
    def site_dir(self) -> Path:
        return self.asset_dir / "python"

    @property
    def stamp_path(self) -> Path:
        return BUILD_DIR / f"{self.name}.stamp"


PYARROW_PRUNE = (
    "pyarrow/libarrow_flight.so*",
    "pyarrow/libarrow_python_flight.so*",
    "pyarrow/_flight.*.so",
    "pyarrow/flight.py",
    "pyarrow/libarrow_s3.so*",
    "pyarrow/_s3fs.*.so",
    "pyarrow/_gcsfs.*.so",
    "pyarrow/_azurefs.*.so",
    "pyarrow/_hdfs.*.so",
    "pyarrow/_orc.*.so",
    "pyarrow/_dataset_orc.*.so",
    "pyarrow/orc.py",
    "pyarrow/_substrait.*.so",
    "pyarrow/substrait.py",
    "pyarrow/_pyarrow_cpp_tests.*.so",
    "pyarrow/conftest.py",
    "pyarrow/libarrow_python.so",
    "pyarrow/libarrow_python.so.*.*.*",
    "pyarrow/libarrow_python_parquet_encryption.so",
    "pyarrow/libarrow_python_parquet_encryption.so.*.*.*",
    "pyarrow/include",
    "pyarrow/includes",
    "pyarrow/src",
    "pyarrow/**/*.pyx",
    "pyarrow/**/*.pxd",
    "pyarrow/**/*.pxi",
)

LAYERS: dict[str, LayerSpec] = {
    spec.name: spec
    for spec in (
        LayerSpec(
            name="powertools",
            description="aws-lambda-powertools[tracer] 3.37.0 and pydantic 2.14.4",
            requirements="powertools.txt",
            smoke_imports=("aws_lambda_powertools", "pydantic", "aws_lambda_powertools.logging"),
        ),
        LayerSpec(
            name="numpy",
            description="numpy 2.4.6",
            requirements="numpy.txt",
            smoke_imports=("numpy",),
        ),
        LayerSpec(
            name="onnxruntime",
            description="onnxruntime 1.32.0 and its dependencies except numpy",
            requirements="onnxruntime.txt",
            smoke_imports=("onnxruntime",),
            needs=("numpy",),
            # libonnxruntime.so is the C API for native callers; the Python binding links ORT
            # statically and never loads it (35 MB). transformers/quantization/tools are offline tooling.
            prune=(
                "onnxruntime/capi/libonnxruntime.so*",
                "onnxruntime/transformers",
                "onnxruntime/quantization",
                "onnxruntime/tools",
            ),
            smoke_code=(
                "import numpy, onnxruntime\n"
                f"session = onnxruntime.InferenceSession({_RELU_ONNX!r}, providers=['CPUExecutionProvider'])\n"
                "out = session.run(None, {'x': numpy.array([[-1.0, 2.0]], dtype=numpy.float32)})[0]\n"
                "assert out.tolist() == [[0.0, 2.0]], out\n"
            ),
        ),
        LayerSpec(
            name="pyarrow",
            description="pyarrow 26.0.1",
            requirements="pyarrow.txt",
            smoke_imports=("pyarrow", "pyarrow.parquet", "pyarrow.csv", "pyarrow.compute", "pyarrow.fs"),
            # Validation and feedback read CSV/Parquet from bytes boto3 fetched and compute over them:
            # they never load Flight (RPC), the S3/GCS/Azure/HDFS filesystems, ORC, Substrait's Python
            # module, the C++ test module, or Cython/C++ sources and headers (for building against
            # pyarrow). `lib`'s own NEEDED libraries (substrait, dataset, acero, parquet, compute) stay;
            # `pyarrow.fs` skips a missing filesystem module by design. The unversioned and fully
            # versioned libarrow_python* files are link-time copies of the `.so.2600` the loader uses.
            # tests/infra/test_pyarrow_trim.py runs validation's tests against this trimmed pyarrow.
            prune=PYARROW_PRUNE,
            smoke_code=(
                "import io, pyarrow as pa, pyarrow.csv as pacsv, pyarrow.parquet as pq, pyarrow.compute as pc\n"
                "table = pacsv.read_csv(io.BytesIO(b'x,y\\n1,a\\n2,b\\n'))\n"
                "sink = io.BytesIO(); pq.write_table(table, sink)\n"
                "back = pq.read_table(io.BytesIO(sink.getvalue()))\n"
                "assert pc.sum(back['x']).as_py() == 3 and back['y'].to_pylist() == ['a', 'b'], back\n"
            ),
        ),
        LayerSpec(
            name="mlops-core",
            description="the shared mlops domain package (src/mlops)",
            smoke_imports=("mlops.contract", "mlops.settings", "mlops.events", "mlops.layout"),
            needs=("powertools",),
        ),
        LayerSpec(
            name="shutdown-extension",
            description="graceful-shutdown external extension: Lambda sends the runtime SIGTERM before shutdown",
            smoke_imports=(),
            extension="graceful-shutdown",
        ),
    )
}


def _say(message: str) -> None:
    # stderr: the CDK CLI runs the app, and its stdout is not ours to fill
    print(message, file=sys.stderr)


def _hash_files(paths: Iterable[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _source_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]


def input_hash(spec: LayerSpec) -> str:
    """A hash of everything the layer is built from."""
    recipe = json.dumps([BUILD_RECIPE_VERSION, PYTHON_VERSION, PLATFORMS]).encode()
    if spec.extension_source is not None:
        inputs = _hash_files([spec.extension_source], LAYERS_DIR)
    elif spec.requirements_path is not None:
        inputs = _hash_files([spec.requirements_path], LAYERS_DIR)
    else:
        inputs = _hash_files(_source_files(MLOPS_SOURCE), MLOPS_SOURCE.parent)
    if spec.prune:  # what is dropped is an input too (a layer without a prune list keeps its hash)
        inputs += json.dumps(spec.prune)
    return hashlib.sha256(recipe + inputs.encode()).hexdigest()


def is_current(spec: LayerSpec) -> bool:
    if not spec.built_path.exists() or not spec.stamp_path.is_file():
        return False
    return spec.stamp_path.read_text().strip() == input_hash(spec)


def _pip_install(requirements: Path, target: Path) -> None:
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-compile",
        "--target", str(target),
        *(arg for platform in PLATFORMS for arg in ("--platform", platform)),
        "--only-binary=:all:",
        "--python-version", PYTHON_VERSION,
        "--implementation", "cp",
        "--no-deps",
        "--requirement", str(requirements),
    ]  # fmt: skip
    subprocess.run(command, check=True)


def _remove(path: Path) -> None:
    """Remove a built layer: a symlink (a worktree borrowing another checkout's build) is unlinked,
    never followed, so rebuilding here cannot delete the build it points at."""
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def _prune(site: Path, patterns: Iterable[str]) -> None:
    for pattern in patterns:
        for path in list(site.glob(pattern)):
            if not path.exists():  # inside a folder an earlier pattern removed
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def _strip_bundle(site: Path) -> None:
    """Drop tests and bytecode; strip shared objects except auditwheel-grafted `*.libs/` ones."""
    for pattern in ("__pycache__", "tests"):
        for directory in sorted(site.rglob(pattern), reverse=True):
            if directory.is_dir():
                shutil.rmtree(directory)
    for pyc in site.rglob("*.pyc"):
        pyc.unlink()
    strip = shutil.which("strip")
    if strip is None:
        _say("  strip not found: shared objects left unstripped")
        return
    for shared in site.rglob("*.so*"):
        if shared.is_file() and not any(part.endswith(".libs") for part in shared.relative_to(site).parts[:-1]):
            subprocess.run([strip, "--strip-unneeded", str(shared)], check=False, capture_output=True)


def compile_bytecode(site: Path, python: str | None) -> bool:
    """Write cpython-312 bytecode beside every module; False (and a note) without a 3.12 interpreter.

    Lambda's code folders are read-only, so bytecode not shipped is recompiled from source at every
    cold start. `unchecked-hash` pycs are never re-validated against source mtimes (zip extraction
    does not keep them) and make the build deterministic; `-s/-p` record the path the layer has in
    Lambda (`/opt/python/...`) instead of the build directory.
    """
    if python is None:
        _say(f"  bytecode not precompiled: no Python {PYTHON_VERSION} interpreter (cold starts compile from source)")
        return False
    command = [
        python, "-m", "compileall", "-q", "-j", "0",
        "--invalidation-mode", "unchecked-hash",
        "-s", str(site), "-p", LAMBDA_LAYER_SITE,
        str(site),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # A module only some other Python can parse is not one Lambda imports; the rest compiled.
        failed = [line for line in result.stdout.splitlines() if line.startswith("***")]
        _say(f"  bytecode: {len(failed)} file(s) not compiled: {' '.join(failed)[:300]}")
    return True


def find_python312() -> str | None:
    """A working Python 3.12 interpreter: `python3.12` on PATH, else a pyenv-installed one."""
    candidates = []
    if found := shutil.which(f"python{PYTHON_VERSION}"):
        candidates.append(found)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    pattern = f"{PYTHON_VERSION}.*/bin/python{PYTHON_VERSION}"
    candidates += [str(p) for p in sorted((pyenv_root / "versions").glob(pattern))]
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == PYTHON_VERSION:
            return candidate
    return None


def import_test(spec: LayerSpec, python: str | None) -> bool:
    """Import the layer (with the layers it needs) in a bare 3.12 interpreter; False when skipped."""
    if python is None:
        _say(f"  import test of {spec.name} skipped: no Python {PYTHON_VERSION} interpreter found")
        return False
    paths = [str(spec.site_dir)] + [str(LAYERS[name].site_dir) for name in spec.needs]
    code = (
        "import importlib, sys\n"
        f"sys.path[:0] = {paths!r}\n"
        f"for name in {list(spec.smoke_imports)!r}:\n"
        "    importlib.import_module(name)\n" + spec.smoke_code
    )
    # -S: no site-packages, -B: write no bytecode into the bundle; only the layer is importable.
    result = subprocess.run([python, "-S", "-B", "-c", code], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"import test of layer {spec.name} failed:\n{result.stderr}")
    checked = ", ".join(spec.smoke_imports) + (" + smoke code" if spec.smoke_code else "")
    _say(f"  import test of {spec.name} passed ({checked})")
    return True


def build_extension_layer(spec: LayerSpec, python: str | None) -> None:
    """Copy the extension executable to extensions/<name> (mode 0755) and syntax-check it with 3.12."""
    assert spec.extension_source is not None
    assert spec.extension_path is not None
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    staging = BUILD_DIR / f".{spec.name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    target = staging / "extensions" / spec.extension_source.name
    target.parent.mkdir(parents=True)
    shutil.copyfile(spec.extension_source, target)
    target.chmod(0o755)  # Lambda only starts executable files in /opt/extensions
    _remove(spec.asset_dir)
    staging.rename(spec.asset_dir)
    if python is None:
        _say(f"  syntax check of {spec.name} skipped: no Python {PYTHON_VERSION} interpreter found")
        return
    check = "import sys; compile(open(sys.argv[1], encoding='utf-8').read(), sys.argv[1], 'exec')"
    result = subprocess.run(
        [python, "-S", "-B", "-c", check, str(spec.extension_path)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"extension {spec.extension} does not compile under Python {PYTHON_VERSION}:\n{result.stderr}"
        )
    _say(f"  syntax check of {spec.name} passed")


def build_layer(spec: LayerSpec, *, force: bool = False, python: str | None = None) -> bool:
    """Build one layer unless its stamp is current; True when it was (re)built."""
    if not force and is_current(spec):
        return False
    _say(f"building layer {spec.name}")
    if spec.extension is not None:
        spec.stamp_path.unlink(missing_ok=True)
        build_extension_layer(spec, python)
        spec.stamp_path.write_text(input_hash(spec) + "\n")
        return True
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    staging = BUILD_DIR / f".{spec.name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    site = staging / "python"
    site.mkdir(parents=True)
    if spec.requirements_path is not None:
        _pip_install(spec.requirements_path, site)
    else:
        shutil.copytree(MLOPS_SOURCE, site / "mlops", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _prune(site, spec.prune)
    _strip_bundle(site)
    _remove(spec.asset_dir)
    staging.rename(spec.asset_dir)
    spec.stamp_path.unlink(missing_ok=True)
    compile_bytecode(spec.site_dir, python)
    for needed in spec.needs:
        build_layer(LAYERS[needed], python=python)
    import_test(spec, python)
    spec.stamp_path.write_text(input_hash(spec) + "\n")
    return True


def ensure_layers(names: Iterable[str] | None = None, *, force: bool = False) -> list[str]:
    """Build the missing or outdated layers (all by default); returns the names rebuilt."""
    selected = [LAYERS[name] for name in (names or LAYERS)]
    if not force and all(is_current(spec) for spec in selected):
        return []
    python = find_python312()
    return [spec.name for spec in selected if build_layer(spec, force=force, python=python)]


def directory_size(path: Path) -> int:
    """Bytes of all regular files under `path` (what the bundle unzips to)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
