"""One part of a batch file scored: rows read in record batches, each row checked by predict's
own `RecordValidator` (the contract's rules live there and in `mlops.contract_rules`, nowhere
here), good rows run through the verified model in one call per batch, refused rows kept with
their row number and reason.

CSV cells are text: `cell_values` turns a column's text into the JSON values a request would send
(the dataset reader's null spellings, `BOOLEAN_TEXT` for booleans, a float for a number); a cell
that does not parse stays text, so the validator refuses it as the wrong type, as predict would.
Parquet columns are typed already and go to the validator as they are.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlops.contract_rules import BOOLEAN_TEXT, CSV_NULL_TEXT, FeatureRule, FeatureType
from mlops.errors import BadRequestError, RecordError, RejectionReason
from mlops.inference.model import LoadedModel
from mlops.inference.prediction_ids import new_prediction_ids
from mlops.inference.records import Columns

NULL_TEXT = frozenset(CSV_NULL_TEXT)  # the dataset reader's null spellings
RETRY_BLOCK_ROWS = 256  # a refused batch is re-checked in blocks this size, then row by row
NON_FINITE = "non_finite_output"
REJECT_SCHEMA = pa.schema(
    [("row", pa.int64()), ("field", pa.string()), ("reason", pa.string()), ("detail", pa.string())]
)


def cell_values(rule: FeatureRule, texts: Sequence[str | None]) -> list[Any]:
    """A CSV column's text cells as the JSON values a prediction request would carry."""
    if rule.type is FeatureType.CATEGORICAL:
        return [None if text is None or text in NULL_TEXT else text for text in texts]
    if rule.type is FeatureType.BOOLEAN:
        return [_boolean(text) for text in texts]
    return [_number(text) for text in texts]


def _number(text: str | None) -> Any:
    if text is None or text in NULL_TEXT:
        return None
    try:
        return float(text)
    except ValueError:
        return text  # refused by the validator as "expected a number"


def _boolean(text: str | None) -> Any:
    if text is None or text in NULL_TEXT:
        return None
    return BOOLEAN_TEXT.get(text.strip().lower(), text)


_NULLS = pa.array(sorted(NULL_TEXT), pa.string())
_TRUE_TEXTS = pa.array(sorted(text for text, truth in BOOLEAN_TEXT.items() if truth), pa.string())
_BOOLEAN_TEXTS = pa.array(sorted(BOOLEAN_TEXT), pa.string())


def column_values(rule: FeatureRule, column: pa.Array) -> list[Any]:
    """`cell_values` over a pyarrow text column, vectorised when every cell parses (the common
    case, ~4x faster); any cell that does not sends the column through `cell_values` itself, so
    both paths always give the same values (tests/unit/test_batch_plan.py checks it)."""
    nulled = pc.if_else(pc.is_in(column, value_set=_NULLS), pa.scalar(None, pa.string()), column)
    if rule.type is FeatureType.CATEGORICAL:
        return nulled.to_pylist()  # type: ignore[no-any-return]
    if rule.type is FeatureType.BOOLEAN:
        normalized = pc.utf8_lower(pc.utf8_trim_whitespace(nulled))
        if pc.all(pc.is_in(normalized, value_set=_BOOLEAN_TEXTS), skip_nulls=True).as_py() is not False:
            return _booleans(normalized)
        return cell_values(rule, column.to_pylist())
    try:
        return pc.cast(nulled, pa.float64()).to_pylist()  # type: ignore[no-any-return]
    except pa.ArrowInvalid:
        return cell_values(rule, column.to_pylist())


def _booleans(normalized: pa.Array) -> list[Any]:
    truth = pc.is_in(normalized, value_set=_TRUE_TEXTS)
    return pc.if_else(pc.is_null(normalized), pa.scalar(None, pa.bool_()), truth).to_pylist()  # type: ignore[no-any-return]


@dataclass
class ScoredBatch:
    """What one record batch became: a table of predictions and the refused rows."""

    predictions: pa.Table | None
    rejects: pa.Table | None
    rows: int
    scored: int
    rejected: int
    reasons: dict[str, int] = field(default_factory=dict)


