"""What `mlops datasets upload` says at each step of a dataset's way to serving (and where it stops)."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.validation.ledger import DatasetState, LedgerChange, LedgerEntry
from mlops_local.cli.follow import dataset_progress

ID = "first.csv-0123456789abcdef"


def _entry(
    state: DatasetState, *, reasons: tuple[str, ...] = (), history_reason: str = "", version: int | None = None
) -> LedgerEntry:
    return LedgerEntry(
        model_name="churn",
        dataset_id=ID,
        state=state,
        bucket="data",
        key="datasets/churn/first.csv",
        size_bytes=10,
        report_key=f"reports/churn/{ID}.json",
        quarantine_key="quarantine/churn/first.csv" if state is DatasetState.QUARANTINED else None,
        reasons=list(reasons),
        decided_at="2026-12-03T06:00:00Z",
        history=[LedgerChange(at="2026-12-03T06:00:00Z", state=state, actor="x", reason=history_reason)],
        model_version=version,
    )


def _model(production: int | None) -> dict[str, Any]:
    return {"name": "churn", "latest_version": 2, "production_version": production}


def _version(version: int, status: str, decision: str) -> dict[str, Any]:
    return {"version": version, "status": status, "promotion_decision": decision}


@pytest.mark.parametrize(
    ("entry", "model", "version", "stage", "final", "ok", "said"),
    [
        (None, None, None, "uploaded: validating", False, True, []),
        (_entry(DatasetState.ACCEPTED), None, None, "validated: training", False, True, []),
        (_entry(DatasetState.TRAINED), None, None, "trained: registering", False, True, []),
        (
            _entry(DatasetState.QUARANTINED, reasons=("missing column 'plan'",)),
            None, None, "quarantined: it will not be trained on", True, False,
            ["missing column 'plan'", "moved to quarantine/churn/first.csv", f"report: reports/churn/{ID}.json"],
        ),
        (
            _entry(DatasetState.HELD, reasons=("PSI of tenure 0.4",)),
            None, None, "held for review", True, False,
            ["PSI of tenure 0.4", f"mlops datasets review churn {ID} --approve|--reject"],
        ),
        (
            _entry(DatasetState.TRAINING_REJECTED, history_reason="accuracy 0.52 below the minimum 0.7"),
            None, None, "refused by training", True, False, ["accuracy 0.52 below the minimum 0.7"],
        ),
        (
            _entry(DatasetState.TRAINING_FAILED, history_reason="out of memory"),
            None, None, "training failed", True, False, ["out of memory"],
        ),
        (_entry(DatasetState.REGISTERED, version=2), None, None, "registered: reading the registry", False, True, []),
        (
            _entry(DatasetState.REGISTERED, version=2, history_reason="registered as v2 (production)"),
            _model(2), _version(2, "production", "promoted: first version"), "serving: churn v2 is production", True, True,
            ["registered as v2 (production)"],
        ),
        (
            _entry(DatasetState.REGISTERED, version=2),
            _model(1), _version(2, "candidate", "not promoted: accuracy 0.80 does not beat v1's 0.82"),
            "registered as v2 (candidate), not serving", True, False,
            ["promotion: not promoted: accuracy 0.80 does not beat v1's 0.82", "production is v1",
             "mlops models compare churn 1 2", "mlops models approve churn 2"],
        ),
    ],
)  # fmt: skip
def test_cli_dataset_progress_tells_each_stage_and_why_it_stopped(
    entry: LedgerEntry | None,
    model: dict[str, Any] | None,
    version: dict[str, Any] | None,
    stage: str,
    final: bool,
    ok: bool,
    said: list[str],
) -> None:
    progress = dataset_progress("churn", ID, entry, model, version)

    assert progress.stage.startswith(stage)
    assert (progress.final, progress.ok) == (final, ok)
    details = "\n".join(progress.details)
    for text in said:
        assert text in details
