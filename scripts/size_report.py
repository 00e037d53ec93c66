"""Unzipped size of each zip function (its code plus its layers) against the Lambda limit.

Reads the function -> layers mapping from `infra.catalog` (what the stack deploys) and the
built layers from `layers/build/` (built first when missing or outdated).

Usage: .venv/bin/python scripts/size_report.py
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.catalog import ZIP_LIMIT_BYTES, FunctionSpec, zip_functions
from infra.layers import LAYERS, directory_size, ensure_layers

MB = 1024 * 1024


@dataclass(frozen=True)
class FunctionSize:
    spec: FunctionSpec
    code_bytes: int
    layer_bytes: dict[str, int]

    @property
    def total_bytes(self) -> int:
        return self.code_bytes + sum(self.layer_bytes.values())

    @property
    def within_limit(self) -> bool:
        return self.total_bytes <= ZIP_LIMIT_BYTES

    @property
    def within_aim(self) -> bool:
        return self.total_bytes <= self.spec.size_aim_bytes


def _code_size(spec: FunctionSpec) -> int:
    if not spec.code_dir.is_dir():
        return 0
    return sum(
        p.stat().st_size
        for p in spec.code_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def measure() -> list[FunctionSize]:
    ensure_layers()
    return [
        FunctionSize(spec, _code_size(spec), {name: directory_size(LAYERS[name].asset_dir) for name in spec.layers})
        for spec in zip_functions()
    ]


def render(sizes: list[FunctionSize]) -> str:
    header = (
        f"{'function':<18} {'code MB':>8} {'layers MB':>10} {'total MB':>9} {'aim MB':>7} {'% of 250 MB':>11}  layers"
    )
    lines = [header, "-" * len(header)]
    for size in sizes:
        flag = "" if size.within_limit and size.within_aim else "  OVER"
        layers = ", ".join(f"{name} {size.layer_bytes[name] / MB:.1f}" for name in size.spec.layers)
        lines.append(
            f"{size.spec.folder:<18} {size.code_bytes / MB:>8.2f} {sum(size.layer_bytes.values()) / MB:>10.1f} "
            f"{size.total_bytes / MB:>9.1f} {size.spec.size_aim_bytes / MB:>7.0f} "
            f"{100 * size.total_bytes / ZIP_LIMIT_BYTES:>10.0f}%  {layers}{flag}"
        )
    lines.append(f"limit: {ZIP_LIMIT_BYTES:,} bytes unzipped (code + layers); MB = MiB")
    return "\n".join(lines)


def main() -> int:
    sizes = measure()
    print(render(sizes))
    return 0 if all(s.within_limit and s.within_aim for s in sizes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
