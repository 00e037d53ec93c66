"""DriftResults on S3: the drift function's stored results under `monitoring/<model>/reports/`
(or, given `prefix_of`/`key_of`, any runs stored the same way: live quality under
`monitoring/<model>/quality/`).

S3 lists keys oldest first only. Report ids start with their UTC date and a `T`, so one listing
with `Delimiter="T"` returns the days that have reports (a few years in one page); a page of
history then lists only the newest days it needs, whatever the length of the history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from mlops.adapters.aws import client
from mlops.errors import NotFoundError
from mlops.layout import drift_reports_prefix, drift_result_key, is_drift_report_id

_RESULT_SUFFIX = ".json"
_DAY = 8  # YYYYMMDD


class S3DriftResults:
    def __init__(
        self,
        bucket: str,
        s3: Any | None = None,
        *,
        prefix_of: Callable[[str], str] = drift_reports_prefix,
        key_of: Callable[[str, str], str] = drift_result_key,
    ) -> None:
        self.bucket = bucket
        self._s3 = s3
        self.prefix_of, self.key_of = prefix_of, key_of

    @property
    def s3(self) -> Any:
        return self._s3 or client("s3")

    def report_ids(self, model: str, *, before: str | None, limit: int) -> list[str]:
        prefix = self.prefix_of(model)
        found: list[str] = []
        for day in self._days_newest_first(prefix):
            if before is not None and day[len(prefix) :] > before[:_DAY] + "T":
                continue  # a day after the cursor
            ids = (key[len(prefix) : -len(_RESULT_SUFFIX)] for key in self._keys(day) if key.endswith(_RESULT_SUFFIX))
            found += sorted((i for i in ids if is_drift_report_id(i) and (before is None or i < before)), reverse=True)
            if len(found) >= limit:
                break
        return found[:limit]

    def read(self, model: str, report_id: str) -> bytes:
        key = self.key_of(model, report_id)
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code", "") in {"NoSuchKey", "404", "NotFound"}:
                raise NotFoundError(f"s3://{self.bucket}/{key} does not exist") from error
            raise
        with response["Body"] as body:
            return body.read()

    def _days_newest_first(self, prefix: str) -> list[str]:
        days: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="T"):
            days += [common["Prefix"] for common in page.get("CommonPrefixes", [])]
        return sorted(days, reverse=True)

    def _keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return keys
