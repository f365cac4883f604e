"""Helpers for the webhook tests: variants of the sample events in events/ (the one source of truth)."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from devkit.make_events import SAMPLE_SIGNING_SECRET, body_text
from tests.conftest import load_event
from uploadcare_s3_copy.observability import metrics
from uploadcare_s3_copy.secrets import KeyStore
from uploadcare_s3_copy.webhook import WEBHOOK_SECRET_FIELDS, WebhookApp
from uploadcare_s3_copy.webhook.settings import DEFAULT_MAX_BODY_BYTES, WebhookSettings
from uploadcare_s3_copy.webhook.signing import sign

FILE_UPLOADED = "webhook-file-uploaded.json"
OTHER_EVENT = "webhook-other-event.json"
BAD_SIGNATURE = "webhook-bad-signature.json"
FILE_DELETED = "webhook-file-deleted.json"
FILE_INFECTED = "webhook-file-infected.json"
INFO_UPDATED_INFECTED = "webhook-file-info-updated-infected.json"
METRICS_NAMESPACE = "UploadcareS3CopyTest"


def powertools_for_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Service name and metrics namespace as the template sets them (clear `metrics` after the test).

    The shared Metrics object read its namespace when it was created, possibly before this test: set it too.
    """
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "uploadcare-s3-copy-webhook")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE)
    monkeypatch.setattr(metrics, "namespace", METRICS_NAMESPACE)


def sample_payload(name: str = FILE_UPLOADED) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(load_event(name)["body"])
    return payload


def event_for(
    body: dict[str, Any] | bytes | str,
    *,
    secret: str | None = SAMPLE_SIGNING_SECRET,
    base64_encoded: bool = False,
    method: str = "POST",
) -> dict[str, Any]:
    """The sample `file.uploaded` event carrying `body`, signed over its raw bytes with `secret` (None: unsigned)."""
    if isinstance(body, dict):
        body = body_text(body)
    raw = body.encode("utf-8") if isinstance(body, str) else body
    event: dict[str, Any] = copy.deepcopy(load_event(FILE_UPLOADED))
    event["body"] = base64.b64encode(raw).decode("ascii") if base64_encoded else raw.decode("utf-8")
    event["isBase64Encoded"] = base64_encoded
    event["headers"].pop("x-uc-signature")
    if secret is not None:
        event["headers"]["x-uc-signature"] = sign(secret, raw)
    event["requestContext"]["http"]["method"] = method
    return event


def with_signature(event: dict[str, Any], value: str | None) -> dict[str, Any]:
    changed: dict[str, Any] = copy.deepcopy(event)
    changed["headers"].pop("x-uc-signature", None)
    if value is not None:
        changed["headers"]["x-uc-signature"] = value
    return changed


def answer_body(response: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(response["body"])
    return body


class RecordingQueue:
    """The copy queue at the process edge: records what would be sent, or fails like an unreachable queue."""

    def __init__(self, error: Exception | None = None) -> None:
        self.messages: list[str] = []
        self._error = error

    def send(self, message: str) -> None:
        if self._error is not None:
            raise self._error
        self.messages.append(message)


class SecretsStub:
    """Secrets Manager behind Powertools' cache, for `KeyStore(fetch=...)`: a read is served from the cache unless
    forced (or first); `value` is what Secrets Manager holds now (an exception: the read fails)."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.calls: list[bool] = []  # the `force` flag of every call
        self.fetches = 0  # reads that reached "Secrets Manager"
        self._cached: Any = None

    def __call__(self, secret_id: str, force: bool) -> Any:
        self.calls.append(force)
        if force or self._cached is None:
            self.fetches += 1
            if isinstance(self.value, Exception):
                raise self.value
            self._cached = self.value
        return self._cached


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def signing_secret_value(secret: str = SAMPLE_SIGNING_SECRET) -> dict[str, str]:
    return {"public_key": "demopublickey", "secret_key": "demosecretkey", "webhook_signing_secret": secret}


def unit_app(
    *,
    secrets: SecretsStub | None = None,
    queue: RecordingQueue | None = None,
    clock: ManualClock | None = None,
    skip_derived: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> WebhookApp:
    """A webhook app with the real key store and logic, and stand-ins only where it would touch AWS."""
    keys = KeyStore(
        "uc-keys",
        required=WEBHOOK_SECRET_FIELDS,
        fetch=secrets or SecretsStub(signing_secret_value()),
        clock=clock or ManualClock(),
    )
    settings = WebhookSettings(
        secret_id="uc-keys",
        copy_queue_url="http://localhost/queue/copy",
        skip_derived=skip_derived,
        max_body_bytes=max_body_bytes,
    )
    return WebhookApp(settings=settings, keys=keys, queue=queue if queue is not None else RecordingQueue())
