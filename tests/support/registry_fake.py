"""An in-memory ModelRegistry (it executes the same lifecycle decisions as DynamoRegistry) and a
hand-built ModelTrained event, for tests that must not depend on the trainer."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from mlops.contract import SUPPORTED_METRICS, parse_contract
from mlops.events import DatasetRef, ModelTrained
from mlops.layout import artifact_key, baseline_key
from mlops.ports import ObjectStore
from mlops.registry.engine import RegistryEngine, StoredRequest
from mlops.registry.lifecycle import Plan
from mlops.registry.names import require_alias
from mlops.registry.records import AliasMove, AuditAction, AuditEvent, ModelRecord, ModelVersion, VersionStatus


def contract_document(
    name: str = "churn", *, metric: str = "roc_auc", threshold: float | None = 0.7, min_improvement: float = 0.0
) -> dict[str, Any]:
    classification = metric in {"accuracy", "f1_macro", "roc_auc", "log_loss"}
    bound = "at_least" if SUPPORTED_METRICS[metric][1] else "at_most"
    document: dict[str, Any] = {
        "name": name,
        "problem_type": "classification" if classification else "regression",
        "target": {"name": "label", "classes": ["no", "yes"]} if classification else {"name": "label"},
        "features": [{"name": "x", "type": "numeric"}, {"name": "plan", "type": "categorical"}],
        "estimator": {"name": "logistic_regression" if classification else "ridge", "params": {}},
        "metric": {"name": metric, bound: threshold, "min_improvement": min_improvement},
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


class InMemoryRegistry(RegistryEngine):
    """ModelRegistry in memory: the engine's decisions (mlops.registry.lifecycle) applied to dicts
    under a lock, with the conditions DynamoRegistry's transactions carry. No rule of its own.
    `artifacts` is where the production gate reads artifacts."""

    def __init__(self, artifacts: ObjectStore | None = None) -> None:
        super().__init__(artifacts)
        self._lock = threading.RLock()
        self.models: dict[str, ModelRecord] = {}
        self.versions: dict[tuple[str, int], ModelVersion] = {}
        self.claims: dict[tuple[str, str], int] = {}
        self.audit: dict[str, dict[int, AuditEvent]] = {}
        self.moves: dict[str, list[AliasMove]] = {}
        self.requests: dict[tuple[str, str], tuple[str, str]] = {}

    def _load_model(self, name: str) -> ModelRecord | None:
        with self._lock:
            return self.models.get(name)

    def _load_version(self, name: str, number: int) -> ModelVersion | None:
        with self._lock:
            return self.versions.get((name, number))

    def _load_claim(self, name: str, sha256: str) -> int | None:
        with self._lock:
            return self.claims.get((name, sha256))

    def _load_request(self, name: str, key_hash: str) -> tuple[str, str] | None:
        with self._lock:
            return self.requests.get((name, key_hash))

    def _commit(self, plan: Plan, request: StoredRequest | None) -> bool:
        name = plan.name
        with self._lock:
            current = self.models.get(name)
            if plan.model_before is None:
                if current is not None:
                    return False
            elif current is None or current.audit_seq != plan.model_before.audit_seq:
                return False
            for before, after in plan.versions:
                stored = self.versions.get((name, after.version))
                if (stored is not None) if before is None else (stored is None or stored.status != before.status):
                    return False
            chain = self.audit.setdefault(name, {})
            if plan.claim is not None and (name, plan.claim) in self.claims:
                return False
            if any(event.seq in chain for event in plan.events):
                return False
            if request is not None and (name, request.key_hash) in self.requests:
                return False
            self.models[name] = plan.model_after
            for _, after in plan.versions:
                self.versions[(name, after.version)] = after
            if plan.claim is not None:
                created = next(after for before, after in plan.versions if before is None)
                self.claims[(name, plan.claim)] = created.version
            for event in plan.events:
                chain[event.seq] = event
            self.moves.setdefault(name, []).extend(plan.moves)
            if request is not None:
                self.requests[(name, request.key_hash)] = (request.fingerprint, request.result)
            return True

    def list_models(self) -> list[ModelRecord]:
        with self._lock:
            return [self.models[name] for name in sorted(self.models)]

    def list_versions(self, name: str) -> list[ModelVersion]:
        record = self.get_model(name)
        with self._lock:
            return [self.versions[(name, v)] for v in range(1, record.latest_version + 1)]

    def alias_history(self, name: str, alias: str = "production") -> list[AliasMove]:
        require_alias(alias)
        self.get_model(name)
        with self._lock:
            return [m for m in self.moves.get(name, []) if m.alias == alias]

    def served_at(self, name: str, at: datetime, alias: str = "production") -> AliasMove | None:
        earlier = [m for m in self.alias_history(name, alias) if m.at <= at]
        return earlier[-1] if earlier else None

    def audit_events(self, name: str) -> list[AuditEvent]:
        self.get_model(name)
        with self._lock:
            chain = self.audit.get(name, {})
            return [chain[seq] for seq in sorted(chain)]


def api_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    user_arn: str = "arn:aws:iam::123456789012:user/alice",
    resource: str | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event (IAM-authorised) as the models_api function receives it."""
    path, _, query_text = path.partition("?")
    query = dict(parse_qsl(query_text)) or None
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
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
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


def default_artifact(event: ModelTrained) -> bytes:
    """The bytes `trained_event` hashed when no artifact was given (so a test can upload them)."""
    data = artifact_bytes(f"{event.model_name}-{event.metrics[event.metric_name]!r}")
    assert hashlib.sha256(data).hexdigest() == event.artifact_sha256, "event was built with explicit bytes"
    return data


def assert_registry_invariants(registry: Any, s3: Any | None = None) -> None:
    """After any sequence of changes, per model:
    - at most one version is in production: the one the model item points at, the top of its
      production history and the target of the last `production` alias move;
    - that version's artifact exists and its bytes hash to the registered digest (when `s3`);
    - replaying the audit trail's state changes gives exactly the stored statuses and pointer.
    """
    for record in registry.list_models():
        name = record.name
        versions = registry.list_versions(name)
        in_production = [v.version for v in versions if v.status is VersionStatus.PRODUCTION]
        expected = [] if record.production_version is None else [record.production_version]
        assert in_production == expected, f"{name}: production versions {in_production}, pointer {expected}"
        moves = registry.alias_history(name, "production")
        if record.production_version is not None:
            assert record.production_history[-1] == record.production_version
            assert moves, f"{name}: no production alias history"
            assert moves[-1].to_version == record.production_version, f"{name}: alias history {moves}"
            if s3 is not None:
                artifact = registry.get_version(name, record.production_version).artifact
                body = s3.get_object(Bucket=artifact.bucket, Key=artifact.key)["Body"].read()
                assert hashlib.sha256(body).hexdigest() == artifact.sha256, f"{name}: production artifact digest"
        statuses: dict[int, str] = {}
        production: int | None = None
        for event in registry.audit_events(name):
            if "status" in event.after and event.version is not None:
                statuses[event.version] = event.after["status"]
            if event.action in (AuditAction.PROMOTED, AuditAction.ROLLED_BACK):
                production = event.after["production_version"]
        assert statuses == {v.version: v.status.value for v in versions}, f"{name}: audit replay {statuses}"
        assert production == record.production_version, f"{name}: audit says production v{production}"
