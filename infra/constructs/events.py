"""The project's EventBridge bus and the queue where undeliverable events and failed async invokes land."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.nag import acknowledge
from mlops.events import EVENT_SOURCE


class EventBackbone(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", description="mlops stage events (source 'mlops')")
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.dead_letters,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter queue of the bus targets and async invocations.",
        )

    def route(self, construct_id: str, detail_type: str, function: lambda_.IFunction, target: str) -> events.Rule:
        """A rule matching `source: mlops` and one detail type, to `function`, with retries and a DLQ."""
        rule = events.Rule(
            self,
            construct_id,
            event_bus=self.bus,
            event_pattern=events.EventPattern(source=[EVENT_SOURCE], detail_type=[detail_type]),
            description=f"{detail_type} events -> {target}",
        )
        rule.add_target(
            targets.LambdaFunction(
                function,
                dead_letter_queue=self.dead_letters,
                retry_attempts=4,
                max_event_age=Duration.hours(2),
            )
        )
        return rule
