"""An in-memory ModelRegistry (same rules as DynamoRegistry: policy, transitions, rollback stack)
and a hand-built ModelTrained event, for tests that must not depend on the trainer."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from mlops.contract import parse_contract
from mlops.errors import ConflictError, ModelNotFoundError, VersionNotFoundError
from mlops.events import DatasetRef, ModelTrained
from mlops.layout import artifact_key, baseline_key
from mlops.registry.policy import decide_promotion
from mlops.registry.records import (
    Artifact,
    AuditAction,
    AuditEvent,
    ModelRecord,
    ModelVersion,
    RegistrationResult,
    VersionStatus,
)
from mlops.registry.service import require_model_name
from mlops.registry.transitions import check_transition, rollback_target


def contract_document(
    name: str = "churn", *, metric: str = "roc_auc", minimum: float | None = 0.7, min_improvement: float = 0.0
) -> dict[str, Any]:
    classification = metric in {"accuracy", "f1_macro", "roc_auc", "log_loss"}
    document: dict[str, Any] = {
        "name": name,
        "problem_type": "classification" if classification else "regression",
        "target": {"name": "label", "classes": ["no", "yes"]} if classification else {"name": "label"},
        "features": [{"name": "x", "type": "numeric"}, {"name": "plan", "type": "categorical"}],
        "estimator": {"name": "logistic_regression" if classification else "ridge", "params": {}},
        "metric": {"name": metric, "minimum": minimum, "min_improvement": min_improvement},
    }
    return document


def artifact_bytes(seed: str) -> bytes:
    return f"onnx-model-bytes-{seed}".encode() * 8


def trained_event(
    name: str = "churn",
    *,
    score: float = 0.8,
    artifact: bytes | None = None,
    bucket: str = "mlops-artifacts",
    contract: dict[str, Any] | None = None,
    sha256: str | None = None,
) -> ModelTrained:
    """A ModelTrained event as the trainer would publish it; the artifact bytes default to a
    function of the score, so two scores give two distinct artifacts."""
    data = artifact if artifact is not None else artifact_bytes(f"{name}-{score!r}")
    digest = sha256 or hashlib.sha256(data).hexdigest()
    document = contract or contract_document(name)
    parsed = parse_contract(document)
    return ModelTrained(
        model_name=name,
        artifact_bucket=bucket,
        artifact_key=artifact_key(name, digest),
        artifact_sha256=digest,
        artifact_bytes=len(data),
        baseline_key=baseline_key(name, digest),
        metric_name=parsed.metric.name,
        metrics={parsed.metric.name: score, "accuracy": 0.75, "tiny": 1e-12},
        dataset=DatasetRef(
            bucket="mlops-data",
            key=f"datasets/{name}/train.csv",
            version_id="v1",
            sha256="d" * 64,
            size_bytes=1234,
            rows=500,
        ),
        contract=document,
        contract_digest=parsed.digest,
        seed=42,
        params={"C": 0.5, "max_iter": 200, "class_weight": None},
        library_versions={"scikit-learn": "1.9.0", "skl2onnx": "1.20.0"},
        training_rows=400,
        holdout_rows=100,
        onnx_max_abs_diff=1.5e-7,
    )


class InMemoryRegistry:
    """ModelRegistry in memory. Thread-safe; the same domain rules as the DynamoDB adapter."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.models: dict[str, ModelRecord] = {}
        self.versions: dict[tuple[str, int], ModelVersion] = {}
        self.claims: dict[tuple[str, str], int] = {}
        self.audit: dict[str, list[AuditEvent]] = {}

    def _audit(self, name: str, action: AuditAction, actor: str, version: int | None, **fields: Any) -> None:
        event = AuditEvent(
            model_name=name,
            at=datetime.now(UTC),
            event_id=str(uuid.uuid4()),
            action=action.value,
            actor=actor,
            version=version,
            **fields,
        )
        self.audit.setdefault(name, []).append(event)

    def register(self, trained: ModelTrained, *, actor: str, request_id: str = "") -> RegistrationResult:
        name = require_model_name(trained.model_name)
        metric = parse_contract(trained.contract).metric
        with self._lock:
            claimed = self.claims.get((name, trained.artifact_sha256))
            if claimed is not None:
                existing = self.versions[(name, claimed)]
                return RegistrationResult(
                    version=existing, created=False, promoted=False, decision=existing.promotion_decision
                )
            now = datetime.now(UTC)
            record = self.models.get(name) or ModelRecord(name=name, latest_version=0, updated_at=now)
            number = record.latest_version + 1
            version = ModelVersion(
                model_name=name,
                version=number,
                status=VersionStatus.CANDIDATE,
                metric_name=trained.metric_name,
                metrics=dict(trained.metrics),
                artifact=Artifact(
                    bucket=trained.artifact_bucket,
                    key=trained.artifact_key,
                    sha256=trained.artifact_sha256,
                    size_bytes=trained.artifact_bytes,
                    baseline_key=trained.baseline_key,
                ),
                contract=dict(trained.contract),
                lineage={
                    "dataset": trained.dataset.model_dump(mode="json"),
                    "contract_digest": trained.contract_digest,
                    "seed": trained.seed,
                    "params": dict(trained.params),
                    "library_versions": dict(trained.library_versions),
                    "training_rows": trained.training_rows,
                    "holdout_rows": trained.holdout_rows,
                    "onnx_max_abs_diff": trained.onnx_max_abs_diff,
                },
                created_at=now,
            )
            record = record.model_copy(update={"latest_version": number, "updated_at": now})
            self.claims[(name, trained.artifact_sha256)] = number
            self._audit(name, AuditAction.REGISTERED, actor, number, request_id=request_id)
            production = record.production_version
            champion = self.versions[(name, production)] if production is not None else None
            decision = decide_promotion(
                metric, version.metrics, champion.metrics if champion else None, champion_version=production
            )
            if decision.promote:
                check_transition(version.status, VersionStatus.PRODUCTION)
                version = version.model_copy(update={"status": VersionStatus.PRODUCTION})
                record = record.model_copy(
                    update={"production_version": number, "production_history": [*record.production_history, number]}
                )
                if champion is not None:
                    check_transition(champion.status, VersionStatus.ARCHIVED)
                    self.versions[(name, champion.version)] = champion.model_copy(
                        update={"status": VersionStatus.ARCHIVED}
                    )
                    self._audit(name, AuditAction.ARCHIVED, actor, champion.version, request_id=request_id)
                self._audit(name, AuditAction.PROMOTED, actor, number, reason=decision.reason, request_id=request_id)
            else:
                self._audit(
                    name, AuditAction.PROMOTION_DECLINED, actor, number, reason=decision.reason, request_id=request_id
                )
            version = version.model_copy(update={"promotion_decision": decision.reason})
            self.versions[(name, number)] = version
            self.models[name] = record
            return RegistrationResult(
                version=version,
                created=True,
                promoted=decision.promote,
                decision=decision.reason,
                previous_production=production if decision.promote else None,
            )

    def get_model(self, name: str) -> ModelRecord:
        require_model_name(name)
        with self._lock:
            if name not in self.models:
                raise ModelNotFoundError(f"no model named {name!r} is registered")
            return self.models[name]

    def list_models(self) -> list[ModelRecord]:
        with self._lock:
            return [self.models[name] for name in sorted(self.models)]

    def get_version(self, name: str, version: int) -> ModelVersion:
        self.get_model(name)
        with self._lock:
            if (name, version) not in self.versions:
                raise VersionNotFoundError(f"{name} has no version {version}")
            return self.versions[(name, version)]

    def list_versions(self, name: str) -> list[ModelVersion]:
        record = self.get_model(name)
        with self._lock:
            return [self.versions[(name, v)] for v in range(1, record.latest_version + 1)]

    def production(self, name: str) -> ModelVersion | None:
        record = self.get_model(name)
        return None if record.production_version is None else self.get_version(name, record.production_version)

    def rollback(
        self, name: str, *, actor: str, reason: str, request_id: str = "", to_version: int | None = None
    ) -> ModelRecord:
        with self._lock:
            record = self.get_model(name)
            if to_version is not None:
                self.get_version(name, to_version)
            if record.production_version is None:
                raise ConflictError(f"{name} has no production version to roll back")
            target, history = rollback_target(list(record.production_history), to_version)
            current = self.get_version(name, record.production_version)
            restored = self.get_version(name, target)
            check_transition(current.status, VersionStatus.ARCHIVED)
            check_transition(restored.status, VersionStatus.PRODUCTION, rollback=True)
            self.versions[(name, current.version)] = current.model_copy(update={"status": VersionStatus.ARCHIVED})
            self.versions[(name, target)] = restored.model_copy(update={"status": VersionStatus.PRODUCTION})
            new = record.model_copy(
                update={"production_version": target, "production_history": history, "updated_at": datetime.now(UTC)}
            )
            self.models[name] = new
            self._audit(
                name,
                AuditAction.ROLLED_BACK,
                actor,
                target,
                before={"production_version": current.version},
                after={"production_version": target},
                reason=reason,
                request_id=request_id,
            )
            return new

    def audit_events(self, name: str) -> list[AuditEvent]:
        self.get_model(name)
        with self._lock:
            return list(self.audit.get(name, []))


def api_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    user_arn: str = "arn:aws:iam::123456789012:user/alice",
    resource: str | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event (IAM-authorised) as the models_api function receives it."""
    segments = path.strip("/").split("/")
    path_parameters = {"name": segments[1]} if len(segments) > 2 and segments[0] == "models" else None
    if resource is None:
        resource = "/" + "/".join(["models", "{name}", *segments[2:]] if path_parameters else segments)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", "Host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "r1",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": "ext-1",
            "requestTime": "01/Jan/2026:00:00:00 +0000",
            "path": f"/prod{path}",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": "prod",
            "domainPrefix": "abc123",
            "requestTimeEpoch": 1767225600000,
            "requestId": str(uuid.uuid4()),
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": "123456789012",
                "cognitoIdentityId": None,
                "caller": "AIDAEXAMPLE",
                "sourceIp": "203.0.113.7",
                "principalOrgId": None,
                "accessKey": "AKIAEXAMPLE",
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": user_arn,
                "userAgent": "aws-cli/2",
                "user": "AIDAEXAMPLE",
            },
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "apiId": "abc123",
        },
        "body": None if body is None else body if isinstance(body, str) else json.dumps(body),
        "isBase64Encoded": False,
    }
