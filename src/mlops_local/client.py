"""An HTTPS client for the suite's API: API-key calls for inference, SigV4-signed calls for admin.

Uses only the standard library and botocore's signer, exactly what any ordinary client does.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any
    headers: dict[str, str]


class ApiClient:
    def __init__(
        self,
        api_url: str,
        *,
        ca_bundle: str | None = None,
        api_key: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        region: str = "us-east-1",
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key
        self.credentials = Credentials(access_key, secret_key, session_token) if access_key and secret_key else None
        self.region = region
        self.ssl = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()

    def predict(self, model: str, records: list[dict[str, Any]], *, api_key: str | None = None) -> ApiResponse:
        key = self.api_key if api_key is None else api_key
        headers = {"x-api-key": key} if key else {}
        return self.request("POST", f"/models/{model}/predict", {"records": records}, headers=headers)

    def admin(self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None) -> ApiResponse:
        """A call signed with SigV4 for `execute-api`, as the AWS SDKs sign IAM-authorised calls; `headers`
        are sent too (e.g. Idempotency-Key)."""
        if self.credentials is None:
            raise ValueError("admin calls need credentials")
        url = self.api_url + path
        data = json.dumps(body).encode() if body is not None else b""
        request = AWSRequest(
            method=method, url=url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
        )
        request.headers["Host"] = urlsplit(url).netloc
        SigV4Auth(self.credentials, "execute-api", self.region).add_auth(request)
        return self._send(method, url, data, dict(request.headers.items()))

    def request(
        self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None
    ) -> ApiResponse:
        data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        return self._send(method, self.api_url + path, data, {"Content-Type": "application/json", **(headers or {})})

    def _send(self, method: str, url: str, data: bytes, headers: dict[str, str]) -> ApiResponse:
        request = urllib.request.Request(url, data=data or None, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, context=self.ssl, timeout=120) as response:  # noqa: S310
                return ApiResponse(response.status, _decode(response.read()), dict(response.headers.items()))
        except urllib.error.HTTPError as error:
            return ApiResponse(error.code, _decode(error.read()), dict(error.headers.items()))


def _decode(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode(errors="replace")
