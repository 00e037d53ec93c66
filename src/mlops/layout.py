"""Where things live in the buckets. One place, so every stage agrees on the keys.

A dataset key is accepted by ONE rule (`dataset_key_problem`), which validation, training and
review all call: a key validation records as accepted is a key training will read.
Every key derived here fits S3's 1,024-byte limit (a long name is shortened, with a hash suffix).

Data bucket:      datasets/<model>/<file>      uploads (the only prefix that triggers validation)
                  contracts/<model>.json       registered contracts
                  quarantine/<model>/<file>    datasets that failed validation
                  quarantine/_unassigned/<file>~<hash>  ... whose key broke the dataset-key rule
                  reports/<model>/<id>.json    validation reports
                  feedback/<model>/<file>      label files (CSV or Parquet; mlops.feedback_files)
                  reports/<model>/feedback/<id>.json  what became of each label file's rows
                  quarantine/_feedback/<model>/<file>  label files that could not be read
                  models/<model>/incoming/<file>.onnx   models built elsewhere, dropped for import
                  models/<model>/imports/<import id>.json  an import's report (checks, scores)
                  models/<model>/requests/<upload id>.json  who asked the models API for an upload URL
                  batch/<model>/[v<N>/]<file>  files to score (CSV or Parquet; v<N>/ pins a version)
                  predictions/<model>/<job id>/part-<n>.<csv|parquet>  scored rows (mlops.batch)
                  predictions/<model>/<job id>/rejects/part-<n>.csv  refused rows: row number, reason
                  predictions/<model>/<job id>/summary.json  the job's report, written once at the end
                  misplaced/<key>.json         a data file uploaded outside datasets/: where it should go
Artifact bucket:  models/<model>/<sha256>.onnx content-addressed artifacts
                  baselines/<model>/<sha256>.json training profile for drift
                  captures/<model>/<yyyy>/<mm>/<dd>/<hh>/<yyyymmddThhmmss>-<id>.json  sampled inference traffic
                  (columns, `mlops.captures`; objects written before end in .jsonl)
                  labels/<model>/<yyyy>/<mm>/<dd>/<hh>/<yyyymmddThhmm>-<id>.json  ground truth by the
                  minute its predictions were answered (columns, `mlops.labels`)
                  monitoring/<model>/state.json  a model's drift progress (mlops.drift.monitor)
                  monitoring/<model>/reports/<report id>.json  a drift run's result (`.html`: its page);
                  the report id is the run's UTC time, `YYYYMMDDTHHMMSSffffffZ`, so ids sort by time
                  monitoring/<model>/quality-state.json  a model's live-quality progress (mlops.quality)
                  monitoring/<model>/quality/<report id>.json  a live-quality run's result (same ids)
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import unicodedata
from datetime import UTC, datetime

from mlops.captures import CAPTURE_SUFFIX  # stdlib only
from mlops.contract_rules import is_valid_model_name  # stdlib only: predict imports layout, not pydantic
from mlops.labels import LABEL_SUFFIX  # stdlib only

DATASETS_PREFIX = "datasets/"
CONTRACTS_PREFIX = "contracts/"
QUARANTINE_PREFIX = "quarantine/"
REPORTS_PREFIX = "reports/"
MODELS_PREFIX = "models/"
BASELINES_PREFIX = "baselines/"
CAPTURES_PREFIX = "captures/"
LEGACY_CAPTURE_SUFFIX = ".jsonl"  # row-per-line capture objects written before the columnar format
MONITORING_PREFIX = "monitoring/"
LABELS_PREFIX = "labels/"
FEEDBACK_PREFIX = "feedback/"
MISPLACED_PREFIX = "misplaced/"  # notices of data files uploaded outside datasets/ (mlops.misplaced)
# label files that cannot be read; "_" keeps them apart from every model's quarantined datasets
FEEDBACK_QUARANTINE_PREFIX = f"{QUARANTINE_PREFIX}_feedback/"
DRIFT_REPORT_ID_PATTERN = "^[0-9]{8}T[0-9]{12}Z$"
_DRIFT_REPORT_ID = re.compile(DRIFT_REPORT_ID_PATTERN)
# Reports and quarantined copies of keys that name no (valid) model; model names cannot start with "_".
UNASSIGNED_MODEL = "_unassigned"

DATASET_SUFFIXES = (".csv", ".csv.gz", ".parquet")
MAX_KEY_BYTES = 1024  # S3's limit on an object key, in UTF-8 bytes (moto does not enforce it)
# Unicode categories never allowed in a dataset key: control (C0, DEL, C1), format (bidi overrides,
# zero-width), surrogates, private use, unassigned, and line/paragraph separators.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_HASH_CHARS = 16


def dataset_suffix(key: str) -> str | None:
    """The supported dataset suffix `key` ends with (case-insensitive), or None."""
    lowered = key.lower()
    return next(
        (suffix for suffix in sorted(DATASET_SUFFIXES, key=len, reverse=True) if lowered.endswith(suffix)), None
    )


def dataset_key_problem(key: str) -> str | None:
    """Why `key` is not a dataset key `datasets/<model>/[<folder>/...]<file>`, or None if it is.

    The one rule every stage applies (validate, train, review). Rejects keys outside datasets/,
    `.`/`..` or empty segments, backslashes, control and invisible characters, an invalid model
    name, keys over S3's 1,024 bytes and an unsupported file type.
    """
    problem = _path_problem(key)
    if problem is None and dataset_suffix(key.rsplit("/", 1)[-1]) is None:
        problem = f"unsupported file type {key.rsplit('/', 1)[-1]!r}: expected .csv, .csv.gz or .parquet"
    return problem


def _path_problem(key: str, prefix: str = DATASETS_PREFIX) -> str | None:
    """`dataset_key_problem` but for the file type: whether the key safely names a model's upload
    under `prefix` (datasets/, or feedback/ for label files)."""
    if not key.startswith(prefix):
        return f"the key is not under {prefix}"
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return f"the key is longer than {MAX_KEY_BYTES} bytes"
    bad = next((c for c in key if unicodedata.category(c) in _FORBIDDEN_CATEGORIES), None)
    if bad is not None:
        return f"the key contains the control or invisible character U+{ord(bad):04X}"
    if "\\" in key:
        return "the key contains a backslash (a path separator elsewhere)"
    parts = key.split("/")
    if len(parts) < 3:
        return f"the key is not {prefix}<model>/<file>"
    if any(part == "" for part in parts):
        return "the key has an empty path segment ('//' or a trailing '/')"
    if any(part in (".", "..") for part in parts):
        return "the key has a '.' or '..' path segment"
    if any(part != part.strip() for part in parts):
        return "a path segment of the key starts or ends with whitespace"
    if not is_valid_model_name(parts[1]):
        return f"{parts[1]!r} is not a valid model name (lowercase letters, digits and '-')"
    return None


def model_of_dataset_key(key: str) -> str | None:
    """`datasets/<model>/<file>` -> `<model>`: the model an upload belongs to (whatever its file
    type); None unless the key's path is sound (no '..', controls, empty segments, bad name)."""
    return None if _path_problem(key) is not None else key.split("/")[1]


