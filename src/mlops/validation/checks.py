"""Checks a stream of Arrow record batches against a contract, one batch at a time.

State is O(columns): per (check, column) a count of failing rows and the first few offending
rows, plus the observed min/max. Every cell is read as the type the contract declares: CSV
columns arrive as text and are parsed here (so a bad value is named with its row), Parquet
columns arrive typed and only the declared kind of type is accepted.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlops.contract import Contract, FeatureType, ProblemType, TargetMissing
from mlops.contract_rules import (
    BOOLEAN_TEXT,
    FLOAT32_MAX,
    FLOAT64_MAX,
    NULL_CATEGORY_TEXTS,
    FeatureRule,
    label_reader,
)
from mlops.validation.report import MAX_OFFENDING, CheckName, CheckResult, Offending
from mlops.validation.stats import Observed, StatsCollector

# What a numeric cell may look like as text (after trimming): decimal or scientific notation, or
# nan/inf spelled out (parsed, then failed by the finite check rather than the type check).
NUMBER_PATTERN = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$|^[+-]?(?:nan|inf|infinity)$"
_MAX_VALUE_CHARS = 200
_SMALL_DICTIONARY = 64


@dataclass
class _Tally:
    """Failing rows of one check on one column: the count and the first MAX_OFFENDING of them."""

    count: int = 0
    offending: list[Offending] = field(default_factory=list)
    show_values: bool = False  # quote the offending values (the contract marks the column safe)

    def add(self, mask: pa.Array, raw: pa.Array, rows_before: int) -> None:
        failing = mask.true_count  # a null is not a failure
        if not failing:
            return
        mask = pc.fill_null(mask, False)
        self.count += failing
        room = MAX_OFFENDING - len(self.offending)
        if room > 0:
            for index in pc.indices_nonzero(mask)[:room].to_pylist():
                value = raw[index].as_py()
                self.offending.append(
                    Offending(
                        row=rows_before + index + 1,
                        kind=_kind(value),
                        value=_text(value) if self.show_values else None,
                    )
                )


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[:_MAX_VALUE_CHARS] + "..."


_NUMBER_RE = re.compile(NUMBER_PATTERN, re.IGNORECASE)


def _kind(value: object) -> str:
    """What a cell holds, without its value: null, empty, text, number, NaN, infinity, boolean."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        trimmed = value.strip()
        if not trimmed:
            return "empty"
        if not _NUMBER_RE.match(trimmed):
            return "text"
        value = float(trimmed)
    if isinstance(value, int | float):
        number = float(value)
        return "NaN" if math.isnan(number) else "infinity" if math.isinf(number) else "number"
    return type(value).__name__


@dataclass
class _ColumnRule:
    """What the contract says about one column (a feature or the target)."""

    name: str
    kind: FeatureType
    nullable: bool
    min: float | None = None
    max: float | None = None
    allowed: frozenset[str] | None = None
    is_target: bool = False
    # a target of integer or boolean classes: a cell's text -> its label text ("True" -> "true", "1.0" -> "1")
    read_label: Callable[[str], str] | None = None
    show_values: bool = False  # the contract allows quoting this column's values in reports
    limit: float = FLOAT64_MAX  # largest magnitude the column's consumer holds (features: the graph's float32)

    @classmethod
    def of_feature(cls, rule: FeatureRule, *, show_values: bool = False) -> _ColumnRule:
        return cls(
            rule.name,
            rule.type,
            rule.nullable,
            rule.min,
            rule.max,
            rule.allowed,
            show_values=show_values,
            limit=FLOAT32_MAX,
        )

    @property
    def domain_check(self) -> CheckName:
        """The check that holds the value-domain rule (range or categories) of this column."""
        if self.is_target:
            return CheckName.TARGET
        return CheckName.RANGE if self.kind is FeatureType.NUMERIC else CheckName.CATEGORIES


