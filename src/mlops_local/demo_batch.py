"""The demo's batch step: a file of a few thousand rows (three of them bad) dropped under
batch/churn/, scored by score_batch with the production version; the summary read back from S3."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

from mlops_local.sample_data import churn_features

if TYPE_CHECKING:
    from mlops_local.demo import Demo

BATCH_ROWS = 3_000
BATCH_KEY = "batch/churn/customers-2026-12.csv"
# row number (1-based, after the header) -> the bad cell it gets
BAD_CELLS = {17: ("tenure_months", "-4"), 1_200: ("plan", "platinum"), 2_999: ("autopay", "sometimes")}


def batch_file(rows: int = BATCH_ROWS) -> bytes:
    frame = churn_features(rows, seed=2026).astype(object)
    for row, (column, value) in BAD_CELLS.items():
        frame.loc[row - 1, column] = value
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def score_batch_file(demo: Demo) -> str:
    """Drop the file, wait for score_batch, and report what its summary says."""
    from mlops_local.demo import StepFailed

    payload = batch_file()
    mark = demo.watch.mark()
    demo.s3.put_object(Bucket=demo.data_bucket, Key=BATCH_KEY, Body=payload)
    invocation = demo.watch.wait_for("score_batch", mark, timeout=120)
    summary = _summary(demo)
    if summary is None:
        raise StepFailed("score_batch ran but wrote no summary under predictions/churn/")
    if (summary["rows"], summary["rejected"]) != (BATCH_ROWS, len(BAD_CELLS)):
        raise StepFailed(f"unexpected summary: {summary}")
    rejects = demo.s3.get_object(Bucket=demo.data_bucket, Key=summary["rejects"][0])["Body"].read().decode()
    rows = [line.split(",", 1)[0] for line in rejects.splitlines()[1:]]
    demo.numbers["batch_rows_per_second"] = summary["rows"] / max(invocation.duration_ms / 1000, 1e-6)
    return (
        f"{summary['rows']:,} rows -> {summary['scored']:,} scored with v{summary['version']}, "
        f"{summary['rejected']} rejected (rows {', '.join(rows)}); {invocation.duration_ms / 1000:.1f} s; "
        f"s3://{demo.data_bucket}/{summary['outputs'][0]}"
    )


def _summary(demo: Demo) -> dict[str, Any] | None:
    listing = demo.s3.list_objects_v2(Bucket=demo.data_bucket, Prefix="predictions/churn/")
    keys = [item["Key"] for item in listing.get("Contents", []) if item["Key"].endswith("/summary.json")]
    if not keys:
        return None
    return json.loads(demo.s3.get_object(Bucket=demo.data_bucket, Key=keys[0])["Body"].read())  # type: ignore[no-any-return]