def misplaced_report_key(key: str) -> str:
    """The notice of a data file uploaded as `key` outside datasets/ (bounded, hashed when long)."""
    return _bounded(MISPLACED_PREFIX, key, key, suffix=".json")


def contract_key(model: str) -> str:
    return f"{CONTRACTS_PREFIX}{model}.json"


def quarantine_key(dataset_key: str) -> str:
    """Where a dataset version is quarantined: `quarantine/<key after datasets/>` for a key whose
    path is sound and fits S3's limit. Otherwise a bounded key ending in a hash of the full key (distinct keys
    never collide); a key that breaks the dataset-key rule keeps only a sanitised file name, under
    `quarantine/_unassigned/`, so no '..', control character or foreign prefix is carried over."""
    if _path_problem(dataset_key) is None:
        plain = QUARANTINE_PREFIX + dataset_key.removeprefix(DATASETS_PREFIX)
        if _fits(plain):
            return plain
        model, rest = dataset_key.split("/", 2)[1:]
        return _bounded(f"{QUARANTINE_PREFIX}{model}/", rest, dataset_key, always_hash=True)
    file_name = next((part for part in reversed(dataset_key.split("/")) if part), "")
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in file_name)
    return _bounded(f"{QUARANTINE_PREFIX}{UNASSIGNED_MODEL}/", safe, dataset_key, always_hash=True)


