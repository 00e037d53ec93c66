"""MlopsStack: wires the capability constructs together; it builds no resources of its own."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from infra import outputs
from infra.constructs.alarms import ApiSignals, ModelAlarms, OperationalAlarms
from infra.constructs.batch import BatchScoring
from infra.constructs.canary import CanaryControl, ShadowScoring
from infra.constructs.dashboards import ModelDashboard, PipelineDashboard
from infra.constructs.datasets import Datasets
from infra.constructs.events import EventBackbone
from infra.constructs.feedback import FeedbackFiles
from infra.constructs.function_defaults import LayerLibrary, MlopsFunction
from infra.constructs.inference_api import InferenceApi
from infra.constructs.ledger import DatasetLedger
from infra.constructs.monitoring import Monitoring, contracts_directory, load_contracts
from infra.constructs.nag import acknowledge
from infra.constructs.registry import Registry
from infra.constructs.retraining import Retraining
from infra.constructs.storage import SharedStorage
from infra.constructs.training import Training

# CDK's singleton that applies S3 bucket notifications (a custom resource); not our code.
BUCKET_NOTIFICATIONS_HANDLER = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"


class MlopsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str = outputs.STACK_NAME, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        storage = SharedStorage(self, "Storage")
        backbone = EventBackbone(self, "Events")
        layers = LayerLibrary(self, "Layers")
        ledger = DatasetLedger(self, "Ledger")
        registry = Registry(
            self, "Registry", artifact_bucket=storage.artifact_bucket, backbone=backbone, layers=layers, ledger=ledger
        )
        datasets = Datasets(
            self,
            "Datasets",
            access_logs=storage.access_logs,
            backbone=backbone,
            registry=registry,
            ledger=ledger,
            layers=layers,
            artifact_bucket=storage.artifact_bucket,
        )
        training = Training(
            self,
            "Training",
            data_bucket=datasets.bucket,
            artifact_bucket=storage.artifact_bucket,
            backbone=backbone,
            registry=registry,
            ledger=ledger,
            layers=layers,
        )
        Retraining(
            self,
            "Retraining",
            contracts=load_contracts(),
            data_bucket=datasets.bucket,
            artifact_bucket=storage.artifact_bucket,
            backbone=backbone,
            registry=registry,
            ledger=ledger,
            layers=layers,
        )
        api = InferenceApi(
            self,
            "Inference",
            artifact_bucket=storage.artifact_bucket,
            data_bucket=datasets.bucket,
            backbone=backbone,
            registry=registry,
            ledger=ledger,
            layers=layers,
        )
        FeedbackFiles(
            self,
            "Feedback",
            data_bucket=datasets.bucket,
            artifact_bucket=storage.artifact_bucket,
            backbone=backbone,
            registry=registry,
            layers=layers,
        )
        BatchScoring(
            self,
            "Batch",
            data_bucket=datasets.bucket,
            artifact_bucket=storage.artifact_bucket,
            backbone=backbone,
            registry=registry,
            layers=layers,
        )
        monitoring = Monitoring(
            self,
            "Monitoring",
            artifact_bucket=storage.artifact_bucket,
            backbone=backbone,
            registry=registry,
            layers=layers,
            api_url=api.api.url,
        )
        datasets.announce_to(monitoring.topic, monitoring.key)
        # production changes (auto-promotions, promote, rollback) reach the alarm topic's subscribers
        registry.connect_alarm_topic(monitoring.topic, monitoring.key)
        training.connect_alarm_topic(monitoring.topic, monitoring.key)
        api.connect_alarm_topic(monitoring.topic, monitoring.key)
        self._canary = CanaryControl(
            self,
            "Canary",
            contracts=load_contracts(contracts_directory(self)),
            artifact_bucket=storage.artifact_bucket,
            backbone=backbone,
            registry=registry,
            layers=layers,
            topic=monitoring.topic,
            key=monitoring.key,
        )
        ShadowScoring(
            self,
            "Shadow",
            artifact_bucket=storage.artifact_bucket,
            backbone=backbone,
            registry=registry,
            layers=layers,
        )
        self._alarms_and_dashboards(monitoring, api, backbone)
        self._acknowledge_cdk_internals()

        add = outputs.add_output
        add(self, outputs.DATA_BUCKET_NAME, datasets.bucket.bucket_name, "upload datasets under datasets/<model>/")
        add(self, outputs.ARTIFACT_BUCKET_NAME, storage.artifact_bucket.bucket_name, "models, baselines, captures")
        add(self, outputs.ACCESS_LOG_BUCKET_NAME, storage.access_logs.bucket_name, "S3 server access logs")
        add(self, outputs.REGISTRY_TABLE_NAME, registry.table.table_name, "model registry table")
        add(self, outputs.LEDGER_TABLE_NAME, ledger.table_name, "dataset ledger table (one item per dataset version)")
        add(self, outputs.IDEMPOTENCY_TABLE_NAME, registry.idempotency_table.table_name, "Powertools idempotency")
        add(self, outputs.EVENT_BUS_NAME, backbone.bus.event_bus_name, "stage events bus")
        add(
            self, outputs.DEAD_LETTER_QUEUE_URL, backbone.dead_letters.queue_url, "undeliverable events, failed invokes"
        )
        add(self, outputs.API_URL, api.api.url, "REST API base URL (stage included)")
        add(self, outputs.API_KEY_ID, api.api_key.key_id, "id of the generated prediction API key")
        add(self, outputs.ALARM_TOPIC_ARN, monitoring.topic.topic_arn, "drift alarm notifications")

    def _alarms_and_dashboards(self, monitoring: Monitoring, api: InferenceApi, backbone: EventBackbone) -> None:
        """Every function's alarms (found in the tree, so a new function cannot be missed), per model and
        operational composites notifying the alarm topic, and the dashboards."""
        functions = [node for node in self.node.find_all() if isinstance(node, MlopsFunction)]
        serving = [api.predict, api.record_feedback, api.models_api]  # API-facing: a throttle is a refused request
        signals = ApiSignals.of(api.api, api.predict_method)
        models = [
            ModelAlarms(
                self,
                f"Alarms-{contract.name}",
                contract=contract,
                topic=monitoring.topic,
                api_url=api.api.url,
                canary=self._canary.alarms_of(contract.name),
            )
            for contract in load_contracts(contracts_directory(self))
        ]
        dead_letter_queues = [backbone.dead_letters]
        operations = OperationalAlarms(
            self,
            "Alarms",
            topic=monitoring.topic,
            serving=serving,
            pipeline=[fn for fn in functions if fn not in serving],
            api=signals,
            dead_letter_queues=dead_letter_queues,
            late_captures=[m.late_captures for m in models],
            firewall_acl_name=api.firewall.web_acl_metric_name if api.firewall else None,
        )
        for model in models:
            ModelDashboard(self, f"Dashboard-{model.model}", model=model.model, alarms=model, api=signals)
        PipelineDashboard(
            self,
            "PipelineDashboard",
            functions=functions,
            api=signals,
            dead_letter_queues=dead_letter_queues,
            operations=operations,
            models=models,
        )

    def _acknowledge_cdk_internals(self) -> None:
        handler = self.node.try_find_child(BUCKET_NOTIFICATIONS_HANDLER)
        if handler is None:
            return
        reason = "CDK's own bucket-notification custom resource handler, not application code"
        for rule_id in (
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "AwsSolutions-IAM5[Resource::*]",
        ):
            acknowledge(handler, rule_id, f"{reason}: it only calls s3:PutBucketNotification.")
