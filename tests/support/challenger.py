"""Data for the fair champion/challenger tests: one linear rule, noise sets how hard a holdout is."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

FEATURES = 30
WEIGHTS = np.linspace(1.0, -1.0, FEATURES) + 0.3


def risk_contract(**feature_overrides: dict[str, Any]) -> dict[str, Any]:
    """A 30-feature binary classification contract ("risk"); overrides per feature name."""
    features = [{"name": f"x{i}", "type": "numeric"} for i in range(FEATURES)]
    for feature in features:
        feature.update(feature_overrides.get(feature["name"], {}))
    return {
        "name": "risk",
        "problem_type": "classification",
        "target": {"name": "label", "classes": ["no", "yes"]},
        "features": features,
        "estimator": {"name": "logistic_regression", "params": {}},
        "metric": {"name": "roc_auc", "at_least": 0.6},
        "data": {"min_rows": 50},
    }


def risk_rows(rows: int, noise: float, seed: int) -> pd.DataFrame:
    """Labels from one linear rule plus noise: more noise, a harder holdout."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(FEATURES)])
    frame["label"] = np.where(x @ WEIGHTS + rng.normal(scale=noise, size=rows) > 0, "yes", "no")
    return frame


def hard_rows() -> pd.DataFrame:
    """Plenty of rows, heavy label noise: a model that learns the rule well, judged on a hard holdout."""
    return risk_rows(4000, noise=3.0, seed=1)


def easy_rows() -> pd.DataFrame:
    """Few rows, little noise: a weaker model judged on an easy holdout."""
    return risk_rows(150, noise=0.3, seed=2)


def write_labelled_traffic(
    store: Any,
    bucket: str,
    frame: pd.DataFrame,
    *,
    answered_at: datetime,
    target: str = "label",
    labelled: float = 1.0,
    model: str = "risk",
    seconds_apart: float = 1.0,
) -> list[str]:
    """`frame`'s rows as served predictions from `answered_at` on (one capture object per minute,
    flushed 60 s after the minute's first answer) with the first `labelled` share of them labelled
    (one label object per prediction minute). Returns the prediction ids, in row order."""
    from mlops.captures import CaptureBatch, encode_batch
    from mlops.inference.prediction_ids import new_prediction_ids
    from mlops.labels import LabelBatch, encode_labels, new_label_batch_id, prediction_minute
    from mlops.layout import capture_key, label_key

    features = [c for c in frame.columns if c != target]
    times = [answered_at.timestamp() + i * seconds_apart for i in range(len(frame))]
    ids = [new_prediction_ids(1, clock=lambda t=t: t)[0] for t in times]
    by_minute: dict[datetime, list[int]] = {}
    for row, prediction_id in enumerate(ids):
        by_minute.setdefault(prediction_minute(prediction_id), []).append(row)
    columns = {name: [None if pd.isna(v) else v for v in frame[name].tolist()] for name in features}
    cutoff = int(len(frame) * labelled)
    for minute, rows in by_minute.items():
        batch = CaptureBatch(
            at=[times[r] for r in rows],
            versions=[1] * len(rows),
            prediction_ids=[ids[r] for r in rows],
            inputs={name: [columns[name][r] for r in rows] for name in features},
            outputs={"label": ["no"] * len(rows)},
        )
        data, skipped = encode_batch(batch)
        assert skipped == 0
        flushed = datetime.fromtimestamp(times[rows[0]] + 60, tz=UTC)
        store.put_bytes(bucket, capture_key(model, flushed, f"b{rows[0]}"), data)
        chosen = [r for r in rows if r < cutoff]
        if chosen:
            labels = LabelBatch(
                prediction_ids=[ids[r] for r in chosen],
                labels=[str(frame[target].iloc[r]) for r in chosen],
                received_at=[times[r] + 120 for r in chosen],
                source="api",
            )
            store.put_bytes(bucket, label_key(model, minute, new_label_batch_id(flushed)), encode_labels(labels))
    return ids
