"""Labels joined to the captured predictions they belong to, in memory that does not grow with
the labelled rows.

Which label objects a run reads. A label object (`mlops.labels`) is keyed by its predictions'
minute and, within it, by arrival (`new_label_batch_id`). An object is *ready* at
`max(arrival + settle_seconds, minute end + capture_lag_seconds)`: by then its PUT has landed
and so have the captures of its minute. A run at `now` lists the label keys of the contract's
feedback horizon (labels of older predictions are refused at the door) and reads each ready object
no earlier run read: ready after the previous run's time, or ready before it but missing from the
keys that run remembered (`recent_keys`: the ready keys of the last `lookback_seconds`; one that
lands that late is read now and counted as late). The state is that time and those keys, so it
is bounded by the look-back, and a late label for a minute days old is found by its arrival.

The repeated-label rule. A minute with a new object has all its ready objects read, and
`mlops.labels.merge_labels` (first received counts) decides over the old ones and over old and
new: only predictions that had no counted label before are joined now; the duplicates and
conflicts the new objects brought are counted.

The join. Minutes come in order; a minute's labels wait in a dict while the capture objects
that can hold its predictions are read in flush order (flushed from the minute's start to
`capture_lag_seconds` after its end), each row looked up by prediction id; when the reader has
passed that bound, the minute's labels still waiting are unmatched (never issued, or not
sampled). A gap between labelled minutes restarts the capture listing after the gap, so old
labels cost a few objects, not the traffic since. Memory: the labels of the minutes open at
once (about `capture_lag_seconds` of labels) plus `read_threads * 2` capture objects.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mlops.captures import decode_batch
from mlops.errors import MlopsError
from mlops.labels import LABEL_SUFFIX, LabelBatch, decode_labels, merge_labels, prediction_second
from mlops.layout import capture_flushed_at, captures_prefix, captures_time_key, labels_minute_key, labels_prefix
from mlops.ports import ObjectStore

MINUTE = timedelta(minutes=1)


class OutOfTimeError(MlopsError):
    """A model's join did not finish within its share of the invocation: nothing of it is saved,
    and the next run reads the same labels again."""


@dataclass(frozen=True)
class JoinLimits:
    """How a run finds labels and captures. `settle_seconds` and `capture_lag_seconds` come from
    QualitySettings (their one home)."""

    settle_seconds: float = 120.0  # a label object stamped this long ago has landed
    # a capture object holding a prediction is flushed at most this long after its minute ends
    # (predict flushes a buffer at 60 s or 500 rows, and on shutdown)
    capture_lag_seconds: float = 600.0
    lookback_seconds: float = 900.0  # ready keys remembered this long: one landing later is not found
    read_threads: int = 8


class LabelProgress(BaseModel):
    """Where a model's label reading stands (part of its quality state)."""

    model_config = ConfigDict(frozen=True)

    through: datetime | None = None  # the previous run's time: objects ready by then were read
    recent_keys: list[str] = Field(default_factory=list)  # ready within the look-back before `through`


@dataclass
class JoinCounts:
    label_objects_read: int = 0
    late_label_objects: int = 0  # landed after a run had passed them (inside the look-back): read now
    labels: int = 0  # labels that newly count (first received for their prediction)
    duplicates: int = 0  # the same label again for a labelled prediction (absorbed)
    conflicts: int = 0  # another label for a labelled prediction (the first one counts)
    joined: int = 0
    unmatched: int = 0  # no capture holds the prediction: never issued, or not sampled
    capture_objects_read: int = 0


