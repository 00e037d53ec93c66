"""Draft a contract from a sample file (`mlops contracts infer`): a starting point to review.

It streams: a CSV is read in blocks with pyarrow's streaming reader, every column as text (as the
dataset validator reads it, with the same null spellings, number pattern and boolean words), a
Parquet file batch by batch within its row groups; per column it keeps counts, min/max and at
most `MAX_CATEGORIES + 1` distinct values, so memory stays flat whatever the file's size.

What it decides, per column:
- numeric: every present value is a number (the validator's pattern); range = observed range
  widened by `RANGE_MARGIN` of its span (never below 0 when every value was >= 0);
- boolean: text of true/false (1/0 allowed beside them), or a Parquet bool column;
- categorical: other text; with at most `MAX_CATEGORIES` distinct values they are declared
  (sorted), otherwise the vocabulary stays open; text never repeated (within each block read, to
  keep memory flat) on a sample of at least `MIN_ROWS_FOR_ID` rows is an identifier, listed in
  `data.id_columns` rather than as a feature;
- nullable: the column had an empty (or NA/NULL) cell;
- the target (`target`, else the last column): text, boolean, or whole numbers with at most
  `MAX_CLASSES` distinct values -> classification (classes in the file's kind: integers, booleans
  or text); other numbers -> regression; when some rows have no
  target, `target.missing: drop` (said in a note: the author decides).
The estimator is logistic regression (classification) or ridge (regression), the metric roc_auc
for two classes, f1_macro for more, r2 for regression.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mlops.contract import Contract, parse_contract
from mlops.contract_rules import BOOLEAN_TEXT, MODEL_NAME_PATTERN
from mlops.errors import ContractError

MAX_CATEGORIES = 30  # distinct texts declared as a closed list of categories
MAX_CLASSES = 20  # distinct whole numbers of a target still read as class labels
RANGE_MARGIN = 0.1  # share of the observed span added below and above
MIN_ROWS_FOR_ID = 50  # a text column unique on fewer rows is not taken for an identifier
BLOCK_BYTES = 4 * 1024 * 1024
PARQUET_BATCH_ROWS = 65_536
_WORDS = frozenset({"true", "false"})


class InferenceError(ContractError):
    """The sample cannot make a contract (unknown format, no rows, the target is not a column)."""


@dataclass
class ColumnProfile:
    """What one column of the sample showed so far (bounded, whatever the rows)."""

    name: str
    rows: int = 0
    nulls: int = 0
    numeric: bool = True  # every present value so far is a number
    boolean: bool = True  # every present value so far is true/false/1/0 text (or bool)
    words: bool = False  # at least one true/false word (else 1/0 is a number)
    whole: bool = True  # every number so far is a whole number
    low: float | None = None
    high: float | None = None
    distinct: set[Any] = field(default_factory=set)  # up to MAX_CATEGORIES + 1 (then `many`)
    many: bool = False
    unique: bool = True  # no value seen twice (text identifiers; within each block past MAX_CATEGORIES)
    unsupported: str | None = None  # a Parquet type no contract type reads

    @property
    def present(self) -> int:
        return self.rows - self.nulls

    @property
    def observed_range(self) -> tuple[float, float]:
        if self.low is None or self.high is None:
            raise InferenceError(f"{self.name!r}: no numbers to take a range from")
        return self.low, self.high

    def add_text(self, column: pa.Array) -> None:
        from mlops.validation.checks import NUMBER_PATTERN

        self.rows += len(column)
        text = pc.utf8_trim_whitespace(column.cast(pa.string()) if not pa.types.is_string(column.type) else column)
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
        values = text.drop_null()
        self.nulls += len(column) - len(values)
        if not len(values):
            return
        if self.numeric:
            parses = pc.match_substring_regex(values, NUMBER_PATTERN, ignore_case=True)
            if parses.false_count:
                self.numeric = False
            else:
                self._add_numbers(pc.cast(values, pa.float64()))
        if self.boolean:
            lowered = pc.utf8_lower(values)
            if not pc.all(pc.is_in(lowered, value_set=pa.array(list(BOOLEAN_TEXT)))).as_py():
                self.boolean = False
            elif pc.any(pc.is_in(lowered, value_set=pa.array(sorted(_WORDS)))).as_py():
                self.words = True
        if not self.numeric:
            self._add_distinct(values)

    def add_typed(self, column: pa.Array) -> None:
        kind = column.type
        if pa.types.is_dictionary(kind):
            column, kind = column.cast(kind.value_type), kind.value_type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
            self.add_text(column)
            return
        self.rows += len(column)
        self.nulls += column.null_count
        values = column.drop_null()
        if pa.types.is_boolean(kind):
            self.numeric, self.words = False, True
            self._add_distinct(values)
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            self.boolean = False
            self._add_numbers(pc.cast(values, pa.float64()))
        else:
            self.unsupported = str(kind)

    def _add_numbers(self, numbers: pa.Array) -> None:
        finite = numbers.filter(pc.is_finite(numbers))
        if len(finite) != len(numbers):
            self.numeric = False  # NaN/inf: the validator refuses them, so do not promise numbers
            return
        if not len(finite):
            return
        low, high = (v.as_py() for v in pc.min_max(finite).values())
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)
        if self.whole and not pc.all(pc.equal(pc.floor(finite), finite)).as_py():
            self.whole = False
        if not self.many:
            self._add_distinct(finite)

    def _add_distinct(self, values: pa.Array) -> None:
        uniques = pc.unique(values)
        if len(uniques) != len(values):
            self.unique = False
        if self.many:
            return
        new = [value for value in uniques.to_pylist() if value not in self.distinct]
        if len(new) != len(uniques):
            self.unique = False  # seen in an earlier block
        self.distinct.update(new)
        if len(self.distinct) > MAX_CATEGORIES:
            # past this, uniqueness is judged within each block only (flat memory)
            self.many = True
            self.distinct.clear()


@dataclass(frozen=True)
class InferredContract:
    """The contract document (it parses), and what a reviewer should know about it."""

    document: dict[str, Any]
    rows: int
    notes: tuple[str, ...]

    @property
    def contract(self) -> Contract:
        return parse_contract(self.document, source="inferred contract")


def infer_contract(path: Path, *, target: str | None = None, name: str | None = None) -> InferredContract:
    """Read `path` (.csv, .csv.gz, .parquet) once, streaming, and draft its contract.

    Raises InferenceError for an unknown format, an empty sample or an unknown target column.
    """
    profiles = _profile(path)
    if not profiles:
        raise InferenceError(f"{path.name}: no columns")
    rows = profiles[0].rows
    if rows == 0:
        raise InferenceError(f"{path.name}: no rows to infer from")
    notes: list[str] = []
    by_name = {p.name: p for p in profiles}
    if target is None:
        target = profiles[-1].name
        notes.append(f"target: the last column {target!r} (pass --target NAME to choose another)")
    if target not in by_name:
        raise InferenceError(f"{path.name}: no column {target!r}; columns: {[p.name for p in profiles]}")

    features: list[dict[str, Any]] = []
    id_columns: list[str] = []
    for profile in profiles:
        if profile.name == target:
            continue
        if profile.unsupported:
            notes.append(f"{profile.name!r}: left out, Parquet type {profile.unsupported} is no contract type")
        elif profile.present == 0:
            notes.append(f"{profile.name!r}: left out, empty on every row")
        elif _is_identifier(profile):
            id_columns.append(profile.name)
            notes.append(f"{profile.name!r}: unique text on every row, declared in data.id_columns, not a feature")
        else:
            features.append(_feature(profile))
    if not features:
        raise InferenceError(f"{path.name}: no column besides the target can be a feature")

    target_profile = by_name[target]
    problem_type, target_document = _target(target_profile)
    if target_profile.nulls:
        notes.append(
            f"target {target!r}: {target_profile.nulls} rows without a value; target.missing is drop (training "
            "leaves them out, validation counts them); quarantine refuses such a dataset"
        )
    document: dict[str, Any] = {
        "name": name or _model_name(path),
        "description": f"Drafted by `mlops contracts infer` from {path.name} ({rows} rows): review before use.",
        "problem_type": problem_type,
        "target": target_document,
        "features": features,
        "estimator": _estimator(problem_type),
        "metric": {"name": _metric(problem_type, target_document)},
    }
    data: dict[str, Any] = {}
    if rows < 50:
        data["min_rows"] = rows
    if id_columns:
        data["id_columns"] = id_columns
    if data:
        document["data"] = data
    parse_contract(document, source=f"contract inferred from {path.name}")  # it must pass `check` as printed
    return InferredContract(document=document, rows=rows, notes=tuple(notes))


def dump_contract(document: dict[str, Any], output_format: str = "json") -> str:
    """The document as `mlops contracts check` reads it: indented JSON, or YAML (block style)."""
    if output_format == "yaml":
        import yaml

        return str(yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120))
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _profile(path: Path) -> list[ColumnProfile]:
    lowered = path.name.lower()
    if lowered.endswith(".parquet"):
        read, text = _parquet_batches, False
    elif lowered.endswith((".csv", ".csv.gz")):
        read, text = _csv_batches, True
    else:
        raise InferenceError(f"{path.name}: unsupported format; expected .csv, .csv.gz or .parquet")
    try:
        names, batches = read(path)
        profiles = [ColumnProfile(name.removeprefix("\ufeff")) for name in names]
        for batch in batches:
            for profile, column in zip(profiles, batch.columns, strict=True):
                if text:
                    profile.add_text(column)
                else:
                    profile.add_typed(column)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as error:
        raise InferenceError(f"{path.name}: cannot read: {error}") from None
    return profiles


def _csv_batches(path: Path) -> tuple[list[str], Iterator[pa.RecordBatch]]:
    import csv
    import gzip

    import pyarrow.csv as pacsv

    from mlops.validation.readers import NULL_TEXT, detect_delimiter

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as head:
        header = head.readline().rstrip("\r\n")
    delimiter = detect_delimiter(header)
    names = next(csv.reader([header], delimiter=delimiter), [])
    if len(set(names)) != len(names):
        raise InferenceError(f"{path.name}: the header repeats a column name")
    reader = pacsv.open_csv(
        str(path),
        read_options=pacsv.ReadOptions(use_threads=False, block_size=BLOCK_BYTES, encoding="utf-8"),
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(_header_names(path, delimiter, names), pa.string()),
            strings_can_be_null=True,
            null_values=list(NULL_TEXT),
        ),
    )
    return reader.schema.names, iter(reader)


def _header_names(path: Path, delimiter: str, names: list[str]) -> list[str]:
    """The names pyarrow reads (a UTF-8 byte order mark is part of its first name)."""
    with open(path, "rb") as raw:
        bom = raw.read(3) == b"\xef\xbb\xbf" and not path.name.lower().endswith(".gz")
    return ["\ufeff" + names[0], *names[1:]] if bom and names else names


def _parquet_batches(path: Path) -> tuple[list[str], Iterator[pa.RecordBatch]]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    return parquet.schema_arrow.names, parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS)


def _is_identifier(profile: ColumnProfile) -> bool:
    return not profile.numeric and not profile.boolean and profile.unique and profile.rows >= MIN_ROWS_FOR_ID


def _feature(profile: ColumnProfile) -> dict[str, Any]:
    feature: dict[str, Any] = {"name": profile.name}
    if profile.numeric:
        feature["type"] = "numeric"
        feature["min"], feature["max"] = _widened(*profile.observed_range)
    elif profile.boolean and profile.words:
        feature["type"] = "boolean"
    else:
        feature["type"] = "categorical"
        if not profile.many:
            feature["categories"] = sorted(str(v) for v in profile.distinct)
    if profile.nulls:
        feature["nullable"] = True
    return feature


def _widened(low: float, high: float) -> tuple[float, float]:
    """[low, high] widened by RANGE_MARGIN of the span each way, rounded outwards to 3 significant
    digits of the span; never below 0 when `low` is not."""
    span = high - low or abs(high) or 1.0
    step = 10 ** (math.floor(math.log10(span * RANGE_MARGIN)) - 1) if span * RANGE_MARGIN > 0 else 1.0
    wide_low = math.floor((low - span * RANGE_MARGIN) / step) * step
    wide_high = math.ceil((high + span * RANGE_MARGIN) / step) * step
    if low >= 0 > wide_low:
        wide_low = 0.0
    return _plain(wide_low), _plain(wide_high)


def _plain(value: float) -> float:
    rounded = float(f"{value:.12g}")  # no 0.30000000000000004 in the printed contract
    return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded  # type: ignore[return-value]


def _target(profile: ColumnProfile) -> tuple[str, dict[str, Any]]:
    document: dict[str, Any] = {"name": profile.name}
    if profile.nulls:
        document["missing"] = "drop"
    if profile.numeric and not (profile.whole and not profile.many and len(profile.distinct) <= MAX_CLASSES):
        document["min"], document["max"] = _widened(*profile.observed_range)
        return "regression", document
    if profile.many:
        raise InferenceError(
            f"target {profile.name!r} has more than {MAX_CATEGORIES} distinct texts: not class labels; "
            "choose another --target"
        )
    if len(profile.distinct) < 2:
        raise InferenceError(f"target {profile.name!r} has fewer than two distinct values")
    document["classes"] = _classes(profile)
    return "classification", document


def _classes(profile: ColumnProfile) -> list[Any]:
    """The labels in the file's own kind: integers for whole numbers, [false, true] for true/false
    words (predict then answers in that type), else text."""
    if profile.numeric:
        return [int(v) for v in sorted(profile.distinct)]
    if profile.boolean and profile.words:
        return [False, True]
    return sorted(str(v) for v in profile.distinct)


def _estimator(problem_type: str) -> dict[str, Any]:
    if problem_type == "classification":
        return {"name": "logistic_regression", "params": {"max_iter": 1000}}
    return {"name": "ridge", "params": {"alpha": 1.0}}


def _metric(problem_type: str, target: dict[str, Any]) -> str:
    if problem_type == "regression":
        return "r2"
    return "roc_auc" if len(target["classes"]) == 2 else "f1_macro"


def _model_name(path: Path) -> str:
    """A model name (`MODEL_NAME_PATTERN`) from the file's name: "Breast Cancer.csv" -> "breast-cancer"."""
    stem = path.name.split(".")[0].lower()
    slug = re.sub(r"[^a-z0-9]+", "-", stem).strip("-")
    if not slug or not slug[0].isalpha():
        slug = f"model-{slug}".strip("-")
    slug = slug[:63].rstrip("-")
    assert re.fullmatch(MODEL_NAME_PATTERN, slug)
    return slug
