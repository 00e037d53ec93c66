"""The REST API: `POST /models/{name}/predict` (API key, usage plan) -> predict;
`POST /models/{name}/feedback` (the same key and plan) -> record_feedback; the model
management routes (infra.constructs.access.MODEL_ROUTES: reads, approve, reject, promote,
rollback, archive, aliases, dataset ledger and held-dataset review, drift runs, `GET /openapi.json`) ->
models_api with IAM authorization, and the reader/approver/admin roles allowed to invoke them.
"""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.catalog import FUNCTIONS
from infra.constructs.access import MODEL_ROUTES, ModelsApiAccess
from infra.constructs.events import EventBackbone
from infra.constructs.firewall import ApiFirewall, firewall_settings_from_context
from infra.constructs.function_defaults import LOG_RETENTION, LayerLibrary, MlopsFunction
from infra.constructs.ledger import DatasetLedger
from infra.constructs.nag import acknowledge, acknowledge_wildcard_resources
from infra.constructs.registry import Registry, connect_alarm_topic
from mlops.layout import (
    BASELINES_PREFIX,
    CAPTURES_PREFIX,
    DATASETS_PREFIX,
    INCOMING_FOLDER,
    LABELS_PREFIX,
    MODELS_PREFIX,
    MONITORING_PREFIX,
    QUARANTINE_PREFIX,
    REQUESTS_FOLDER,
)
from mlops.request_limits import (
    CLIENT_KEY_BURST,
    CLIENT_KEY_QUOTA_PER_DAY,
    CLIENT_KEY_RATE_PER_SECOND,
    USAGE_PLAN_BURST,
    USAGE_PLAN_RATE_PER_SECOND,
)

STAGE_NAME = "v1"
RATE_LIMIT = USAGE_PLAN_RATE_PER_SECOND  # requests per second, steady (documented on the predict route)
BURST_LIMIT = USAGE_PLAN_BURST

_RECORD_LIST = {"type": "array", "minItems": 1, "items": {"type": "object"}}
# `{"records": [...]}` or a bare list; the function checks each record against the contract.
PREDICT_BODY_SCHEMA = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    title="PredictRequest",
    one_of=[
        apigw.JsonSchema(
            type=apigw.JsonSchemaType.OBJECT,
            required=["records"],
            properties={
                "records": apigw.JsonSchema(
                    type=apigw.JsonSchemaType.ARRAY,
                    min_items=1,
                    items=apigw.JsonSchema(type=apigw.JsonSchemaType.OBJECT),
                )
            },
        ),
        apigw.JsonSchema(
            type=apigw.JsonSchemaType.ARRAY, min_items=1, items=apigw.JsonSchema(type=apigw.JsonSchemaType.OBJECT)
        ),
    ],
)

# `{"labels": [{...}, ...]}`: the shape only. The batch limit and each label's rules are the
# function's (mlops.feedback), so a refusal names the limit or the item instead of API Gateway's
# bare "Invalid request body".
FEEDBACK_BODY_SCHEMA = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    title="FeedbackRequest",
    type=apigw.JsonSchemaType.OBJECT,
    required=["labels"],
    properties={"labels": apigw.JsonSchema(type=apigw.JsonSchemaType.ARRAY, min_items=1)},
)


class InferenceApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        artifact_bucket: s3.IBucket,
        data_bucket: s3.IBucket,
        backbone: EventBackbone,
        registry: Registry,
        ledger: DatasetLedger,
        layers: LayerLibrary,
    ) -> None:
        super().__init__(scope, construct_id)
        self.predict = MlopsFunction(
            self,
            "Predict",
            spec=FUNCTIONS["predict"],
            environment={
                "REGISTRY_TABLE": registry.table.table_name,
                "ARTIFACT_BUCKET": artifact_bucket.bucket_name,
            },
            layers=layers,
        )
        registry.grant_model_reads(self.predict)  # the production pointer and its version
        self.predict.grant(
            ["s3:GetObject"],
            [artifact_bucket.arn_for_objects(f"{MODELS_PREFIX}*")],
            why_wildcard="Loads production model artifacts under models/ only.",
        )
        self.predict.grant(
            ["s3:PutObject"],
            [artifact_bucket.arn_for_objects(f"{CAPTURES_PREFIX}*")],
            why_wildcard="Writes sampled inference captures under captures/ only.",
        )

        # Ground truth in: its own function, so predict's package and cold start do not move.
        self.record_feedback = MlopsFunction(
            self,
            "RecordFeedback",
            spec=FUNCTIONS["record_feedback"],
            environment={
                "REGISTRY_TABLE": registry.table.table_name,
                "ARTIFACT_BUCKET": artifact_bucket.bucket_name,
            },
            layers=layers,
        )
        registry.grant_model_reads(self.record_feedback)  # the production version's contract
        self.record_feedback.grant(
            ["s3:PutObject"],
            [artifact_bucket.arn_for_objects(f"{LABELS_PREFIX}*")],
            why_wildcard="Writes label objects under labels/ only.",
        )

        self.models_api = MlopsFunction(
            self,
            "ModelsApi",
            spec=FUNCTIONS["models_api"],
            environment={
                "REGISTRY_TABLE": registry.table.table_name,
                "LEDGER_TABLE": ledger.table_name,
                "EVENT_BUS_NAME": backbone.bus.event_bus_name,
                "DATA_BUCKET": data_bucket.bucket_name,
                "ARTIFACT_BUCKET": artifact_bucket.bucket_name,
            },
            layers=layers,
        )
        registry.grant_registry_read(self.models_api)
        registry.grant_registry_write(self.models_api)
        # held-dataset reviews: a conditional PutItem on the ledger; listing: a Query by state
        ledger.grant_decisions(self.models_api)
        backbone.bus.grant_put_events_to(self.models_api.role)
        self.models_api.grant(
            ["s3:GetObject"],
            [artifact_bucket.arn_for_objects(f"{MODELS_PREFIX}*")],
            why_wildcard="Verifies artifact digests under models/ before a promotion or rollback.",
        )
        self.models_api.grant(
            ["s3:GetObject"],
            [artifact_bucket.arn_for_objects(f"{BASELINES_PREFIX}*")],
            why_wildcard="Reads training baseline profiles under baselines/ to compare two versions' training data.",
        )
        # Drift runs: list a model's results under monitoring/ (a missing one is then a 404, not a 403), read them.
        self.models_api.grant(
            ["s3:GetObject"],
            [artifact_bucket.arn_for_objects(f"{MONITORING_PREFIX}*")],
            why_wildcard="Reads drift results under monitoring/ only.",
        )
        self.models_api.grant(
            ["s3:ListBucket"],
            [artifact_bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{MONITORING_PREFIX}*"]}},
        )
        # A rejected held dataset: copy its exact version under quarantine/, then delete it.
        data = data_bucket.arn_for_objects
        self.models_api.grant(
            ["s3:GetObject", "s3:GetObjectVersion"],
            [data(f"{DATASETS_PREFIX}*")],
            why_wildcard="Reads a held dataset version under datasets/ to copy it into quarantine/.",
        )
        self.models_api.grant(
            ["s3:PutObject"],
            [data(f"{QUARANTINE_PREFIX}*")],
            why_wildcard="Writes rejected datasets under quarantine/ only.",
        )
        self.models_api.grant(
            ["s3:DeleteObject", "s3:DeleteObjectVersion"],
            [data(f"{DATASETS_PREFIX}*")],
            why_wildcard="Removes a rejected dataset version from datasets/ once it is copied to quarantine/.",
        )
        # imports: the upload URL is signed with this role (so it may put exactly the incoming keys),
        # and the request record beside it names the approver who asked (uploaders cannot write there)
        self.models_api.grant(
            ["s3:PutObject"],
            [data(f"{MODELS_PREFIX}*/{INCOMING_FOLDER}/*"), data(f"{MODELS_PREFIX}*/{REQUESTS_FOLDER}/*")],
            why_wildcard="Signs import uploads under models/<model>/incoming/ and records them under requests/ only.",
        )
        # Without ListBucket S3 answers 403, not 404, for a version already moved: a reviewer's
        # retried rejection (review.py redoes the move) could not tell "already done" from "denied".
        self.models_api.grant(["s3:ListBucket"], [data_bucket.bucket_arn])

        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.RETAIN
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            # the ApiName dimension of API Gateway's metrics: two stacks' APIs must not share one
            rest_api_name=f"{Stack.of(self).stack_name}-api",
            description="mlops model serving and management",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=False,
            api_key_source_type=apigw.ApiKeySourceType.HEADER,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                tracing_enabled=True,
                metrics_enabled=True,
                throttling_rate_limit=RATE_LIMIT,
                throttling_burst_limit=BURST_LIMIT,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
        )
        validator = self.api.add_request_validator(
            "BodyValidator", validate_request_body=True, validate_request_parameters=True
        )
        predict_model = self.api.add_model(
            "PredictRequest", content_type="application/json", schema=PREDICT_BODY_SCHEMA
        )

        iam_auth = {"authorization_type": apigw.AuthorizationType.IAM, "request_validator": validator}
        models_integration = apigw.LambdaIntegration(self.models_api.function)
        for method, path in MODEL_ROUTES:
            self.api.root.resource_for_path(path).add_method(method, models_integration, **iam_auth)
        model = self.api.root.resource_for_path("/models/{name}")
        self.predict_method = model.add_resource("predict").add_method(
            "POST",
            apigw.LambdaIntegration(self.predict.invoke_target),  # the SnapStart alias
            api_key_required=True,
            request_validator=validator,
            request_models={"application/json": predict_model},
        )
        feedback_model = self.api.add_model(
            "FeedbackRequest", content_type="application/json", schema=FEEDBACK_BODY_SCHEMA
        )
        self.feedback_method = model.add_resource("feedback").add_method(
            "POST",
            apigw.LambdaIntegration(self.record_feedback.function),
            api_key_required=True,
            request_validator=validator,
            request_models={"application/json": feedback_model},
        )
        acknowledge(
            self.predict_method,
            "AwsSolutions-APIG4",
            "Prediction callers are identified by API key with a usage plan; the route serves "
            "non-sensitive scores and is throttled per key.",
        )
        acknowledge(
            self.feedback_method,
            "AwsSolutions-APIG4",
            "Label senders are the prediction clients, identified by API key with the same usage plan; "
            "the route only appends labels (repeats are absorbed) and is throttled per key.",
        )
        for method in (self.predict_method, self.feedback_method):
            acknowledge(
                method, "AwsSolutions-COG4", "Callers are machine clients identified by API key, not Cognito users."
            )
        for method in self.api.methods:
            if method not in (self.predict_method, self.feedback_method):
                acknowledge(method, "AwsSolutions-COG4", "Management routes use IAM (SigV4) authorization.")

        self.access = ModelsApiAccess(self, "Access", api=self.api, stage=STAGE_NAME)
        for name, value in self.access.principal_patterns().items():
            self.models_api.function.add_environment(name, value)

        self.usage_plan = self.api.add_usage_plan(
            "UsagePlan",
            description="prediction clients",
            throttle=apigw.ThrottleSettings(rate_limit=RATE_LIMIT, burst_limit=BURST_LIMIT),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.api, stage=self.api.deployment_stage)],
        )
        self.api_key = self.api.add_api_key("ApiKey", description="prediction client key (generated)")
        self.usage_plan.add_api_key(self.api_key)
        self._client_keys()

        firewall = firewall_settings_from_context(self)
        self.firewall: ApiFirewall | None = None
        if firewall.enabled:
            self.firewall = ApiFirewall(self, "Firewall", stage=self.api.deployment_stage, settings=firewall)
        else:
            acknowledge(
                self.api,
                "AwsSolutions-APIG3",
                "WAF turned off by the `waf=false` context (development); the usage plan still throttles callers.",
            )
        acknowledge(
            self.api,
            "AwsSolutions-APIG6",
            "Execution logging needs the account-wide API Gateway CloudWatch role, which this stack "
            "does not own; access logs and X-Ray tracing are enabled on the stage.",
        )

    def _client_keys(self) -> None:
        """The usage plan of the keys models_api issues per client (`/clients`), and models_api's
        narrow rights on API Gateway: create keys, put them in this plan, list and delete keys.

        models_api finds the plan by name and gets its rights from a policy of its own: the plan
        depends on the stage, the stage on the deployment, the deployment on models_api's methods,
        so an id in the function's variables or default policy would close a dependency cycle."""
        name = f"{Stack.of(self).stack_name}-clients"
        self.client_usage_plan = self.api.add_usage_plan(
            "ClientUsagePlan",
            name=name,
            description="prediction clients with keys issued through the models API (/clients)",
            throttle=apigw.ThrottleSettings(rate_limit=CLIENT_KEY_RATE_PER_SECOND, burst_limit=CLIENT_KEY_BURST),
            quota=apigw.QuotaSettings(limit=CLIENT_KEY_QUOTA_PER_DAY, period=apigw.Period.DAY),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.api, stage=self.api.deployment_stage)],
        )
        self.models_api.function.add_environment("CLIENT_USAGE_PLAN_NAME", name)
        apigateway = f"arn:{Aws.PARTITION}:apigateway:{Aws.REGION}::"
        plan = f"{apigateway}/usageplans/{self.client_usage_plan.usage_plan_id}"
        keys = f"{apigateway}/apikeys/*"
        self.client_keys_policy = iam.Policy(
            self,
            "ClientKeysPolicy",
            roles=[self.models_api.role],
            statements=[
                iam.PolicyStatement(actions=["apigateway:POST"], resources=[f"{apigateway}/apikeys", f"{plan}/keys"]),
                iam.PolicyStatement(
                    actions=["apigateway:GET"], resources=[f"{apigateway}/apikeys", f"{apigateway}/usageplans", plan]
                ),
                iam.PolicyStatement(actions=["apigateway:DELETE"], resources=[keys]),
            ],
        )
        acknowledge_wildcard_resources(
            self.client_keys_policy,
            [keys],
            "API Gateway assigns key ids when a key is issued; models_api deletes only keys named client-* "
            "that it has listed first (mlops.client_keys).",
        )

    def connect_alarm_topic(self, topic: sns.ITopic, key: kms.IKey) -> None:
        """models_api tells the (KMS-encrypted) alarm topic about production changes."""
        connect_alarm_topic(self.models_api, topic, key)
