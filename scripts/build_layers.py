"""Build the Lambda layers into layers/build/ without Docker (a no-op when they are current).

Usage: .venv/bin/python scripts/build_layers.py [--force] [layer ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.layers import LAYERS, ensure_layers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("layers", nargs="*", metavar="layer", help=f"one of {', '.join(LAYERS)} (default: all)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the stamp is current")
    args = parser.parse_args(argv)
    if unknown := sorted(set(args.layers) - set(LAYERS)):
        parser.error(f"unknown layer(s): {', '.join(unknown)}")
    rebuilt = ensure_layers(args.layers or None, force=args.force)
    print(f"rebuilt: {', '.join(rebuilt)}" if rebuilt else "all layers are current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