@dataclass
class JoinedRows:
    """Labels joined to their captured predictions, as columns (one capture object's matches)."""

    versions: list[int]
    answered: list[int]  # epoch second of each prediction (from its id)
    labels: list[Any]
    outputs: dict[str, list[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)


def label_key_times(key: str) -> tuple[datetime, datetime] | None:
    """(prediction minute, arrival) of a label key, None for a key that is no label object."""
    name = key.rsplit("/", 1)[-1]
    if not name.endswith(LABEL_SUFFIX):
        return None
    parts = name.split("-")
    if len(parts) < 3:
        return None
    try:
        minute = datetime.strptime(parts[0], "%Y%m%dT%H%M").replace(tzinfo=UTC)
        arrival = datetime.strptime(parts[1], "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
    except ValueError:
        return None
    return minute, arrival


class LabelScan:
    """One run's pass over a model's label objects: the minutes with new labels, in order."""

    def __init__(
        self,
        store: ObjectStore,
        bucket: str,
        model: str,
        progress: LabelProgress,
        *,
        now: datetime,
        horizon: timedelta,
        limits: JoinLimits,
        counts: JoinCounts,
    ) -> None:
        self.store, self.bucket, self.model = store, bucket, model
        self.previous = progress.through
        self.remembered = set(progress.recent_keys)
        self.now, self.horizon, self.limits, self.counts = now, horizon, limits, counts
        self.recent: list[str] = []

    def ready_at(self, minute: datetime, arrival: datetime) -> datetime:
        return max(
            arrival + timedelta(seconds=self.limits.settle_seconds),
            minute + MINUTE + timedelta(seconds=self.limits.capture_lag_seconds),
        )

    def _read_before(self, key: str, ready: datetime) -> bool:
        """Whether an earlier run read this (ready) key."""
        if self.previous is None or ready > self.previous:
            return False
        return key in self.remembered or ready <= self.previous - timedelta(seconds=self.limits.lookback_seconds)

    def minutes(self) -> Iterator[tuple[datetime, dict[str, Any]]]:
        """(minute, prediction id -> label) for each minute whose new objects brought labels that
        count; labels of predictions that already had one are duplicates or conflicts."""
        oldest = (self.now - self.horizon).replace(second=0, microsecond=0) - MINUTE
        start = labels_minute_key(self.model, oldest)
        minute_keys: list[tuple[str, bool]] = []
        current: datetime | None = None
        for info in self.store.list(self.bucket, labels_prefix(self.model), start_after=start):
            times = label_key_times(info.key)
            if times is None:
                continue
            minute, arrival = times
            ready = self.ready_at(minute, arrival)
            if minute != current:
                if current is not None and minute_keys:
                    yield from self._minute(current, minute_keys)
                current, minute_keys = minute, []
            if ready > self.now:
                if minute + MINUTE + timedelta(seconds=self.limits.capture_lag_seconds) > self.now:
                    break  # this minute's captures may still land; later minutes' too
                continue  # arrived too recently: the next run reads it
            if ready > self.now - timedelta(seconds=self.limits.lookback_seconds):
                self.recent.append(info.key)
            minute_keys.append((info.key, self._read_before(info.key, ready)))
        if current is not None and minute_keys:
            yield from self._minute(current, minute_keys)

    def _minute(self, minute: datetime, keys: list[tuple[str, bool]]) -> Iterator[tuple[datetime, dict[str, Any]]]:
        fresh = [key for key, read in keys if not read]
        if not fresh:
            return
        self.counts.late_label_objects += sum(
            1 for key in fresh if self.previous is not None and self._ready_of(key) <= self.previous
        )
        old = [key for key, read in keys if read]
        batches = dict(self._fetch([key for key, _ in keys]))
        self.counts.label_objects_read += len(fresh)
        before = merge_labels(batches[key] for key in old)
        after = merge_labels(batches[key] for key, _ in keys)
        self.counts.duplicates += after.duplicates - before.duplicates
        self.counts.conflicts += after.conflicts - before.conflicts
        counted = {pid: label for pid, label in after.labels.items() if pid not in before.labels}
        self.counts.labels += len(counted)
        if counted:
            yield minute, counted

    def _ready_of(self, key: str) -> datetime:
        times = label_key_times(key)
        assert times is not None  # only label keys get here
        return self.ready_at(*times)

    def _fetch(self, keys: list[str]) -> Iterator[tuple[str, LabelBatch]]:
        with ThreadPoolExecutor(max_workers=max(1, min(self.limits.read_threads, len(keys)))) as pool:
            for key, data in zip(keys, pool.map(lambda k: self.store.get_bytes(self.bucket, k), keys), strict=True):
                yield key, decode_labels(data)

    def progress(self) -> LabelProgress:
        """The state after this run (call once the minutes were consumed)."""
        return LabelProgress(through=self.now, recent_keys=sorted(self.recent))


class CaptureJoin:
    """Joins minutes of labels to capture rows read in flush order; matches go to `sink`."""

    def __init__(
        self,
        store: ObjectStore,
        bucket: str,
        model: str,
        *,
        limits: JoinLimits,
        counts: JoinCounts,
        sink: Callable[[JoinedRows], None],
        out_of_time: Callable[[], bool] = lambda: False,
    ) -> None:
        self.store, self.bucket, self.model = store, bucket, model
        self.limits, self.counts, self.sink = limits, counts, sink
        self.out_of_time = out_of_time
        self.lag = MINUTE + timedelta(seconds=limits.capture_lag_seconds)
        self.waiting: dict[str, Any] = {}  # prediction id -> label, of the open minutes
        self.open: deque[tuple[datetime, list[str]]] = deque()
        self.listing: Iterator[str] | None = None
        self.next_key: str | None = None

    def run(self, minutes: Iterator[tuple[datetime, dict[str, Any]]]) -> None:
        for minute, labels in minutes:
            if self.out_of_time():
                raise OutOfTimeError(
                    f"{self.model}: the join was still at prediction minute {minute:%Y-%m-%d %H:%M} when its share "
                    "of the run ended; its labels are read again next run"
                )
            if self.open:
                self._advance(min(minute - timedelta(seconds=1), self.open[-1][0] + self.lag))
            if not self.open:
                self._restart(minute - timedelta(seconds=1))  # the captures flushed since the last minute hold nothing
            self.waiting.update(labels)
            self.open.append((minute, list(labels)))
        if self.open:
            self._advance(self.open[-1][0] + self.lag)

    def _restart(self, at: datetime) -> None:
        self.listing = (
            info.key
            for info in self.store.list(
                self.bucket, captures_prefix(self.model), start_after=captures_time_key(self.model, at)
            )
        )
        self.next_key = None

    def _keys_until(self, bound: datetime) -> Iterator[str]:
        """Capture keys flushed at or before `bound`, in order (the first later one is kept)."""
        while True:
            if self.next_key is None:
                self.next_key = next(self.listing, None) if self.listing is not None else None
                if self.next_key is None:
                    return
            flushed = capture_flushed_at(self.next_key)
            if flushed is None:
                self.next_key = None
                continue
            if flushed > bound:
                return
            key, self.next_key = self.next_key, None
            yield key

    def _advance(self, bound: datetime) -> None:
        """Read the captures flushed up to `bound`; close the minutes whose captures are all read."""
        threads = max(1, self.limits.read_threads)
        keys = self._keys_until(bound)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            while chunk := [key for _, key in zip(range(threads * 2), keys, strict=False)]:
                for data in pool.map(lambda k: self.store.get_bytes(self.bucket, k), chunk):
                    self._match(data)
                    del data
        while self.open and self.open[0][0] + self.lag <= bound:
            _, ids = self.open.popleft()
            for pid in ids:
                if self.waiting.pop(pid, _MISSING) is not _MISSING:
                    self.counts.unmatched += 1

    def _match(self, data: bytes) -> None:
        self.counts.capture_objects_read += 1
        batch = decode_batch(data)
        waiting = self.waiting
        rows = [row for row, pid in enumerate(batch.prediction_ids) if pid in waiting]
        if not rows:
            return
        ids = batch.prediction_ids
        joined = JoinedRows(
            versions=[batch.versions[row] for row in rows],
            answered=[prediction_second(ids[row]) for row in rows],
            labels=[waiting.pop(ids[row]) for row in rows],
            outputs={name: [column[row] for row in rows] for name, column in batch.outputs.items()},
        )
        self.counts.joined += len(joined)
        self.sink(joined)


_MISSING = object()