@dataclass
class _ColumnState:
    rule: _ColumnRule
    tallies: dict[CheckName, _Tally] = field(default_factory=dict)
    column_type_error: str | None = None
    observed_min: float | None = None
    observed_max: float | None = None
    nulls: int = 0
    parsed: pa.Array | None = None  # the last batch as the statistics read it (float64, or text)

    def tally(self, check: CheckName) -> _Tally:
        return self.tallies.setdefault(check, _Tally(show_values=self.rule.show_values))

    def update(self, column: pa.Array, rows_before: int) -> None:
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        self.parsed = None
        if self.column_type_error is not None:
            return
        if self.rule.kind is FeatureType.NUMERIC:
            self._update_numeric(column, rows_before)
        elif self.rule.kind is FeatureType.BOOLEAN:
            self._update_boolean(column, rows_before)
        else:
            self._update_categorical(column, rows_before)

    # -- per kind ---------------------------------------------------------------------------

    def _update_numeric(self, column: pa.Array, rows_before: int) -> None:
        kind = column.type
        if _is_text(kind):
            column = _text_column(column)
            trimmed = pc.utf8_trim_whitespace(column)
            present = _present(trimmed)
            parses = pc.match_substring_regex(trimmed, NUMBER_PATTERN, ignore_case=True)
            bad = pc.and_(present, pc.invert(parses))
            self.tally(CheckName.TYPE).add(bad, column, rows_before)
            values = pc.cast(
                pc.if_else(pc.fill_null(parses, False), trimmed, pa.scalar(None, pa.string())), pa.float64()
            )
            self._nulls(pc.invert(present), column, rows_before)
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            values = column if kind == pa.float64() else pc.cast(column, pa.float64())
            self._nulls(None, values, rows_before)
        else:
            self.column_type_error = f"column has type {kind}, expected numbers"
            return
        self.parsed = values
        # Masks are built only for a batch that has a failing row: most batches have none.
        finite: pa.Array | None = None
        rule = self.rule
        low, high = _plain_min_max(values, rule.limit)
        if low is None:
            finite = pc.is_finite(values)  # null for null cells
            if rule.limit < FLOAT64_MAX:  # beyond the graph's float32 it would be fed as +-inf
                finite = pc.and_(finite, pc.less_equal(pc.abs(values), rule.limit))
            if finite.false_count:
                self.tally(CheckName.FINITE).add(pc.invert(finite), column, rows_before)
                finite_values = pc.filter(values, pc.fill_null(finite, False))
            else:
                finite_values = values  # min_max skips nulls
            low_scalar, high_scalar = pc.min_max(finite_values).values()
            low, high = low_scalar.as_py(), high_scalar.as_py()
        self.observed_min = _min(self.observed_min, low)
        self.observed_max = _max(self.observed_max, high)
        if low is None or ((rule.min is None or low >= rule.min) and (rule.max is None or high <= rule.max)):
            return  # every finite value of the batch is inside the range (or there is none)
        outside = pa.array(np.zeros(len(values), dtype=bool))
        if rule.min is not None:
            outside = pc.or_(outside, pc.fill_null(pc.less(values, rule.min), False))
        if rule.max is not None:
            outside = pc.or_(outside, pc.fill_null(pc.greater(values, rule.max), False))
        if finite is not None:
            outside = pc.and_(outside, pc.fill_null(finite, False))
        self.tally(rule.domain_check).add(outside, column, rows_before)

    def _update_boolean(self, column: pa.Array, rows_before: int) -> None:
        kind = column.type
        if _is_text(kind):
            column = _text_column(column)
            normalized = pc.utf8_lower(pc.utf8_trim_whitespace(column))
            present = _present(normalized)
            known = pc.is_in(normalized, value_set=pa.array(list(BOOLEAN_TEXT)))
            self.tally(CheckName.TYPE).add(pc.and_(present, pc.invert(known)), column, rows_before)
            truth = pc.is_in(normalized, value_set=pa.array([text for text, truth in BOOLEAN_TEXT.items() if truth]))
            self.parsed = _true_false(truth, pc.and_(present, known))
            self._nulls(pc.invert(present), column, rows_before)
        elif pa.types.is_boolean(kind):
            self.parsed = _true_false(column, None)
            self._nulls(None, column, rows_before)
        elif pa.types.is_integer(kind):
            known = pc.is_in(column, value_set=pa.array([0, 1], type=kind))
            self.tally(CheckName.TYPE).add(pc.and_(pc.is_valid(column), pc.invert(known)), column, rows_before)
            self.parsed = _true_false(pc.equal(column, 1), pc.fill_null(known, False))
            self._nulls(None, column, rows_before)
        else:
            self.column_type_error = f"column has type {kind}, expected true/false/1/0"

    def _update_categorical(self, column: pa.Array, rows_before: int) -> None:
        """Works on the dictionary (a few distinct values) and maps the answers to the rows by
        index: the text of each row is never compared. Parquet text columns arrive encoded."""
        kind = column.type
        encoded_text = pa.types.is_dictionary(kind) and pa.types.is_string(kind.value_type)
        if pa.types.is_dictionary(kind) and _is_text(kind.value_type):
            dictionary = _text_column(column.dictionary)
            indices = column.indices
        elif _is_text(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind):
            column = _text_column(column) if _is_text(kind) else pc.cast(column, pa.string())
            encoded = pc.dictionary_encode(column)
            dictionary, indices = encoded.dictionary, encoded.indices
        else:
            self.column_type_error = f"column has type {kind}, expected text"
            return
        if self.rule.read_label is not None:  # few distinct labels: read each once
            read = self.rule.read_label
            dictionary = pa.array([None if v is None else read(v) for v in dictionary.to_pylist()], pa.string())
            encoded_text = False
        blank, unknown_entries = self._entry_flags(dictionary)
        if blank.true_count:
            row_blank = pc.fill_null(pc.take(blank, indices), True)
            indices = pc.if_else(row_blank, pa.scalar(None, indices.type), indices)
            null_mask = row_blank
        else:
            null_mask = None
        # already encoded over plain text with nothing blanked: the column is its parsed form
        reuse = null_mask is None and encoded_text
        parsed = column if reuse else pa.DictionaryArray.from_arrays(indices, dictionary)
        self.parsed = parsed
        self._nulls(null_mask, parsed if null_mask is None else column, rows_before)
        if unknown_entries is not None and unknown_entries.true_count:
            unknown = pc.fill_null(pc.take(unknown_entries, indices), False)
            self.tally(self.rule.domain_check).add(unknown, column, rows_before)

    def _entry_flags(self, dictionary: pa.Array) -> tuple[pa.BooleanArray, pa.BooleanArray | None]:
        """Per dictionary entry: blank (a null cell), and not an allowed value (None: any is)."""
        allowed = self.rule.allowed
        if len(dictionary) <= _SMALL_DICTIONARY:  # a few values: plain Python beats kernel calls
            names = dictionary.to_pylist()
            blank = [name is None or name in NULL_CATEGORY_TEXTS for name in names]
            unknown = (
                None if allowed is None else [not b and n not in allowed for n, b in zip(names, blank, strict=True)]
            )
            return pa.array(blank, pa.bool_()), None if unknown is None else pa.array(unknown, pa.bool_())
        blank = pc.fill_null(pc.is_in(dictionary, value_set=pa.array(sorted(NULL_CATEGORY_TEXTS))), True)
        if allowed is None:
            return blank, None
        known = pc.is_in(dictionary, value_set=pa.array(sorted(allowed), type=pa.string()))
        return blank, pc.and_(pc.invert(known), pc.invert(blank))

    def _nulls(self, null_mask: pa.Array | None, raw: pa.Array, rows_before: int) -> None:
        """Count null cells: `null_mask` marks them (never null itself), or None for `raw`'s nulls."""
        count = raw.null_count if null_mask is None else null_mask.true_count
        self.nulls += count
        if count and not self.rule.nullable:
            self.tally(CheckName.NULLS).add(pc.is_null(raw) if null_mask is None else null_mask, raw, rows_before)

    # -- results ----------------------------------------------------------------------------

    def results(self, rows: int, max_null_fraction: float) -> list[CheckResult]:
        rule = self.rule
        if self.column_type_error is not None:
            return [CheckResult(name=CheckName.TYPE, column=rule.name, passed=False, details=self.column_type_error)]
        results = [self._result(CheckName.TYPE, f"values must be {_kind_text(rule.kind)}")]
        if rule.nullable:
            details = (
                f"{self.nulls} rows without a target: dropped before training (target.missing: drop)"
                if rule.is_target
                else f"{self.nulls} nulls (nullable)"
            )
            results.append(
                CheckResult(
                    name=CheckName.NULLS,
                    column=rule.name,
                    passed=True,
                    details=details,
                    failing_rows=self.nulls if rule.is_target else None,
                )
            )
            share = self.nulls / rows if rows else 0.0
            results.append(
                CheckResult(
                    name=CheckName.NULL_RATE,
                    column=rule.name,
                    passed=share <= max_null_fraction,
                    details=f"{self.nulls} of {rows} rows ({share:.2%}) are null; allowed {max_null_fraction:.2%}",
                    failing_rows=self.nulls,
                    value=share,
                    threshold=max_null_fraction,
                )
            )
        else:
            results.append(self._result(CheckName.NULLS, "null or empty values in a non-nullable column"))
        if rule.kind is FeatureType.NUMERIC:
            beyond = "" if rule.limit == FLOAT64_MAX else " or beyond the float32 range the model takes"
            results.append(self._result(CheckName.FINITE, f"NaN or infinite values{beyond}"))
            if rule.min is not None or rule.max is not None:
                observed = f"observed [{self.observed_min}, {self.observed_max}]" if rule.show_values else "ok"
                results.append(self._result(rule.domain_check, f"values outside [{rule.min}, {rule.max}]", observed))
        elif rule.allowed is not None:
            results.append(self._result(rule.domain_check, f"values not in {sorted(rule.allowed)}"))
        return results

    def _result(self, check: CheckName, problem: str, ok_details: str = "ok") -> CheckResult:
        tally = self.tallies.get(check, _Tally())
        if not tally.count:
            return CheckResult(name=check, column=self.rule.name, passed=True, details=ok_details, failing_rows=0)
        quoted = ", ".join(o.described for o in tally.offending)
        return CheckResult(
            name=check,
            column=self.rule.name,
            passed=False,
            details=f"{tally.count} rows: {problem} (first: {quoted})",
            failing_rows=tally.count,
            first_offending=list(tally.offending),
        )


