"""Synthesize the app in-process with the context the CDK CLI would pass, and return the template.

`python -m infra.app` alone does not read cdk.json (the CLI passes its context through
`CDK_CONTEXT_JSON`), so the feature flags would be missing and the template would differ from
the deployed one. This merges them the way the CLI does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infra.layers import REPO_ROOT
from infra.outputs import STACK_NAME

CDK_JSON = REPO_ROOT / "cdk.json"
CDK_CONTEXT_JSON = REPO_ROOT / "cdk.context.json"

# What the CLI adds on `cdk synth` with default options (path metadata, asset metadata,
# version reporting on; bundling for every stack).
CLI_DEFAULT_CONTEXT: dict[str, Any] = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
    "aws:cdk:bundling-stacks": ["**"],
}


def cli_context() -> dict[str, Any]:
    """cdk.context.json, then cdk.json's `context`, then the CLI's own defaults (as the CLI merges them)."""
    context: dict[str, Any] = {}
    if CDK_CONTEXT_JSON.is_file():
        context |= json.loads(CDK_CONTEXT_JSON.read_text())
    context |= json.loads(CDK_JSON.read_text()).get("context", {})
    context |= CLI_DEFAULT_CONTEXT
    return context


def synthesize_template(outdir: Path | None = None, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Synthesize the app into `outdir` (a temporary directory when None) and return the stack's
    template; `context` adds to the CLI's context as `-c key=value` would (deploy-time settings)."""
    from infra.app import build_app  # deferred: importing aws_cdk starts a Node process

    app = build_app(cli_context() | dict(context or {}), outdir=str(outdir) if outdir else None)
    assembly = app.synth()
    return dict(assembly.get_stack_by_name(STACK_NAME).template)
