"""Buckets with the project's baseline (versioned, encrypted, TLS only, private, retained) and
the shared ones: server access logs and the artifact bucket (models, baselines, captures).
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.nag import acknowledge


def secure_bucket(
    scope: Construct, construct_id: str, *, access_logs: s3.IBucket | None, log_prefix: str = ""
) -> s3.Bucket:
    """A bucket with the baseline every bucket here shares; access logs go to `access_logs`."""
    return s3.Bucket(
        scope,
        construct_id,
        versioned=True,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=RemovalPolicy.RETAIN,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=log_prefix or None,
    )


class SharedStorage(Construct):
    """The access-log bucket and the artifact bucket the training, registry, serving and drift stages share."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = secure_bucket(self, "AccessLogs", access_logs=None)
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the server-access-log bucket itself; logging it into itself would loop.",
        )
        self.artifact_bucket = secure_bucket(self, "Artifacts", access_logs=self.access_logs, log_prefix="artifacts/")
