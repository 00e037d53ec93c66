"""Streaming statistics of a dataset against a reference profile, in memory bounded by the
contract, not by the file.

Per batch (already parsed by `DatasetChecker`): counts per reference bin (numeric) or category,
label counts, rows outside the reference's observed values, 64-bit row hashes for exact
duplicates and id uniqueness, and a bottom-k random sample of rows (for the label-flip check and
for this dataset's own profile), kept in key order so it does not depend on how the rows were
cut into batches. Categories arrive dictionary-encoded: per batch the few distinct values are
hashed, counted and compared once, and the answers spread to the rows by index.

Duplicates: row hashes are kept exactly (sorted unique uint64 + uint32 counts, 12 bytes per
distinct row) up to `MAX_EXACT_HASHES` distinct rows; past that the counter keeps only hashes
below a threshold it halves as needed (hash sampling: every copy of a row is kept or dropped
together), so the duplicate share becomes an estimate from a sample of about `MAX_EXACT_HASHES`
distinct rows and memory stays flat.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlops.contract import Contract, FeatureType, ProblemType
from mlops.drift.psi import psi
from mlops.profile import MISSING, OTHER, CategoricalProfile, ColumnProfile, NumericProfile, profile_numeric
from mlops.validation.report import CheckName, CheckResult, DatasetProfile

MAX_EXACT_HASHES = 1 << 20
MAX_CATEGORIES = 10_000  # distinct values counted per categorical column; the rest go to OTHER
_FLUSH_HASHES = 1 << 19
_NULL_HASH = np.uint64(0x9E3779B97F4A7C15)
_PRIME = np.uint64(0x100000001B3)
_MAX_POWER = 4096
_CACHED_VALUES = 4096  # distinct values whose hashes a column keeps from one batch to the next
_COMPARE_EDGES = 32  # up to this many bin edges, bin by comparisons instead of a binary search
_POWERS = np.cumprod(np.full(_MAX_POWER, 0x5BD1E995, dtype=np.uint64), dtype=np.uint64)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: every input bit affects every output bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hash_strings(array: pa.Array) -> np.ndarray:
    """A 64-bit hash per string (vectorised over the Arrow buffers); nulls hash to one constant."""
    if len(array) == 0:
        return np.zeros(0, dtype=np.uint64)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != pa.string() and array.type != pa.large_string():
        array = pc.cast(array, pa.string())
    offset_type = np.int64 if array.type == pa.large_string() else np.int32
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[array.offset : array.offset + len(array) + 1]
    offsets = offsets.astype(np.int64)
    first, last = int(offsets[0]), int(offsets[-1])
    starts, ends = offsets[:-1] - first, offsets[1:] - first
    lengths = ends - starts
    data = np.frombuffer(data_buffer, dtype=np.uint8)[first:last] if data_buffer is not None else np.zeros(0, np.uint8)
    position = np.arange(last - first, dtype=np.int64) - np.repeat(starts, lengths)
    contribution = (data.astype(np.uint64) + np.uint64(1)) * _POWERS[position % _MAX_POWER]
    cumulative = np.concatenate((np.zeros(1, dtype=np.uint64), np.cumsum(contribution, dtype=np.uint64)))
    hashed = _mix((cumulative[ends] - cumulative[starts]) ^ (lengths.astype(np.uint64) * _PRIME))
    if array.null_count:
        hashed[np.asarray(pc.is_null(array))] = _NULL_HASH
    return hashed


def _decoded(values: pa.Array) -> pa.Array:
    """Dictionary-encoded text as plain text (the sample holds plain columns)."""
    return values.dictionary_decode() if pa.types.is_dictionary(values.type) else values


def _mix_into(x: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """`_mix` in place (`scratch`: a buffer of the same shape): no temporary arrays."""
    for shift, factor in ((30, np.uint64(0xBF58476D1CE4E5B9)), (27, np.uint64(0x94D049BB133111EB)), (31, None)):
        np.right_shift(x, np.uint64(shift), out=scratch)
        np.bitwise_xor(x, scratch, out=x)
        if factor is not None:
            np.multiply(x, factor, out=x)
    return x


def hash_numbers(values: np.ndarray, scratch: np.ndarray | None = None, *, finite: bool = False) -> np.ndarray:
    """A 64-bit hash per float64 (NaN and null alike, -0.0 as 0.0). `finite`: the caller knows
    there is no NaN; `scratch`: a uint64 buffer of the same length to work in."""
    values = values + 0.0  # -0.0 + 0.0 is 0.0: one bit pattern for zero
    missing = None if finite else np.isnan(values)
    hashed = values.view(np.uint64)  # `values` is this function's own copy: hash it in place
    hashed += np.uint64(0x632BE59BD9B4E019)
    _mix_into(hashed, np.empty_like(hashed) if scratch is None else scratch)
    if missing is not None:
        hashed[missing] = _NULL_HASH
    return hashed


class DuplicateCounter:
    """Counts repeated 64-bit hashes in bounded memory (exact up to `max_exact` distinct values)."""

    def __init__(self, max_exact: int = MAX_EXACT_HASHES) -> None:
        self.max_exact = max_exact
        self.rows = 0
        self.level = 0  # hashes kept: those below 2**(64 - level)
        self._hashes = np.zeros(0, dtype=np.uint64)
        self._counts = np.zeros(0, dtype=np.uint32)
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0

    @property
    def exact(self) -> bool:
        return self.level == 0

    def add(self, hashes: np.ndarray) -> None:
        self.rows += len(hashes)
        if self.level:
            hashes = hashes[hashes < np.uint64(1 << (64 - self.level))]
        self._pending.append(hashes)
        self._pending_rows += len(hashes)
        if self._pending_rows >= _FLUSH_HASHES:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        new, counts = np.unique(np.concatenate(self._pending), return_counts=True)
        self._pending, self._pending_rows = [], 0
        counts = counts.astype(np.uint32)
        # Merge the new hashes into the sorted ones: no sort of the whole set, fewer temporaries.
        at = np.searchsorted(self._hashes, new)
        found = at < len(self._hashes)
        found[found] = self._hashes[at[found]] == new[found]
        self._counts[at[found]] += counts[found]  # `new` is unique: no index repeats
        fresh = ~found
        if fresh.any():
            # the new hashes' places in the merged order (`at` is sorted: so is `new`)
            places = at[fresh] + np.arange(int(np.count_nonzero(fresh)))
            old = np.ones(len(self._hashes) + len(places), dtype=bool)
            old[places] = False
            hashes = np.empty(len(old), dtype=np.uint64)
            hashes[places], hashes[old] = new[fresh], self._hashes
            self._hashes = hashes
            merged_counts = np.empty(len(old), dtype=np.uint32)
            merged_counts[places], merged_counts[old] = counts[fresh], self._counts
            self._counts = merged_counts
        while len(self._hashes) > self.max_exact:
            self.level += 1
            keep = self._hashes < np.uint64(1 << (64 - self.level))
            self._hashes, self._counts = self._hashes[keep], self._counts[keep]

    def duplicates(self) -> tuple[float, float]:
        """(estimated number of duplicate rows, the share of rows kept to estimate it)."""
        self._flush()
        kept_rows = int(self._counts.sum())
        repeated = kept_rows - len(self._hashes)
        if self.exact:
            return float(repeated), 1.0
        share = repeated / kept_rows if kept_rows else 0.0
        return share * self.rows, kept_rows / max(self.rows, 1)


@dataclass
class _NumericBins:
    edges: np.ndarray
    counts: np.ndarray  # len(edges) + 1 bins, then nulls

    def add(self, values: np.ndarray, *, finite: bool = False) -> None:
        """Count `values` into the bins; `finite`: the caller knows all of them are finite."""
        finite_mask = None if finite else np.isfinite(values)
        finite_count = len(values) if finite_mask is None else int(np.count_nonzero(finite_mask))
        edges = len(self.edges)
        if edges <= _COMPARE_EDGES and (
            finite_mask is None or finite_count + int(np.count_nonzero(np.isnan(values))) == len(values)
        ):
            # No infinities: bin i holds the values in (edges[i-1], edges[i]], so the count of
            # bins 0..i is the count of values <= edges[i] (NaN compares false). A few compares
            # beat a binary search per value.
            below = [int(np.count_nonzero(values <= edge)) for edge in self.edges]
            self.counts[: edges + 1] += np.diff(np.asarray([0, *below, finite_count], dtype=np.int64))
        else:
            bucket = np.searchsorted(self.edges, values if finite_mask is None else values[finite_mask], side="left")
            self.counts[: edges + 1] += np.bincount(bucket, minlength=edges + 1)
        self.counts[-1] += len(values) - finite_count


@dataclass
class _Column:
    name: str
    kind: FeatureType  # NUMERIC: float64 values; else text (booleans as "true"/"false")
    reference: ColumnProfile | None
    bins: _NumericBins | None = None
    categories: Counter[str] = field(default_factory=Counter)
    outside: int = 0
    # categories: the hash and unseen flag of values seen in earlier batches (up to _CACHED_VALUES)
    known: dict[str | None, tuple[int, bool]] = field(default_factory=dict)


@dataclass(frozen=True)
class _ValueTable:
    """Per dictionary entry, then for a null: the value's hash and whether the reference lacks it
    (never for a null)."""

    hashes: np.ndarray
    unseen: np.ndarray


@dataclass
class Observed:
    """What the checker saw of one numeric column (exact, over every row)."""

    min: float | None
    max: float | None


class StatsCollector:
    """Accumulates the statistics of one dataset, batch by batch.

    `reference` holds the profiles to compare with (features by name, and the label); None or a
    column missing from it skips that comparison.
    """

    def __init__(self, contract: Contract, reference: DatasetProfile | None, *, seed: int = 0) -> None:
        self.contract = contract
        self.reference = reference
        self.rows = 0
        self.rows_outside = 0
        ref_features = reference.features if reference else {}
        self._columns = [_Column(f.name, f.type, ref_features.get(f.name)) for f in contract.features]
        target_kind = (
            FeatureType.CATEGORICAL if contract.problem_type is ProblemType.CLASSIFICATION else FeatureType.NUMERIC
        )
        self._label = _Column(contract.target.name, target_kind, reference.label if reference else None)
        for column in [*self._columns, self._label]:
            if isinstance(column.reference, NumericProfile) and column.kind is FeatureType.NUMERIC:
                edges = np.asarray(column.reference.edges, dtype=np.float64)
                column.bins = _NumericBins(edges, np.zeros(len(edges) + 2, dtype=np.int64))
        self.duplicates = DuplicateCounter()
        self.ids = {name: DuplicateCounter() for name in contract.data.id_columns}
        self.sample_rows = contract.data.sample_rows
        self._rng = np.random.default_rng(seed)
        self._sample: pa.Table | None = None
        self._sample_keys = np.zeros(0)
        self._threshold = 1.0  # candidates need a key below it, once the sample is full
        self._pending: list[pa.Table] = []
        self._pending_keys: list[np.ndarray] = []
        self._pending_rows = 0

    # -- per batch ---------------------------------------------------------------------------

    def add(self, parsed: dict[str, pa.Array], ids: dict[str, pa.Array], rows: int) -> None:
        """One batch: `parsed` holds every contract column (float64 or text); `ids` the raw id columns."""
        row_hash = np.zeros(rows, dtype=np.uint64)
        scratch = np.empty(rows, dtype=np.uint64)
        outside = np.zeros(rows, dtype=bool)
        for column in [*self._columns, self._label]:
            values = parsed[column.name]
            if column.kind is FeatureType.NUMERIC:
                numbers = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
                # NaN (a null) or an infinity shows in the min or the max: most batches have neither
                low, high = (float(numbers.min()), float(numbers.max())) if len(numbers) else (0.0, 0.0)
                finite = math.isfinite(low) and math.isfinite(high)
                hashed = hash_numbers(numbers, scratch, finite=finite)
                if column.bins is not None:
                    column.bins.add(numbers, finite=finite)
                ref = column.reference
                if column is not self._label and isinstance(ref, NumericProfile) and ref.min is not None:
                    ref_max = ref.max if ref.max is not None else math.inf
                    if not (finite and ref.min <= low and high <= ref_max):
                        with np.errstate(invalid="ignore"):
                            out = (numbers < ref.min) | (numbers > ref_max)
                        column.outside += int(out.sum())
                        outside |= out
            else:
                # categories (and booleans) arrive dictionary-encoded: hash, count and compare
                # the few distinct values once, then spread the answers to the rows by index
                encoded = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
                dictionary = encoded.dictionary
                if dictionary.type != pa.string():
                    dictionary = pc.cast(dictionary, pa.string())
                indices = encoded.indices
                if indices.null_count:
                    indices = pc.fill_null(indices, len(dictionary))
                indices = indices.to_numpy().astype(np.intp)  # numpy's native index type: faster take
                names = dictionary.to_pylist()
                table = self._value_table(column, names, dictionary)
                hashed = np.take(table.hashes, indices)
                counts = np.bincount(indices, minlength=len(dictionary) + 1)
                for name, count in zip([*names, MISSING], counts.tolist(), strict=True):
                    if count and (name in column.categories or len(column.categories) < MAX_CATEGORIES):
                        column.categories[name] += count
                    elif count:
                        column.categories[OTHER] += count
                ref = column.reference
                if column is not self._label and isinstance(ref, CategoricalProfile):
                    unseen = np.take(table.unseen, indices)
                    column.outside += int(np.count_nonzero(unseen))
                    outside |= unseen
            np.multiply(row_hash, _PRIME, out=row_hash)
            np.add(row_hash, hashed, out=row_hash)
            _mix_into(row_hash, scratch)
        self.duplicates.add(row_hash)
        for name, counter in self.ids.items():
            if name in ids:
                counter.add(hash_strings(pc.cast(ids[name], pa.string())))
        self.rows_outside += int(outside.sum())
        self.rows += rows
        self._add_sample(parsed, rows)

    def _value_table(self, column: _Column, names: list[str | None], dictionary: pa.Array) -> _ValueTable:
        """Hash and unseen flag of each dictionary entry (then of a null): looked up per value when
        every value was seen in an earlier batch (Parquet row groups order their dictionaries
        differently), computed over the dictionary otherwise."""
        known = column.known
        if all(name in known for name in names):
            hashes = np.asarray([*(known[n][0] for n in names), _NULL_HASH], dtype=np.uint64)
            return _ValueTable(hashes, np.asarray([*(known[n][1] for n in names), False]))
        hashes = np.concatenate((hash_strings(dictionary), [_NULL_HASH]))
        ref = column.reference
        if isinstance(ref, CategoricalProfile):
            seen = [c for c, share in ref.proportions.items() if share > 0 and c not in (OTHER, MISSING)]
            unseen = ~np.asarray(pc.is_in(dictionary, value_set=pa.array(seen, pa.string())))
        else:
            unseen = np.zeros(len(names), dtype=bool)
        # A null is not a value the reference never had: null rates are compared by the shift
        # checks (the MISSING share), as numeric nulls are. Counting it here held the very
        # dataset the reference was made from.
        unseen = np.concatenate((unseen, [False]))
        if len(known) + len(names) <= _CACHED_VALUES:
            known.update(zip(names, zip(hashes[:-1].tolist(), unseen[:-1].tolist(), strict=True), strict=True))
        return _ValueTable(hashes, unseen)

    def _add_sample(self, parsed: dict[str, pa.Array], rows: int) -> None:
        """Bottom-k by random key: rows whose key may be among the `sample_rows` smallest so far
        wait in `_pending`; they are cut down to the smallest keys only once enough piled up."""
        keys = self._rng.random(rows)
        full = len(self._sample_keys) >= self.sample_rows
        wanted = keys < self._threshold if full else np.ones(rows, dtype=bool)
        if rows > self.sample_rows:  # a row whose key is not among its own batch's smallest never makes it
            wanted &= keys <= np.partition(keys, self.sample_rows - 1)[self.sample_rows - 1]
        candidates = np.flatnonzero(wanted)
        if not len(candidates):
            return
        names = [*self.contract.feature_names, self.contract.target.name]
        taken = pa.RecordBatch.from_arrays([parsed[name] for name in names], names=names).take(pa.array(candidates))
        self._pending.append(pa.table([_decoded(column) for column in taken.columns], names=names))
        self._pending_keys.append(keys[candidates])
        self._pending_rows += len(candidates)
        if self._pending_rows >= self.sample_rows or not full:
            self._compact()

    def _compact(self) -> None:
        """Keep the `sample_rows` smallest keys, in key order (whatever the batch sizes were)."""
        if not self._pending:
            return
        tables = [self._sample, *self._pending] if self._sample is not None else self._pending
        table = pa.concat_tables(tables)
        all_keys = np.concatenate((self._sample_keys, *self._pending_keys))
        self._pending, self._pending_keys, self._pending_rows = [], [], 0
        if len(all_keys) > self.sample_rows:
            keep = np.argpartition(all_keys, self.sample_rows)[: self.sample_rows]
            keep = keep[np.argsort(all_keys[keep])]
        else:
            keep = np.argsort(all_keys)
        self._sample, self._sample_keys = table.take(pa.array(keep)).combine_chunks(), all_keys[keep]
        if len(self._sample_keys) >= self.sample_rows:
            self._threshold = float(self._sample_keys[-1])

    @property
    def sample(self) -> pa.Table | None:
        """Up to `data.sample_rows` rows drawn uniformly at random (parsed contract columns)."""
        self._compact()
        return self._sample

    # -- results -----------------------------------------------------------------------------

    def results(self) -> list[CheckResult]:
        """Duplicate rows and id uniqueness always; shift and range checks when there is a reference."""
        data = self.contract.data
        results = [self._duplicate_rows()]
        for name, counter in self.ids.items():
            repeated, kept = counter.duplicates()
            estimate = "" if counter.exact else f" (estimated from a {kept:.1%} hash sample)"
            results.append(
                CheckResult(
                    name=CheckName.UNIQUE_ID,
                    column=name,
                    passed=repeated == 0,
                    details=f"{repeated:.0f} repeated values{estimate}" if repeated else "every value unique",
                    value=repeated,
                    threshold=0,
                )
            )
        if self.reference is None or not self.rows:
            return results
        for column in self._columns:
            shift = self._shift(column, CheckName.FEATURE_SHIFT, data.max_feature_psi)
            if shift is not None:
                results.append(shift)
        label_shift = self._shift(self._label, CheckName.LABEL_SHIFT, data.max_label_psi)
        if label_shift is not None:
            results.append(label_shift)
        share = self.rows_outside / self.rows
        worst = sorted(((c.outside, c.name) for c in self._columns if c.outside), reverse=True)[:3]
        per_column = ", ".join(f"{name}: {count}" for count, name in worst)
        results.append(
            CheckResult(
                name=CheckName.OUT_OF_RANGE,
                passed=share <= data.max_out_of_range_fraction,
                details=f"{self.rows_outside} of {self.rows} rows ({share:.2%}) have a value the reference never "
                f"had" + (f" ({per_column})" if per_column else ""),
                failing_rows=self.rows_outside,
                value=share,
                threshold=data.max_out_of_range_fraction,
            )
        )
        return results

    def _duplicate_rows(self) -> CheckResult:
        limit = self.contract.data.max_duplicate_fraction
        repeated, kept = self.duplicates.duplicates()
        share = repeated / self.rows if self.rows else 0.0
        estimate = "" if self.duplicates.exact else f", estimated from a {kept:.1%} hash sample"
        return CheckResult(
            name=CheckName.DUPLICATE_ROWS,
            passed=share <= limit,
            details=f"{repeated:.0f} rows ({share:.2%}) repeat an earlier row exactly{estimate}",
            failing_rows=round(repeated),
            value=share,
            threshold=limit,
        )

    def _shift(self, column: _Column, check: CheckName, limit: float) -> CheckResult | None:
        ref = column.reference
        if ref is None:
            return None
        if isinstance(ref, NumericProfile):
            if column.bins is None or not column.bins.counts.sum():
                return None
            expected, counts = list(ref.proportions), column.bins.counts.tolist()
        else:
            known = [c for c in ref.proportions if c not in (OTHER, MISSING)]
            counted = dict.fromkeys([*known, OTHER, MISSING], 0)
            for value, count in column.categories.items():
                counted[value if value in counted else OTHER] += count
            expected, counts = [ref.proportions.get(c, 0.0) for c in counted], list(counted.values())
        total = sum(counts)
        if not total:
            return None
        score = psi(expected, counts)
        allowance = sampling_allowance(len(expected), total)
        return CheckResult(
            name=check,
            column=column.name,
            passed=score <= limit + allowance,
            details=f"PSI {score:.4f} (limit {limit} + {allowance:.4f} for {total} rows of sampling noise)",
            value=score,
            threshold=limit + allowance,
        )

    # -- this dataset's profile --------------------------------------------------------------

    def profile(self, observed: dict[str, Observed]) -> DatasetProfile:
        """This dataset as the reference for the next one: categories and labels counted exactly,
        numeric bins from the random sample, numeric min/max exact."""
        self._compact()
        features: dict[str, ColumnProfile] = {}
        for column in self._columns:
            features[column.name] = self._column_profile(column, observed.get(column.name))
        return DatasetProfile(
            rows=self.rows,
            features=features,
            label=self._column_profile(self._label, observed.get(self._label.name)),
        )

    def _column_profile(self, column: _Column, observed: Observed | None) -> ColumnProfile:
        if column.kind is FeatureType.NUMERIC:
            values = (
                np.asarray(self._sample.column(column.name).to_numpy(zero_copy_only=False), dtype=np.float64)
                if self._sample is not None
                else np.zeros(0)
            )
            profile = profile_numeric(values)
            if observed is not None:
                profile = profile.model_copy(update={"min": observed.min, "max": observed.max})
            return profile
        total = max(sum(column.categories.values()), 1)
        proportions = {name: count / total for name, count in sorted(column.categories.items())}
        proportions.setdefault(OTHER, 0.0)
        proportions.setdefault(MISSING, 0.0)
        return CategoricalProfile(proportions=proportions, count=sum(column.categories.values()))


def sampling_allowance(bins: int, rows: int) -> float:
    """How far PSI of `rows` rows drawn from the reference itself can go by chance.

    For small differences PSI * rows is about chi-squared with bins - 1 degrees of freedom; the
    mean plus four standard deviations of that, over rows, is rarely exceeded by a clean sample.
    """
    freedom = max(bins - 1, 1)
    return (freedom + 4 * math.sqrt(2 * freedom)) / max(rows, 1)