class DatasetChecker:
    """Accumulates the contract checks over the batches of one dataset.

    Call `set_columns` with the header, `check_batch` for each batch in order, then `results`.
    """

    def __init__(self, contract: Contract, stats: StatsCollector | None = None) -> None:
        self.contract = contract
        self.stats = stats
        self.rows = 0
        self._columns: list[str] | None = None
        self._states: dict[str, _ColumnState] = {rule.name: _ColumnState(rule) for rule in _rules(contract)}

    @property
    def too_many_rows(self) -> bool:
        """More rows than the contract allows: the reader stops (the row count check fails)."""
        return self.rows > self.contract.data.max_rows

    @property
    def too_many_columns(self) -> bool:
        return self._columns is not None and len(self._columns) > self.contract.data.max_columns

    @property
    def read_columns(self) -> list[str]:
        """The columns a reader must load: the contract's and the declared id columns present."""
        header = set(self._columns or ())
        return [*self.present_columns, *(name for name in self.contract.data.id_columns if name in header)]

    @property
    def categorical_columns(self) -> list[str]:
        """The contract columns checked as categories: a reader may hand them over dictionary-encoded."""
        return [name for name, state in self._states.items() if state.rule.kind is FeatureType.CATEGORICAL]

    def observed(self) -> dict[str, Observed]:
        """Exact min/max of every numeric column seen so far."""
        return {
            name: Observed(state.observed_min, state.observed_max)
            for name, state in self._states.items()
            if state.rule.kind is FeatureType.NUMERIC
        }

    @property
    def present_columns(self) -> list[str]:
        """The contract columns the header has (each once, in contract order)."""
        header = set(self._columns or ())
        return [name for name in self.contract.columns if name in header]

    def set_columns(self, names: list[str]) -> None:
        self._columns = list(names)

    def count_rows(self, rows: int) -> None:
        """Count rows whose cells are not checked (a file without any contract column)."""
        self.rows += rows

    def check_batch(self, batch: pa.RecordBatch) -> None:
        names = batch.schema.names
        for name, state in self._states.items():
            if name in names:
                state.update(batch.column(names.index(name)), self.rows)
        if self.stats is not None:
            parsed = {name: state.parsed for name, state in self._states.items() if state.parsed is not None}
            if len(parsed) == len(self._states):  # statistics only over a sound schema
                ids = {n: batch.column(names.index(n)) for n in self.contract.data.id_columns if n in names}
                self.stats.add(parsed, ids, batch.num_rows)
        self.rows += batch.num_rows

    def results(self, *, complete: bool = True) -> list[CheckResult]:
        """All checks. `complete=False` (the parser stopped early) leaves out the row count."""
        if self._columns is None:  # the parser failed before the header: nothing to say about columns
            return []
        header = self._columns
        expected = self.contract.columns
        missing = [name for name in expected if name not in header]
        allowed = {*expected, *self.contract.data.id_columns}
        unexpected = [name for name in dict.fromkeys(header) if name not in allowed]
        duplicated = sorted(name for name, n in Counter(header).items() if n > 1)
        results = [
            _list_check(CheckName.MISSING_COLUMNS, missing, "columns the contract requires are missing"),
            _list_check(CheckName.UNEXPECTED_COLUMNS, unexpected, "columns the contract does not declare"),
            _list_check(CheckName.DUPLICATE_COLUMNS, duplicated, "columns appear more than once"),
        ]
        limit = self.contract.data.max_columns
        results.append(
            CheckResult(
                name=CheckName.LIMITS,
                column=None,
                passed=not self.too_many_columns,
                details=f"{len(header)} columns (limit {limit})",
                value=len(header),
                threshold=limit,
            )
        )
        for name in self.present_columns:
            results.extend(self._states[name].results(self.rows, self.contract.data.max_null_fraction))
        if complete or self.too_many_rows:
            results.append(self._row_count())
        return results

    def _row_count(self) -> CheckResult:
        data = self.contract.data
        passed = data.min_rows <= self.rows <= data.max_rows
        more = "more than " if self.too_many_rows else ""
        details = f"{more}{self.rows} data rows; the contract expects {data.min_rows}..{data.max_rows}"
        return CheckResult(name=CheckName.ROW_COUNT, passed=passed, details=details)


