"""Where an uploaded dataset is on its way to serving, in words: one rule the `upload` command polls.

Plain logic over what the ledger and the registry say (tested with table cases, no AWS).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops.validation.ledger import DatasetState, LedgerEntry


@dataclass(frozen=True)
class Progress:
    """One step of the way: `final` ends the follow; `ok` says whether it ended serving."""

    stage: str
    final: bool = False
    ok: bool = True
    details: list[str] = field(default_factory=list)


_UNDER_WAY = {
    DatasetState.ACCEPTED: "validated: training",
    DatasetState.TRAINED: "trained: registering",
}


def dataset_progress(
    model: str,
    dataset_id: str,
    entry: LedgerEntry | None,
    registered_model: dict[str, Any] | None = None,
    registered_version: dict[str, Any] | None = None,
) -> Progress:
    """Where the dataset `dataset_id` of `model` is, given its ledger entry (None: not decided yet)
    and, once registered, the model's and its version's summaries from the models API."""
    if entry is None:
        return Progress("uploaded: validating")
    reasons = list(entry.reasons) or [change.reason for change in entry.history[-1:] if change.reason]
    if entry.state is DatasetState.QUARANTINED:
        where = [f"moved to {entry.quarantine_key}"] if entry.quarantine_key else []
        return Progress(
            "quarantined: it will not be trained on",
            final=True,
            ok=False,
            details=reasons + where + [f"report: {entry.report_key}", "fix the file and upload it again"],
        )
    if entry.state is DatasetState.HELD:
        return Progress(
            "held for review: the statistical checks failed, the schema is sound",
            final=True,
            ok=False,
            details=[
                *reasons,
                f"review it: mlops datasets review {model} {dataset_id} --approve|--reject --reason '...'",
            ],
        )
    if entry.state in (DatasetState.TRAINING_REJECTED, DatasetState.TRAINING_FAILED):
        what = "refused by training" if entry.state is DatasetState.TRAINING_REJECTED else "training failed"
        return Progress(what, final=True, ok=False, details=reasons)
    if entry.state in _UNDER_WAY:
        return Progress(_UNDER_WAY[entry.state])
    # registered: a new version, or identical to an existing one
    version = entry.model_version
    if version is None or registered_model is None or registered_version is None:
        return Progress("registered: reading the registry")
    decision = registered_version.get("promotion_decision") or ""
    if registered_model.get("production_version") == version:
        return Progress(f"serving: {model} v{version} is production", final=True, details=reasons)
    status = registered_version.get("status", "?")
    return Progress(
        f"registered as v{version} ({status}), not serving",
        final=True,
        ok=False,
        details=[
            *([f"promotion: {decision}"] if decision else []),
            f"production is v{registered_model.get('production_version') or '-'}",
            f"compare: mlops models compare {model} {registered_model.get('production_version') or version} {version}",
            f"promote it anyway: mlops models approve {model} {version} && mlops models promote {model} {version}",
        ],
    )
