"""EventBridge `Object Created` in the data bucket, outside the prefixes the suite owns -> a data file
(.csv, .csv.gz, .parquet) there gets a notice under misplaced/ saying where it should have gone, a
warning log naming both keys and the `MisplacedUploads` metric.

Without this, an upload to `penguins/x.csv` or `dataset/x.csv` does nothing at all: the dataset
notification filters on datasets/, and S3 cannot express "every other prefix"; EventBridge's
anything-but pattern can (infra/constructs/datasets.py). The rule is mlops.misplaced.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.adapters.s3 import S3ObjectStore
from mlops.errors import BadRequestError
from mlops.layout import misplaced_report_key
from mlops.misplaced import misplaced_upload, object_created
from mlops.settings import MisplacedUploadSettings

SERVICE = "report_misplaced_upload"
settings = MisplacedUploadSettings.from_env()
logger = Logger(service=SERVICE)
store = S3ObjectStore()


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        bucket, key, _ = object_created(event)
    except BadRequestError as error:
        logger.warning("event rejected", extra={"reason": str(error)})
        return {"status": "Malformed", "reason": str(error)}
    notice = misplaced_upload(key)
    if bucket != settings.data_bucket or notice is None:
        return {"status": "Ignored", "key": key}
    report = misplaced_report_key(key)
    store.put_bytes(settings.data_bucket, report, notice.to_json().encode(), "application/json")
    with single_metric(
        name="MisplacedUploads", unit=MetricUnit.Count, value=1, default_dimensions={"service": SERVICE}
    ):
        pass
    logger.warning("misplaced upload", extra={"key": key, "expected_key": notice.expected_key, "report": report})
    return {"status": "Misplaced", "key": key, "expected_key": notice.expected_key, "report": report}