def _rules(contract: Contract) -> list[_ColumnRule]:
    rules = [
        _ColumnRule.of_feature(rule, show_values=feature.show_values)
        for rule, feature in zip(contract.feature_rules, contract.features, strict=True)
    ]
    target = contract.target
    if contract.problem_type is ProblemType.CLASSIFICATION:
        rules.append(
            _ColumnRule(
                name=target.name,
                kind=FeatureType.CATEGORICAL,
                nullable=target.missing is TargetMissing.DROP,
                allowed=frozenset(target.labels or ()),
                read_label=label_reader(target.classes or ()),
                is_target=True,
            )
        )
    else:
        rules.append(
            _ColumnRule(
                name=target.name,
                kind=FeatureType.NUMERIC,
                nullable=target.missing is TargetMissing.DROP,
                min=target.min,
                max=target.max,
                is_target=True,
            )
        )
    return rules


def _list_check(check: CheckName, names: list[str], problem: str) -> CheckResult:
    if not names:
        return CheckResult(name=check, passed=True, details="none")
    return CheckResult(name=check, passed=False, details=f"{problem}: {', '.join(names)}")


_TRUE_FALSE = pa.array(["false", "true"])


def _true_false(truth: pa.Array, valid: pa.Array | None) -> pa.DictionaryArray:
    """ "true"/"false" where `valid` (None: where `truth` is not null), null elsewhere: how
    profiles spell booleans, encoded over a two-entry dictionary."""
    indices = pc.cast(pc.fill_null(truth, False) if valid is not None else truth, pa.int8())
    if valid is not None:
        indices = pc.if_else(pc.fill_null(valid, False), indices, pa.scalar(None, pa.int8()))
    return pa.DictionaryArray.from_arrays(indices, _TRUE_FALSE)


