"""The CDK app (composition root): `npx cdk synth` runs `python -m infra.app` from the repo root."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from infra.layers import ensure_layers
from infra.stack import MlopsStack


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> App:
    """The app with its one stack and the cdk-nag AwsSolutions checks (violations fail synth)."""
    ensure_layers()  # a fresh clone synthesizes: build missing or outdated layers first
    app = App(context=dict(context) if context else None, outdir=outdir)
    MlopsStack(app)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app


def main() -> None:
    build_app().synth()


if __name__ == "__main__":
    main()