def report_key(model: str, dataset_id: str) -> str:
    return _bounded(f"{REPORTS_PREFIX}{model}/", dataset_id, dataset_id, suffix=".json")


def summary_key(model: str, dataset_id: str) -> str:
    """The short human summary beside the report."""
    return _bounded(f"{REPORTS_PREFIX}{model}/", dataset_id, dataset_id, suffix=".txt")


def _fits(key: str) -> bool:
    return len(key.encode("utf-8", "surrogatepass")) <= MAX_KEY_BYTES


def _bounded(prefix: str, name: str, identity: str, *, suffix: str = "", always_hash: bool = False) -> str:
    """`prefix + name + suffix` if it fits S3's limit (and no hash is asked for), else `name` cut
    on a character boundary plus `~<hash of identity>`, keeping a dataset suffix so the file type
    still shows."""
    whole = prefix + name + suffix
    if _fits(whole) and not always_hash:
        return whole
    kept_suffix = suffix or dataset_suffix(name) or ""
    stem = name if suffix else name[: len(name) - len(kept_suffix)]
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    tail = f"~{digest}{kept_suffix}"
    room = MAX_KEY_BYTES - len((prefix + tail).encode("utf-8", "surrogatepass"))
    cut = stem.encode("utf-8", "surrogatepass")[: max(room, 0)].decode("utf-8", "ignore")
    return prefix + cut + tail


INCOMING_FOLDER = "incoming"
IMPORTS_FOLDER = "imports"
REQUESTS_FOLDER = "requests"
IMPORT_SUFFIX = ".onnx"


def incoming_key_problem(key: str) -> str | None:
    """Why `key` (data bucket) is not an import drop `models/<model>/incoming/<file>.onnx`, or None."""
    if not key.startswith(MODELS_PREFIX):
        return f"the key is not under {MODELS_PREFIX}"
    if not _fits(key):
        return f"the key is longer than {MAX_KEY_BYTES} bytes"
    bad = next((c for c in key if unicodedata.category(c) in _FORBIDDEN_CATEGORIES), None)
    if bad is not None:
        return f"the key contains the control or invisible character U+{ord(bad):04X}"
    parts = key.split("/")
    if len(parts) != 4 or parts[2] != INCOMING_FOLDER:
        return f"the key is not {MODELS_PREFIX}<model>/{INCOMING_FOLDER}/<file>{IMPORT_SUFFIX}"
    if not is_valid_model_name(parts[1]):
        return f"{parts[1]!r} is not a valid model name (lowercase letters, digits and '-')"
    name = parts[3]
    if "\\" in name or name.strip() != name or name in ("", IMPORT_SUFFIX) or not name.endswith(IMPORT_SUFFIX):
        return f"the file name {name!r} is not a plain <name>{IMPORT_SUFFIX}"
    return None


def model_of_incoming_key(key: str) -> str | None:
    """`models/<model>/incoming/<file>.onnx` -> `<model>`; None for any other key."""
    return None if incoming_key_problem(key) is not None else key.split("/")[1]


def incoming_key(model: str, file_name: str) -> str:
    """Where an import of `model` is dropped (data bucket)."""
    return f"{MODELS_PREFIX}{model}/{INCOMING_FOLDER}/{file_name}"


