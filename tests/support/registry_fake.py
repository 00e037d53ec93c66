"""An in-memory ModelRegistry (same rules as DynamoRegistry: policy, transitions, rollback stack)
and a hand-built ModelTrained event, for tests that must not depend on the trainer."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from mlops.contract import parse_contract
from mlops.errors import BadRequestError, ConflictError, ModelNotFoundError, VersionNotFoundError
from mlops.events import DatasetRef, ModelTrained
from mlops.layout import artifact_key, baseline_key
from mlops.registry.policy import apply_promotion_mode, decide_promotion
from mlops.registry.records import (
    AliasMove,
    AuditAction,
    AuditEvent,
    Change,
    ModelRecord,
    ModelVersion,
    RegistrationResult,
    VersionStatus,
    candidate_from_trained,
)
from mlops.registry.service import IdempotencyKeyReusedError, require_alias, require_model_name, require_version
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
        self.moves: dict[str, list[AliasMove]] = {}
        self.requests: dict[tuple[str, str], tuple[str, Change]] = {}

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
        contract = parse_contract(trained.contract)
        metric = contract.metric
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
            version = candidate_from_trained(trained, number, now)
            record = record.model_copy(update={"latest_version": number, "updated_at": now})
            self.claims[(name, trained.artifact_sha256)] = number
            self._audit(
                name, AuditAction.REGISTERED, actor, number, after={"status": "candidate"}, request_id=request_id
            )
            production = record.production_version
            champion = self.versions[(name, production)] if production is not None else None
            decision = decide_promotion(
                metric, version.metrics, champion.metrics if champion else None, champion_version=production
            )
            decision = apply_promotion_mode(decision, contract.promotion.mode)
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
                    self._audit(
                        name,
                        AuditAction.ARCHIVED,
                        actor,
                        champion.version,
                        after={"status": "archived"},
                        request_id=request_id,
                    )
                self._audit(
                    name,
                    AuditAction.PROMOTED,
                    actor,
                    number,
                    after={"status": "production", "production_version": number},
                    reason=decision.reason,
                    request_id=request_id,
                )
                self._move(name, "production", production, number, actor, decision.reason, request_id)
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

    def _move(self, name: str, alias: str, old: int | None, new: int, actor: str, reason: str, request_id: str) -> None:
        self.moves.setdefault(name, []).append(
            AliasMove(
                model_name=name,
                alias=alias,
                at=datetime.now(UTC),
                from_version=old,
                to_version=new,
                actor=actor,
                reason=reason,
                request_id=request_id,
                event_id=str(uuid.uuid4()),
            )
        )

    def _idempotent(self, name: str, key: str, fingerprint: tuple[Any, ...], work: Any) -> Change:
        with self._lock:
            if key and (name, key) in self.requests:
                seen, change = self.requests[(name, key)]
                if seen != repr(fingerprint):
                    raise IdempotencyKeyReusedError("this idempotency key was used for a different request")
                return change.model_copy(update={"replayed": True})
            change = work()
            if key:
                self.requests[(name, key)] = (repr(fingerprint), change)
            return change

    def rollback(
        self,
        name: str,
        *,
        actor: str,
        reason: str,
        request_id: str = "",
        to_version: int | None = None,
        idempotency_key: str = "",
    ) -> Change:
        def work() -> Change:
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
            restored = restored.model_copy(update={"status": VersionStatus.PRODUCTION})
            self.versions[(name, target)] = restored
            new = record.model_copy(
                update={"production_version": target, "production_history": history, "updated_at": datetime.now(UTC)}
            )
            self.models[name] = new
            self._audit(
                name,
                AuditAction.ARCHIVED,
                actor,
                current.version,
                after={"status": "archived"},
                reason=reason,
                request_id=request_id,
            )
            self._audit(
                name,
                AuditAction.ROLLED_BACK,
                actor,
                target,
                before={"production_version": current.version},
                after={"production_version": target, "status": "production"},
                reason=reason,
                request_id=request_id,
            )
            self._move(name, "production", current.version, target, actor, reason, request_id)
            return Change(action="rolled_back", model=new, version=restored, previous_production=current.version)

        return self._idempotent(name, idempotency_key, ("rollback", actor, to_version, reason), work)

    def _set_status(
        self,
        name: str,
        number: int,
        target: VersionStatus,
        action: AuditAction,
        actor: str,
        reason: str,
        request_id: str,
        idempotency_key: str,
    ) -> Change:
        require_version(number)

        def work() -> Change:
            version = self.get_version(name, number)
            if version.status is VersionStatus.PRODUCTION and target is VersionStatus.ARCHIVED:
                raise ConflictError(f"{name} v{number} is in production; promote another version or roll back")
            check_transition(version.status, target)
            changed = version.model_copy(update={"status": target})
            self.versions[(name, number)] = changed
            self._audit(
                name,
                action,
                actor,
                number,
                before={"status": version.status.value},
                after={"status": target.value},
                reason=reason,
                request_id=request_id,
            )
            return Change(
                action=action.value, model=self.models[name], version=changed, from_status=version.status.value
            )

        return self._idempotent(name, idempotency_key, (action.value, actor, number, reason), work)

    def approve(
        self, name: str, version: int, *, actor: str, reason: str, request_id: str = "", idempotency_key: str = ""
    ) -> Change:
        return self._set_status(
            name, version, VersionStatus.APPROVED, AuditAction.APPROVED, actor, reason, request_id, idempotency_key
        )

    def reject(
        self, name: str, version: int, *, actor: str, reason: str, request_id: str = "", idempotency_key: str = ""
    ) -> Change:
        return self._set_status(
            name, version, VersionStatus.REJECTED, AuditAction.REJECTED, actor, reason, request_id, idempotency_key
        )

    def archive(
        self, name: str, version: int, *, actor: str, reason: str, request_id: str = "", idempotency_key: str = ""
    ) -> Change:
        return self._set_status(
            name, version, VersionStatus.ARCHIVED, AuditAction.ARCHIVED, actor, reason, request_id, idempotency_key
        )

    def promote(
        self, name: str, version: int, *, actor: str, reason: str, request_id: str = "", idempotency_key: str = ""
    ) -> Change:
        require_version(version)

        def work() -> Change:
            record = self.get_model(name)
            candidate = self.get_version(name, version)
            if candidate.status is VersionStatus.PRODUCTION:
                raise ConflictError(f"{name} v{version} is already the production version")
            check_transition(candidate.status, VersionStatus.PRODUCTION)
            if candidate.status is not VersionStatus.APPROVED:
                raise ConflictError(f"{name} v{version} is {candidate.status.value}; approve it before promoting it")
            production = record.production_version
            if production is not None:
                champion = self.versions[(name, production)]
                self.versions[(name, production)] = champion.model_copy(update={"status": VersionStatus.ARCHIVED})
                self._audit(
                    name, AuditAction.ARCHIVED, actor, production, after={"status": "archived"}, request_id=request_id
                )
            promoted = candidate.model_copy(update={"status": VersionStatus.PRODUCTION})
            self.versions[(name, version)] = promoted
            new = record.model_copy(
                update={
                    "production_version": version,
                    "production_history": [*record.production_history, version],
                    "updated_at": datetime.now(UTC),
                }
            )
            self.models[name] = new
            self._audit(
                name,
                AuditAction.PROMOTED,
                actor,
                version,
                after={"status": "production", "production_version": version},
                reason=reason,
                request_id=request_id,
            )
            self._move(name, "production", production, version, actor, reason, request_id)
            return Change(action="promoted", model=new, version=promoted, previous_production=production)

        return self._idempotent(name, idempotency_key, ("promote", actor, version, reason), work)

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str,
        reason: str,
        request_id: str = "",
        idempotency_key: str = "",
    ) -> Change:
        require_alias(alias)
        require_version(version)
        if alias == "production":
            raise BadRequestError("the production alias moves only by promote or rollback")

        def work() -> Change:
            record = self.get_model(name)
            target = self.get_version(name, version)
            if target.status in (VersionStatus.REJECTED, VersionStatus.ARCHIVED):
                raise ConflictError(f"{name} v{version} is {target.status.value}; an alias cannot point at it")
            current = record.aliases.get(alias)
            if current == version:
                raise ConflictError(f"alias {alias} of {name} already points at v{version}")
            new = record.model_copy(update={"aliases": {**record.aliases, alias: version}})
            self.models[name] = new
            self._audit(
                name,
                AuditAction.ALIAS_MOVED,
                actor,
                version,
                before={"alias": alias, "version": current},
                after={"alias": alias, "version": version},
                reason=reason,
                request_id=request_id,
            )
            self._move(name, alias, current, version, actor, reason, request_id)
            return Change(action="alias_moved", model=new, version=target, previous_version=current)

        return self._idempotent(name, idempotency_key, ("set_alias", actor, alias, version, reason), work)

    def alias_history(self, name: str, alias: str = "production") -> list[AliasMove]:
        self.get_model(name)
        with self._lock:
            return [m for m in self.moves.get(name, []) if m.alias == alias]

    def served_at(self, name: str, at: datetime, alias: str = "production") -> AliasMove | None:
        earlier = [m for m in self.alias_history(name, alias) if m.at <= at]
        return earlier[-1] if earlier else None

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
