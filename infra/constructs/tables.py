"""The one way this stack builds a keyed single table: the registry and the dataset ledger share it."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

GSI1 = "gsi1"


def keyed_table(scope: Construct, construct_id: str) -> dynamodb.Table:
    """`pk`/`sk` (S) with the index `gsi1` on `gsi1pk`/`gsi1sk` (S, projection ALL); on-demand,
    point-in-time recovery, deletion protection, retained when the stack goes."""
    string = dynamodb.AttributeType.STRING
    table = dynamodb.Table(
        scope,
        construct_id,
        partition_key=dynamodb.Attribute(name="pk", type=string),
        sort_key=dynamodb.Attribute(name="sk", type=string),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        deletion_protection=True,
        removal_policy=RemovalPolicy.RETAIN,
    )
    table.add_global_secondary_index(
        index_name=GSI1,
        partition_key=dynamodb.Attribute(name="gsi1pk", type=string),
        sort_key=dynamodb.Attribute(name="gsi1sk", type=string),
        projection_type=dynamodb.ProjectionType.ALL,
    )
    return table


def index_arn(table: dynamodb.ITable) -> str:
    return f"{table.table_arn}/index/{GSI1}"
