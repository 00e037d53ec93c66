"""Drift and data-quality decisions for one window sketch against its version's baseline.

`evaluate` is the one entry point: the drift function calls it on the sketch of a window.
"""

from __future__ import annotations

from datetime import datetime

from mlops.contract import Contract
from mlops.drift.result import DriftResult
from mlops.drift.sketch import WindowSketch
from mlops.profile import BaselineProfile

__all__ = ["evaluate"]


def evaluate(
    contract: Contract, baseline: BaselineProfile, sketch: WindowSketch, *, generated_at: datetime
) -> DriftResult:
    """What the window `sketch` shows against `baseline` under `contract`'s thresholds."""
    raise NotImplementedError("being written on i8/stats: the signature is final")
