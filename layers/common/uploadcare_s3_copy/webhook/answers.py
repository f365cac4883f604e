"""The webhook's answers to Uploadcare (docs/design.md, "Webhook function: the answers").

202 {"status": "queued", "uuid": ...}                 valid signature, file.uploaded / file.deleted / file.infected
                                                      (or an infected file.info_updated), valid file: one request
200 {"status": "ignored", "reason": ...}              other event, or filtered out (SKIP_DERIVED): nothing queued
401/400/413/405 {"status": "rejected", "reason", "message"}   bad signature / bad payload / too big / not POST
503 {"status": "unavailable", "reason", "message"}    queue or Secrets Manager unavailable: Uploadcare retries
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class WebhookReason(StrEnum):
    """Why a webhook was not queued: the `reason` of an answer body, the log line and the metric dimension."""

    METHOD_NOT_ALLOWED = "method_not_allowed"  # 405
    BODY_TOO_LARGE = "body_too_large"  # 413
    BAD_ENCODING = "bad_encoding"  # 400: isBase64Encoded but not valid base64
    SIGNATURE_MISSING = "signature_missing"  # 401
    SIGNATURE_MALFORMED = "signature_malformed"  # 401: not `v1=<64 lowercase hex digits>`
    SIGNATURE_MISMATCH = "signature_mismatch"  # 401, after one rate-limited re-read of the secret
    NOT_UTF8 = "not_utf8"  # 400
    NOT_JSON = "not_json"  # 400: not JSON, or not a JSON object
    INVALID_PAYLOAD = "invalid_payload"  # 400: a field is missing or malformed; the message names it
    OTHER_EVENT = "other_event"  # 200 ignored: not file.uploaded, file.deleted, file.infected, infected info_updated
    DERIVED_FILE = "derived_file"  # 200 ignored: SKIP_DERIVED and initiator.detail.source_file_uuid is set
    QUEUE_UNAVAILABLE = "queue_unavailable"  # 503
    SECRET_UNAVAILABLE = "secret_unavailable"  # noqa: S105 - 503; a reason code, not a password


@dataclass(frozen=True)
class WebhookAnswer:
    """One HTTP answer to Uploadcare, and the metric that counts it."""

    status: int
    body: dict[str, str]
    metric: str
    reason: WebhookReason | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def to_http(self) -> dict[str, Any]:
        """The HTTP API (payload format 2.0) Lambda proxy response."""
        return {
            "statusCode": self.status,
            "headers": {"content-type": "application/json", **self.headers},
            "body": json.dumps(self.body, separators=(",", ":")),
            "isBase64Encoded": False,
        }


def queued(uuid: str) -> WebhookAnswer:
    return WebhookAnswer(202, {"status": "queued", "uuid": uuid}, "WebhookQueued")


def ignored(reason: WebhookReason, text: str) -> WebhookAnswer:
    return WebhookAnswer(200, {"status": "ignored", "reason": text}, "WebhookIgnored", reason)


def rejected(status: int, reason: WebhookReason, message: str, headers: dict[str, str] | None = None) -> WebhookAnswer:
    body = {"status": "rejected", "reason": str(reason), "message": message}
    return WebhookAnswer(status, body, "WebhookRejected", reason, headers or {})


def unavailable(reason: WebhookReason, message: str) -> WebhookAnswer:
    body = {"status": "unavailable", "reason": str(reason), "message": message}
    return WebhookAnswer(503, body, "WebhookFailed", reason)


class Refused(Exception):
    """Raised by a step that has decided the answer (anything but 202); carries that answer."""

    def __init__(self, answer: WebhookAnswer) -> None:
        super().__init__(answer.body.get("message", answer.body.get("reason", "")))
        self.answer = answer
