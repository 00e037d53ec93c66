"""Local mode: an approver issues a prediction client's API key through the models API (a retry with
the same Idempotency-Key issues no second key), the client predicts with it, and once it is revoked
the API refuses it (403)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_local.client import ApiClient
from mlops_local.runtime import LocalRuntime
from mlops_local.sample_data import churn_features, records

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-runtime")]


def test_local_client_key_is_issued_used_and_refused_once_revoked(tmp_path: Path) -> None:
    runtime = LocalRuntime(tmp_path / "local", schedules=False, persist=False)
    endpoints = runtime.start()
    try:
        admin = ApiClient(
            endpoints.api_url,
            ca_bundle=endpoints.ca_bundle,
            access_key=endpoints.access_key_id,
            secret_key=endpoints.secret_access_key,
        )
        record = records(churn_features(1, seed=3))
        # what the function answers a known key (no model is trained here: the answer is the handler's own)
        stack_key = ApiClient(endpoints.api_url, ca_bundle=endpoints.ca_bundle, api_key=endpoints.api_key)
        expected = stack_key.predict("churn", record)
        assert expected.status != 403, expected.body

        # WHEN an approver (the local admin) issues a key for a client, and retries (same Idempotency-Key)
        retry = {"Idempotency-Key": "onboard-acme"}
        issued = admin.admin("POST", "/clients", {"client": "acme", "reason": "onboarding"}, headers=retry)
        assert issued.status == 201, issued.body
        again = admin.admin("POST", "/clients", {"client": "acme", "reason": "onboarding"}, headers=retry)
        assert (again.status, again.headers.get("Idempotent-Replayed")) == (201, "true"), again.body
        assert (again.body["key_id"], again.body["value"]) == (issued.body["key_id"], None)
        client = ApiClient(endpoints.api_url, ca_bundle=endpoints.ca_bundle, api_key=issued.body["value"])
        # THEN the client's requests pass API Gateway and reach the function
        used = client.predict("churn", record)
        assert (used.status, used.body) == (expected.status, expected.body)
        listed = admin.admin("GET", "/clients")
        assert [(k["client"], k["key_id"]) for k in listed.body] == [("acme", issued.body["key_id"])]

        # WHEN the key is revoked
        revoked = admin.admin("POST", f"/clients/{issued.body['key_id']}/revoke", {"reason": "contract ended"})
        assert revoked.status == 200, revoked.body
        # THEN it is refused at once, the stack's own key still works, and the value was never logged
        refused = client.predict("churn", record)
        assert (refused.status, refused.body) == (403, {"message": "Forbidden"})
        assert stack_key.predict("churn", record).status == expected.status
        logs = "".join(path.read_text() for path in Path(endpoints.log_dir).glob("*.log"))
        assert issued.body["fingerprint"] in logs
        assert issued.body["value"] not in logs
    finally:
        runtime.stop()
