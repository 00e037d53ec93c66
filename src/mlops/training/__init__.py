"""Training: build the contract's pipeline, fit it, export it to ONNX and prove the export agrees.

Names are exported lazily: `mlops.training.onnx_io` (numpy only) is imported by the inference
function, whose layer has no scikit-learn or pandas, so importing this package must not pull them in.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops.training.dataset import read_dataset
    from mlops.training.onnx_io import MISSING_CATEGORY, onnx_input_feed
    from mlops.training.trainer import TrainedModel, train_model

_EXPORTS = {
    "read_dataset": "mlops.training.dataset",
    "onnx_input_feed": "mlops.training.onnx_io",
    "MISSING_CATEGORY": "mlops.training.onnx_io",
    "TrainedModel": "mlops.training.trainer",
    "train_model": "mlops.training.trainer",
}

__all__ = ["MISSING_CATEGORY", "TrainedModel", "onnx_input_feed", "read_dataset", "train_model"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