class BatchScorer:
    """Scores record batches with one loaded model (one per part)."""

    def __init__(self, model: LoadedModel, rules: Sequence[FeatureRule], *, text_cells: bool) -> None:
        self.model = model
        self.rules = {rule.name: rule for rule in rules}
        self.text_cells = text_cells

    def score(self, batch: pa.RecordBatch, first_row: int) -> ScoredBatch:
        """Score `batch`, whose first row is the file's data row `first_row` (1-based)."""
        count = batch.num_rows
        if count == 0:
            return ScoredBatch(None, None, 0, 0, 0)
        records = self._records(batch)
        kept, columns, refused = self._validate(records)
        reject_rows = [first_row + index for index, _ in refused]
        reject_fields = [error.field for _, error in refused]
        reject_reasons = [error.reason.value for _, error in refused]
        reject_details = [_detail(error) for _, error in refused]
        predictions = None
        if kept:
            outputs = self.model.outputs(columns)
            finite = _finite(outputs, self.model.classification)
            if not finite.all():
                for position in np.flatnonzero(~finite).tolist():
                    reject_rows.append(first_row + kept[position])
                    reject_fields.append("(record)")
                    reject_reasons.append(NON_FINITE)
                    reject_details.append("the model produced a non-finite value")
                kept = [index for index, ok in zip(kept, finite.tolist(), strict=True) if ok]
                outputs = [output[finite] for output in outputs]
            predictions = self._table(kept, outputs, first_row) if kept else None
        rejects = None
        if reject_rows:
            order = np.argsort(np.asarray(reject_rows), kind="stable")
            rejects = pa.table(
                [pa.array(reject_rows), pa.array(reject_fields), pa.array(reject_reasons), pa.array(reject_details)],
                schema=REJECT_SCHEMA,
            ).take(pa.array(order))
        reasons: dict[str, int] = {}
        for reason in reject_reasons:
            reasons[reason] = reasons.get(reason, 0) + 1
        return ScoredBatch(predictions, rejects, count, len(kept), len(reject_rows), reasons)

    def _records(self, batch: pa.RecordBatch) -> list[dict[str, Any]]:
        present = [name for name in self.model.validator.names if name in batch.schema.names]
        values = []
        for name in present:
            column = batch.column(name)
            values.append(column_values(self.rules[name], column) if self.text_cells else column.to_pylist())
        if not present:
            return [{} for _ in range(batch.num_rows)]
        return [dict(zip(present, row, strict=True)) for row in zip(*values, strict=True)]

    def _validate(self, records: list[dict[str, Any]]) -> tuple[list[int], Columns, list[tuple[int, RecordError]]]:
        """The indexes of the good records, their feed columns, and each refused record's error.
        The whole batch in one call when it is clean (the common case), else block by block."""
        validator = self.model.validator
        try:
            return list(range(len(records))), validator.validate(records), []
        except RecordError:
            pass
        kept: list[int] = []
        values: tuple[list[Any], ...] = tuple([] for _ in validator.names)
        refused: list[tuple[int, RecordError]] = []
        for start in range(0, len(records), RETRY_BLOCK_ROWS):
            block = records[start : start + RETRY_BLOCK_ROWS]
            for offset, good in _checked(validator, block, refused, start):
                kept.extend(range(start + offset, start + offset + len(good)))
                for merged, column in zip(values, good.values, strict=True):
                    merged.extend(column)
        return kept, Columns(validator.names, values, [records[index] for index in kept]), refused

    def _table(self, kept: list[int], outputs: list[np.ndarray], first_row: int) -> pa.Table:
        model = self.model
        ids = new_prediction_ids(len(kept))
        columns: dict[str, Any] = {
            "row": pa.array(np.asarray(kept, dtype=np.int64) + first_row),
            "prediction_id": pa.array(ids, pa.string()),
            "model_version": pa.array(np.full(len(kept), model.version, dtype=np.int32)),
        }
        if model.classification:
            labels = outputs[0].reshape(-1)
            columns["label"] = pa.array(labels.astype(str) if labels.dtype != object else labels, pa.string())
            probabilities = np.asarray(outputs[1], dtype=np.float64)
            for position, name in enumerate(model.classes):
                columns[f"probability_{name}"] = pa.array(probabilities[:, position])
        else:
            columns["value"] = pa.array(np.asarray(outputs[0], dtype=np.float64).reshape(-1))
        return pa.table(columns)


def _checked(
    validator: Any, block: list[dict[str, Any]], refused: list[tuple[int, RecordError]], start: int
) -> Iterator[tuple[int, Columns]]:
    """(offset in block, columns) of the good parts of `block`: whole, or record by record."""
    try:
        yield 0, validator.validate(block)
        return
    except RecordError:
        pass
    for offset, record in enumerate(block):
        try:
            yield offset, validator.validate([record])
        except RecordError as error:
            refused.append((start + offset, error))
        except BadRequestError as error:  # a future batch-level rule must not hide the other rows
            refused.append((start + offset, RecordError(str(error), reason=RejectionReason.OTHER)))


def _detail(error: RecordError) -> str:
    """The validator's message without its request-relative `records[i].` prefix (the row column
    says which row)."""
    text = str(error)
    head, separator, rest = text.partition(": ")
    return rest if separator and head.startswith("records[") else text


def _finite(outputs: list[np.ndarray], classification: bool) -> np.ndarray:
    values = np.asarray(outputs[1] if classification else outputs[0], dtype=np.float64)
    values = values.reshape(len(values), -1)
    return np.isfinite(values).all(axis=1)
