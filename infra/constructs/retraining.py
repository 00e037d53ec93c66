"""Retraining on evidence: retrain_model (train_model's image recipe: pandas reads the dataset) and
its three triggers. A model's drift or live-quality alarm entering ALARM (CloudWatch puts its state
changes on the default bus), the contract's `retraining.schedule`, and an approver's
`RetrainingRequested` (models API) on the project bus. It writes only the training set under
datasets/<model>/retrain-* of the data bucket, so validate_dataset's S3 notification takes it from
there: the same gate, training and promotion policy as an upload."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.catalog import FUNCTIONS
from infra.constructs.alarms import model_alarm_prefix, retraining_alarm_names
from infra.constructs.events import EventBackbone
from infra.constructs.function_defaults import LayerLibrary, MlopsFunction
from infra.constructs.ledger import DatasetLedger
from infra.constructs.registry import Registry
from mlops.contract import Contract
from mlops.events import EVENT_SOURCE, DetailType
from mlops.layout import (
    CAPTURES_PREFIX,
    CONTRACTS_PREFIX,
    DATASETS_PREFIX,
    LABELS_PREFIX,
    RETRAIN_FILE_PREFIX,
    retrain_files_prefix,
)
from mlops.retraining.triggers import ALARM_STATE_CHANGE, RETRAINING_REQUESTED


class Retraining(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        contracts: list[Contract],
        data_bucket: s3.IBucket,
        artifact_bucket: s3.IBucket,
        backbone: EventBackbone,
        registry: Registry,
        ledger: DatasetLedger,
        layers: LayerLibrary,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.function = fn = MlopsFunction(
            self,
            "RetrainModel",
            spec=FUNCTIONS["retrain_model"],
            environment={
                "DATA_BUCKET": data_bucket.bucket_name,
                "ARTIFACT_BUCKET": artifact_bucket.bucket_name,
                "REGISTRY_TABLE": registry.table.table_name,
                "LEDGER_TABLE": ledger.table_name,
                "ALARM_NAME_PREFIX": model_alarm_prefix(stack),
            },
            layers=layers,
            failure_queue=backbone.dead_letters,
        )
        fn.grant(
            ["s3:GetObject", "s3:GetObjectVersion"],
            [data_bucket.arn_for_objects(f"{DATASETS_PREFIX}*"), data_bucket.arn_for_objects(f"{CONTRACTS_PREFIX}*")],
            why_wildcard="Reads the last accepted dataset (exact version) under datasets/ and contracts/ only.",
        )
        fn.grant(
            ["s3:PutObject"],
            [data_bucket.arn_for_objects(f"{DATASETS_PREFIX}*/{RETRAIN_FILE_PREFIX}*")],
            why_wildcard="Writes only training sets named datasets/<model>/retrain-*: the dataset gate takes them.",
        )
        fn.grant(
            ["s3:GetObject"],
            [
                artifact_bucket.arn_for_objects(f"{CAPTURES_PREFIX}*"),
                artifact_bucket.arn_for_objects(f"{LABELS_PREFIX}*"),
            ],
            why_wildcard="Reads labelled traffic: captures/ and labels/ only.",
        )
        fn.grant(
            ["s3:ListBucket"],
            [artifact_bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{CAPTURES_PREFIX}*", f"{LABELS_PREFIX}*"]}},
        )
        registry.grant_registry_read(fn)  # the production version and the audit trail (the cooldown)
        registry.grant_registry_write(fn)  # retraining audit events, chained
        ledger.grant_index_reads(fn)  # the last accepted dataset

        def target(**props: object) -> targets.LambdaFunction:
            return targets.LambdaFunction(
                fn.function,
                dead_letter_queue=backbone.dead_letters,
                retry_attempts=4,
                max_event_age=Duration.hours(2),
                **props,  # type: ignore[arg-type]
            )

        names = [name for contract in contracts for name in retraining_alarm_names(stack, contract.name)]
        # CloudWatch puts alarm state changes on the account's default bus
        self.alarm_rule = events.Rule(
            self,
            "AlarmRule",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=[ALARM_STATE_CHANGE],
                detail={"alarmName": names, "state": {"value": ["ALARM"]}},
            ),
            description="a model's drift or live-quality alarm entered ALARM -> retrain_model",
        )
        self.alarm_rule.add_target(target())
        self.request_rule = backbone.route("RequestRule", RETRAINING_REQUESTED, fn.function, "retrain_model")
        # a retraining's training set refused on its way (gate or training): audited as its outcome
        self.refusal_rules = []
        retrain_keys = [{"prefix": retrain_files_prefix(contract.name)} for contract in contracts]
        if retrain_keys:
            for construct_id, detail_types, detail in (
                ("QuarantinedRule", [DetailType.DATASET_QUARANTINED], {"source_key": retrain_keys}),
                (
                    "RefusedRule",
                    [DetailType.DATASET_HELD, DetailType.TRAINING_REJECTED, DetailType.TRAINING_FAILED],
                    {"dataset": {"key": retrain_keys}},
                ),
            ):
                rule = events.Rule(
                    self,
                    construct_id,
                    event_bus=backbone.bus,
                    event_pattern=events.EventPattern(source=[EVENT_SOURCE], detail_type=detail_types, detail=detail),
                    description=f"{', '.join(detail_types)} of a retraining's training set -> retrain_model",
                )
                rule.add_target(target())
                self.refusal_rules.append(rule)
        self.schedules = []
        for contract in contracts:
            schedule = contract.retraining.schedule
            if schedule is None:
                continue
            rule = events.Rule(
                self,
                f"Schedule-{contract.name}",
                schedule=events.Schedule.expression(schedule),
                description=f"the contract's retraining schedule of {contract.name}",
            )
            rule.add_target(
                target(
                    event=events.RuleTargetInput.from_object(
                        {"retrain": {"model": contract.name, "schedule": schedule}}
                    )
                )
            )
            self.schedules.append(rule)
