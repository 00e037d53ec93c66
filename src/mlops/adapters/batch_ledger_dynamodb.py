"""BatchLedger on DynamoDB: one item per batch job (`pk` = BATCH#<job id>).

The job is put once (`attribute_not_exists`); each finished part is one entry of the item's `done`
map, set with `attribute_not_exists(done.#part)` and returned with the whole item (ALL_NEW) in the
same request, so exactly one invocation sees the write that completes the job, and a retried part
is refused by the condition instead of being counted twice. 1,000 parts of ~300 bytes stay well
under DynamoDB's 400 KB item limit (mlops.batch.plan.MAX_PARTS). Items expire after `ttl_days`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import ClientError

from mlops.adapters.aws import client
from mlops.batch.jobs import BatchJob, JobProgress, PartResult
from mlops.errors import IntegrityError

_CONDITION_FAILED = "ConditionalCheckFailedException"


class DynamoBatchLedger:
    def __init__(self, table_name: str, *, ttl_days: int = 30, dynamodb: Any | None = None) -> None:
        self.table_name = table_name
        self.ttl_days = ttl_days
        self._dynamodb = dynamodb

    @property
    def dynamodb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    def start(self, job: BatchJob) -> BatchJob:
        try:
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item={
                    "pk": {"S": _pk(job.job_id)},
                    "job": {"S": json.dumps(job.as_dict())},
                    "done": {"M": {}},
                    "expires_at": {"N": str(int(time.time()) + self.ttl_days * 86400)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
            return job
        except ClientError as error:
            if error.response["Error"]["Code"] != _CONDITION_FAILED:
                raise
        recorded = self.progress(job.job_id)
        if recorded is None:  # the condition failed, so it existed: only an expiry in between removes it
            raise IntegrityError(f"batch job {job.job_id} vanished from the ledger while being recorded")
        return recorded.job

    def progress(self, job_id: str) -> JobProgress | None:
        item = self.dynamodb.get_item(
            TableName=self.table_name, Key={"pk": {"S": _pk(job_id)}}, ConsistentRead=True
        ).get("Item")
        return None if item is None else _progress(item)

    def complete_part(self, job_id: str, result: PartResult) -> JobProgress | None:
        try:
            response = self.dynamodb.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": _pk(job_id)}},
                UpdateExpression="SET done.#part = :result",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(done.#part)",
                ExpressionAttributeNames={"#part": str(result.index)},
                ExpressionAttributeValues={":result": {"S": json.dumps(result.as_dict())}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == _CONDITION_FAILED:
                return None
            raise
        return _progress(response["Attributes"])

    def mark_summarized(self, job_id: str) -> bool:
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": _pk(job_id)}},
                UpdateExpression="SET summarized_at = :now",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(summarized_at)",
                ExpressionAttributeValues={":now": {"N": str(int(time.time()))}},
            )
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == _CONDITION_FAILED:
                return False
            raise


def _pk(job_id: str) -> str:
    return f"BATCH#{job_id}"


def _progress(item: dict[str, Any]) -> JobProgress:
    done = {int(index): PartResult.from_dict(json.loads(value["S"])) for index, value in item["done"]["M"].items()}
    return JobProgress(BatchJob.from_dict(json.loads(item["job"]["S"])), done, summarized="summarized_at" in item)
