"""predict ships the graceful-shutdown extension: without a registered external extension Lambda
never sends SIGTERM, and the capture buffers' shutdown flush never runs."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from infra.catalog import FUNCTIONS
from infra.layers import LAYERS
from tests.infra.support import function_ids, resources

EXTENSION_LAYER = LAYERS["shutdown-extension"]


def _is_executable_by_all(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o555 == 0o555


def test_layer_build_puts_the_extension_at_extensions_name_executable(template: dict[str, Any]) -> None:
    # the synthesis behind `template` built the layers (a no-op when current)
    built = EXTENSION_LAYER.asset_dir / "extensions" / "graceful-shutdown"
    assert built == EXTENSION_LAYER.extension_path
    assert built.read_bytes() == EXTENSION_LAYER.extension_source.read_bytes()  # type: ignore[union-attr]
    assert _is_executable_by_all(built)
    assert built.read_text().startswith("#!/usr/bin/env python3\n")
    assert not (EXTENSION_LAYER.asset_dir / "python").exists()  # nothing else rides along


def test_predict_gets_the_layer_carrying_the_extension(template: dict[str, Any], cloud_assembly_dir: Path) -> None:
    assert "shutdown-extension" in FUNCTIONS["predict"].layers
    layers = resources(template, "AWS::Lambda::LayerVersion")
    [layer_id] = [lid for lid, r in layers.items() if r["Properties"]["Description"] == EXTENSION_LAYER.description]
    predict = template["Resources"][function_ids(template)["predict"]]
    assert {"Ref": layer_id} in predict["Properties"]["Layers"]
    # the staged asset CDK zips (the CLI keeps each file's mode) holds the executable at extensions/<name>
    staged = cloud_assembly_dir / layers[layer_id]["Metadata"]["aws:asset:path"]
    assert sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()) == [
        "extensions/graceful-shutdown"
    ]
    assert _is_executable_by_all(staged / "extensions" / "graceful-shutdown")