def _plain_min_max(values: pa.Array, limit: float) -> tuple[float, float] | tuple[None, None]:
    """Min and max of float64 values without nulls when all are finite, within +-limit, and neither is a zero
    (whose sign pyarrow and numpy may pick differently); (None, None) otherwise. numpy over the
    Arrow buffer is several times faster than `pc.is_finite` plus `pc.min_max`, and a NaN or an
    infinity shows in the min or the max."""
    if values.null_count or not len(values):
        return None, None
    numbers = values.to_numpy(zero_copy_only=True)
    low, high = float(numbers.min()), float(numbers.max())
    if -limit <= low and high <= limit and low != 0 and high != 0:  # NaN compares false
        return low, high
    return None, None


def _present(text: pa.Array) -> pa.Array:
    """True where a text cell holds something (not null, not blank); never null itself."""
    return pc.and_(pc.is_valid(text), pc.invert(pc.fill_null(pc.equal(text, ""), True)))


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        return _is_text(kind.value_type)
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _text_column(column: pa.Array) -> pa.Array:
    return column if pa.types.is_string(column.type) else pc.cast(column, pa.string())


def _kind_text(kind: FeatureType) -> str:
    return {FeatureType.NUMERIC: "numbers", FeatureType.BOOLEAN: "true/false/1/0", FeatureType.CATEGORICAL: "text"}[
        kind
    ]


def _min(current: float | None, value: float | None) -> float | None:
    return value if current is None else current if value is None else min(current, value)


def _max(current: float | None, value: float | None) -> float | None:
    return value if current is None else current if value is None else max(current, value)