def import_id(key: str, version_id: str | None) -> str:
    """An import's id: the dropped file's name and 16 hex of its key and version (as dataset ids)."""
    digest = hashlib.sha256(f"{key}\n{version_id or 'null'}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"{key.rsplit('/', 1)[-1].removesuffix(IMPORT_SUFFIX)}-{digest[:_HASH_CHARS]}"


def import_report_key(model: str, the_import_id: str) -> str:
    """The report of one import (data bucket)."""
    return _bounded(f"{MODELS_PREFIX}{model}/{IMPORTS_FOLDER}/", the_import_id, the_import_id, suffix=".json")


def import_request_key(model: str, upload_id: str) -> str:
    """The models API's record of an upload URL for `models/<model>/incoming/<upload id>.onnx` (data bucket)."""
    return f"{MODELS_PREFIX}{model}/{REQUESTS_FOLDER}/{upload_id}.json"


def artifact_key(model: str, sha256: str) -> str:
    return f"{MODELS_PREFIX}{model}/{sha256}.onnx"


def baseline_key(model: str, artifact_sha256: str) -> str:
    return f"{BASELINES_PREFIX}{model}/{artifact_sha256}.json"


def captures_prefix(model: str) -> str:
    return f"{CAPTURES_PREFIX}{model}/"


def capture_key(model: str, at: datetime, batch_id: str) -> str:
    """Where a capture object flushed at `at` lives: keys sort by flush time within a model."""
    return f"{captures_time_key(model, at)}-{batch_id}{CAPTURE_SUFFIX}"


def captures_time_key(model: str, at: datetime) -> str:
    """The part of a capture key up to its flush second: every key flushed at or after `at` sorts
    after it (a listing's `start_after` bound)."""
    return posixpath.join(captures_prefix(model), at.strftime("%Y/%m/%d/%H"), f"{at:%Y%m%dT%H%M%S}")


def capture_flushed_at(key: str) -> datetime | None:
    """The flush time in a capture key (either format), None for a key that is no capture object."""
    name = key.rsplit("/", 1)[-1]
    if not name.endswith((CAPTURE_SUFFIX, LEGACY_CAPTURE_SUFFIX)):
        return None
    try:
        return datetime.strptime(name.split("-", 1)[0], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def drift_reports_prefix(model: str) -> str:
    return f"{MONITORING_PREFIX}{model}/reports/"


def drift_report_id(at: datetime) -> str:
    """A drift run's report id: its UTC time to the microsecond (ids sort as times do)."""
    return f"{at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}"


def is_drift_report_id(text: str) -> bool:
    return _DRIFT_REPORT_ID.fullmatch(text) is not None


def drift_result_key(model: str, report_id: str) -> str:
    """The drift result (JSON) of one run."""
    return f"{drift_reports_prefix(model)}{report_id}.json"


def drift_page_key(model: str, report_id: str) -> str:
    """The HTML report page beside the result."""
    return f"{drift_reports_prefix(model)}{report_id}.html"


def labels_prefix(model: str) -> str:
    return f"{LABELS_PREFIX}{model}/"


def labels_minute_key(model: str, minute: datetime) -> str:
    """The part of a label key up to its prediction minute: a minute's objects share it."""
    return posixpath.join(labels_prefix(model), minute.strftime("%Y/%m/%d/%H"), f"{minute:%Y%m%dT%H%M}")


def label_key(model: str, minute: datetime, batch_id: str) -> str:
    """Where labels of predictions answered in `minute` (UTC, `mlops.labels.prediction_minute`) live."""
    return f"{labels_minute_key(model, minute)}-{batch_id}{LABEL_SUFFIX}"


def feedback_key_problem(key: str) -> str | None:
    """Why `key` is not a label file key `feedback/<model>/[<folder>/...]<file>` (.csv, .csv.gz or
    .parquet), or None: the dataset-key rule under feedback/."""
    problem = _path_problem(key, FEEDBACK_PREFIX)
    if problem is None and dataset_suffix(key.rsplit("/", 1)[-1]) is None:
        problem = f"unsupported file type {key.rsplit('/', 1)[-1]!r}: expected .csv, .csv.gz or .parquet"
    return problem


def model_of_feedback_key(key: str) -> str | None:
    """`feedback/<model>/<file>` -> `<model>`; None unless the key's path is sound."""
    return None if _path_problem(key, FEEDBACK_PREFIX) is not None else key.split("/")[1]


def feedback_report_key(model: str, file_id: str) -> str:
    return _bounded(f"{REPORTS_PREFIX}{model}/feedback/", file_id, file_id, suffix=".json")


def feedback_quarantine_key(key: str) -> str:
    """Where an unreadable label file goes: `quarantine/_feedback/<key after feedback/>` (bounded, a
    hash suffix when long); a key whose path is unsound keeps only a sanitised name, under
    `quarantine/_feedback/_unassigned/`."""
    if _path_problem(key, FEEDBACK_PREFIX) is None:
        plain = FEEDBACK_QUARANTINE_PREFIX + key.removeprefix(FEEDBACK_PREFIX)
        if _fits(plain):
            return plain
        model, rest = key.split("/", 2)[1:]
        return _bounded(f"{FEEDBACK_QUARANTINE_PREFIX}{model}/", rest, key, always_hash=True)
    file_name = next((part for part in reversed(key.split("/")) if part), "")
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in file_name)
    return _bounded(f"{FEEDBACK_QUARANTINE_PREFIX}{UNASSIGNED_MODEL}/", safe, key, always_hash=True)


def quality_results_prefix(model: str) -> str:
    return f"{MONITORING_PREFIX}{model}/quality/"


def quality_result_key(model: str, report_id: str) -> str:
    """The live-quality result of one run (ids as drift report ids: `drift_report_id`)."""
    return f"{quality_results_prefix(model)}{report_id}.json"


def quality_state_key(model: str) -> str:
    return f"{MONITORING_PREFIX}{model}/quality-state.json"


RETRAIN_FILE_PREFIX = "retrain-"


def retrain_files_prefix(model: str) -> str:
    """Every training set a retraining of `model` writes starts with this (`retrain_dataset_key`)."""
    return f"{DATASETS_PREFIX}{model}/{RETRAIN_FILE_PREFIX}"


def retrain_dataset_key(model: str, at: datetime, trigger_id: str) -> str:
    """Where a retraining writes its training set: under datasets/, so the dataset gate judges it like
    an upload. The trigger's id is hashed into the name: a redelivered trigger finds its own file."""
    digest = hashlib.sha256(trigger_id.encode()).hexdigest()[:8]
    return f"{retrain_files_prefix(model)}{at:%Y%m%dT%H%M%S}Z-{digest}.parquet"


BATCH_PREFIX = "batch/"
PREDICTIONS_PREFIX = "predictions/"
BATCH_SUFFIXES = (".csv", ".parquet")  # byte ranges split a CSV, row groups a Parquet file; gzip cannot be split
_PINNED_FOLDER = re.compile(r"^v([1-9][0-9]{0,8})$")
_VERSION_LIKE_FOLDER = re.compile(r"^v[0-9]+$")


def batch_key_problem(key: str) -> str | None:
    """Why `key` is not a batch file `batch/<model>/[v<N>/][<folder>/...]<file>.(csv|parquet)`, or None."""
    problem = _path_problem(key, BATCH_PREFIX)
    if problem is None and not key.lower().endswith(BATCH_SUFFIXES):
        problem = f"unsupported file type {key.rsplit('/', 1)[-1]!r}: expected .csv or .parquet"
    parts = key.split("/")
    folder = parts[2] if len(parts) > 3 else ""
    # a version-like folder that names no version is refused, never a silent fallback to production
    if problem is None and _VERSION_LIKE_FOLDER.fullmatch(folder) and not _PINNED_FOLDER.fullmatch(folder):
        problem = f"folder {folder!r} is not a valid version: expected v1 to v999999999 without leading zeros"
    return problem


def batch_target(key: str) -> tuple[str, int | None]:
    """`batch/<model>/[v<N>/]...` -> (model, pinned version or None: production). Call after
    `batch_key_problem` found nothing."""
    parts = key.split("/")
    pinned = _PINNED_FOLDER.fullmatch(parts[2]) if len(parts) > 3 else None
    return parts[1], int(pinned.group(1)) if pinned else None


def batch_job_id(key: str, version_id: str | None) -> str:
    """A batch job's id: the file's stem and 16 hex of its key and object version (a new upload to
    the same key is a new job; a repeated event for the same version is the same job)."""
    digest = hashlib.sha256(f"{key}\n{version_id or 'null'}".encode("utf-8", "surrogatepass")).hexdigest()
    stem = key.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in stem)[:100]
    return f"{safe}-{digest[:_HASH_CHARS]}"


def predictions_prefix(model: str, job_id: str) -> str:
    return f"{PREDICTIONS_PREFIX}{model}/{job_id}/"


def batch_output_key(model: str, job_id: str, part: int, suffix: str) -> str:
    """One part's scored rows (`suffix` mirrors the input: .csv or .parquet)."""
    return f"{predictions_prefix(model, job_id)}part-{part:05d}{suffix}"


def batch_rejects_key(model: str, job_id: str, part: int) -> str:
    return f"{predictions_prefix(model, job_id)}rejects/part-{part:05d}.csv"


def batch_summary_key(model: str, job_id: str) -> str:
    return f"{predictions_prefix(model, job_id)}summary.json"
