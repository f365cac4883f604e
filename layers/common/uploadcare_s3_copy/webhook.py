"""The webhook function: Uploadcare `file.uploaded` in, one copy request on the queue out.

design.md, "Webhook function: answers":
    202 {"status": "queued", "uuid": ...}                 valid signature, file.uploaded, valid file: one copy request
    200 {"status": "ignored", "reason": ...}              other event, or filtered out (SKIP_DERIVED): nothing queued
    401/400/413/405 {"status": "rejected", "reason", "message"}   bad signature / bad payload / too big / not POST
    503 {"status": "unavailable", "reason", "message"}    queue or Secrets Manager unavailable: Uploadcare retries
Steps run in this order, so unauthenticated bytes are measured and signed-checked but never parsed:
size cap, signature (over the raw bytes, base64-decoded first), then JSON and field validation.
A signing secret missing from the secret is a deployment error: it is logged and raised (never "accept unsigned").

The decisions are plain functions (`read_body`, `check_signature`, `parse_payload`, `hook_event`,
`copy_request_from`, `derived_from`); `WebhookApp` wires them to the injected adapters (the key store and the
queue), logs one line per answer and counts it. Cold start matters here: this module imports neither the
Uploadcare REST client nor anything heavier than boto3 and Powertools' core.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import boto3
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from uploadcare_s3_copy import signature
from uploadcare_s3_copy.config import WebhookSettings, load_webhook_settings
from uploadcare_s3_copy.copy_request import UUID_PATTERN, CopyRequest
from uploadcare_s3_copy.observability import logger, metrics
from uploadcare_s3_copy.secrets import KeyStore, SecretConfigError, SecretUnavailableError, UploadcareKeys

FILE_UPLOADED = "file.uploaded"
# The webhook needs only the signing secret; the REST keys in the same secret are the copier's business.
WEBHOOK_SECRET_FIELDS = ("webhook_signing_secret",)
# Fail fast and let Uploadcare retry rather than outlive the function's timeout (5 s in template.yaml): a SendMessage
# takes tens of milliseconds, so two attempts of at most 1 s connect + 1 s read, with standard back-off, fit.
SQS_CLIENT_CONFIG = Config(connect_timeout=1, read_timeout=1, retries={"mode": "standard", "total_max_attempts": 2})
_MAX_EVENT_NAME = 64  # an event name is echoed in the answer and the log; Uploadcare's are ~15 characters
_OPTIONAL_TEXT_FIELDS = ("original_filename", "mime_type", "original_file_url")


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
    OTHER_EVENT = "other_event"  # 200 ignored: not file.uploaded
    DERIVED_FILE = "derived_file"  # 200 ignored: SKIP_DERIVED and initiator.detail.source_file_uuid is set
    QUEUE_UNAVAILABLE = "queue_unavailable"  # 503
    SECRET_UNAVAILABLE = "secret_unavailable"  # noqa: S105 - 503; a reason code, not a password


@dataclass(frozen=True)
class Answer:
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


def queued(uuid: str) -> Answer:
    return Answer(202, {"status": "queued", "uuid": uuid}, "WebhookQueued")


def ignored(reason: WebhookReason, text: str) -> Answer:
    return Answer(200, {"status": "ignored", "reason": text}, "WebhookIgnored", reason)


def rejected(status: int, reason: WebhookReason, message: str, headers: dict[str, str] | None = None) -> Answer:
    body = {"status": "rejected", "reason": str(reason), "message": message}
    return Answer(status, body, "WebhookRejected", reason, headers or {})


def unavailable(reason: WebhookReason, message: str) -> Answer:
    return Answer(503, {"status": "unavailable", "reason": str(reason), "message": message}, "WebhookFailed", reason)


class Refused(Exception):
    """Raised by a step that has decided the answer (anything but 202); carries that answer."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.body.get("message", answer.body.get("reason", "")))
        self.answer = answer


def _too_large(max_body_bytes: int) -> Refused:
    return Refused(rejected(413, WebhookReason.BODY_TOO_LARGE, f"body is larger than the {max_body_bytes}-byte limit"))


def _invalid(message: str) -> Refused:
    return Refused(rejected(400, WebhookReason.INVALID_PAYLOAD, message))


# --- the decisions ---------------------------------------------------------------------------------------------


def request_method(event: Mapping[str, Any]) -> str:
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, Mapping) else None
    method = http.get("method") if isinstance(http, Mapping) else None
    return method.upper() if isinstance(method, str) else ""


def header(event: Mapping[str, Any], name: str) -> str | None:
    """A request header by lower-case name (HTTP API 2.0 lower-cases them; other sources may not)."""
    headers = event.get("headers")
    if not isinstance(headers, Mapping):
        return None
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name and isinstance(value, str):
            return value
    return None


def max_base64_length(max_body_bytes: int) -> int:
    """Any valid base64 text longer than this decodes to more than `max_body_bytes` bytes."""
    return 4 * ((max_body_bytes + 2) // 3)


def read_body(event: Mapping[str, Any], max_body_bytes: int) -> bytes:
    """The raw body bytes as Uploadcare sent them, within the size cap; refuses before decoding what is too big."""
    raw = event.get("body") or ""
    if not isinstance(raw, str):
        raise Refused(rejected(400, WebhookReason.BAD_ENCODING, "body is not text"))
    if event.get("isBase64Encoded") is True:
        if len(raw) > max_base64_length(max_body_bytes):
            raise _too_large(max_body_bytes)
        try:
            body = base64.b64decode(raw, validate=True)
        except ValueError:  # binascii.Error, or text that is not even ASCII (b64decode refuses it with ValueError)
            raise Refused(rejected(400, WebhookReason.BAD_ENCODING, "body is not valid base64")) from None
    else:
        if len(raw) > max_body_bytes:  # every character is at least one byte: no need to encode to know
            raise _too_large(max_body_bytes)
        try:
            body = raw.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate cannot have come from UTF-8 bytes
            raise Refused(rejected(400, WebhookReason.NOT_UTF8, "body is not UTF-8")) from None
    if len(body) > max_body_bytes:
        raise _too_large(max_body_bytes)
    return body


class SigningKeys(Protocol):
    """What the signature check needs of `uploadcare_s3_copy.secrets.KeyStore`."""

    def get(self) -> UploadcareKeys: ...

    def refresh(self) -> UploadcareKeys | None: ...


def check_signature(value: str | None, body: bytes, keys: SigningKeys) -> None:
    """Accepts only the whole `v1=` value for `body`; re-reads the secret (at most once a minute) before refusing.

    A missing or malformed value is refused without touching the secret: it can match no secret at all.
    Raises `Refused` (401), `SecretUnavailableError` (-> 503) or `SecretConfigError` (a deployment error).
    """
    if not value:
        raise Refused(rejected(401, WebhookReason.SIGNATURE_MISSING, "X-Uc-Signature header is missing"))
    if not signature.is_well_formed(value):
        raise Refused(
            rejected(
                401,
                WebhookReason.SIGNATURE_MALFORMED,
                "X-Uc-Signature is not of the form v1=<64 lowercase hex digits>",
            )
        )
    if signature.verify(value, body, keys.get().webhook_signing_secret):
        return
    refreshed = keys.refresh()  # None when the secret was re-read less than a minute ago
    if refreshed is not None and signature.verify(value, body, refreshed.webhook_signing_secret):
        logger.info("signature matched the re-read signing secret (rotated)")
        return
    raise Refused(rejected(401, WebhookReason.SIGNATURE_MISMATCH, "X-Uc-Signature does not match the body"))


def parse_payload(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(rejected(400, WebhookReason.NOT_UTF8, "body is not UTF-8")) from None
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        raise Refused(rejected(400, WebhookReason.NOT_JSON, "body is not JSON")) from None
    if not isinstance(payload, dict):
        raise Refused(rejected(400, WebhookReason.NOT_JSON, "body is not a JSON object"))
    return payload


def hook_event(payload: Mapping[str, Any]) -> str:
    hook = payload.get("hook")
    if not isinstance(hook, Mapping):
        raise _invalid("hook is missing or not an object")
    event = hook.get("event")
    if not isinstance(event, str) or not event:
        raise _invalid("hook.event is missing or not a string")
    return event[:_MAX_EVENT_NAME]


def file_problems(data: Any) -> list[str]:
    """What is wrong with a webhook's `data` (the file object), one phrase per field; empty when it is usable."""
    if not isinstance(data, Mapping):
        return ["data is missing or not an object"]
    problems: list[str] = []
    uuid = data.get("uuid")
    if uuid is None:
        problems.append("data.uuid is missing")
    elif not isinstance(uuid, str) or not UUID_PATTERN.fullmatch(uuid):
        problems.append("data.uuid is not a lowercase canonical file UUID")
    size = data.get("size")
    if size is None:
        problems.append("data.size is missing")
    elif isinstance(size, bool) or not isinstance(size, int) or size < 0:
        problems.append("data.size is not a non-negative integer")
    problems.extend(
        f"data.{name} is not a string"
        for name in _OPTIONAL_TEXT_FIELDS
        if data.get(name) is not None and not isinstance(data.get(name), str)
    )
    return problems


def copy_request_from(payload: Mapping[str, Any]) -> CopyRequest:
    """The copy request for a valid `file.uploaded` payload; `Refused` (400) naming every bad field otherwise."""
    data = payload.get("data")
    problems = file_problems(data)
    if problems or not isinstance(data, Mapping):
        raise _invalid("; ".join(problems))
    cdn_url = payload.get("file")
    return CopyRequest.from_file_info(
        dict(data), event=FILE_UPLOADED, origin="webhook", cdn_url=cdn_url if isinstance(cdn_url, str) else ""
    )


def derived_from(payload: Mapping[str, Any]) -> str | None:
    """`initiator.detail.source_file_uuid`: set when the upload was made from another file (a copy, an add-on)."""
    initiator = payload.get("initiator")
    detail = initiator.get("detail") if isinstance(initiator, Mapping) else None
    source = detail.get("source_file_uuid") if isinstance(detail, Mapping) else None
    return source if isinstance(source, str) and source else None


# --- the adapters and the wiring -------------------------------------------------------------------------------


class QueueUnavailableError(Exception):
    """The copy request could not be sent; the message says why (an AWS error code or a connection problem)."""


class CopyQueue(Protocol):
    def send(self, message: str) -> None: ...


class SqsCopyQueue:
    """The copy queue on SQS; the message body is exactly `CopyRequest.to_message()`."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url

    def send(self, message: str) -> None:
        try:
            self._client.send_message(QueueUrl=self.queue_url, MessageBody=message)
        except ClientError as error:
            raise QueueUnavailableError(str(error.response.get("Error", {}).get("Code", "ClientError"))) from error
        except BotoCoreError as error:
            raise QueueUnavailableError(type(error).__name__) from error


@dataclass
class WebhookApp:
    """One container's webhook: settings, the signing key store and the queue, built once by `build_app`."""

    settings: WebhookSettings
    keys: SigningKeys
    queue: CopyQueue

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Answers one HTTP API request; logs and counts the answer."""
        answer = self.answer(event)
        _record(answer)
        return answer.to_http()

    def answer(self, event: Mapping[str, Any]) -> Answer:
        try:
            return self._answer(event)
        except Refused as refused:
            return refused.answer

    def _answer(self, event: Mapping[str, Any]) -> Answer:
        if request_method(event) != "POST":
            raise Refused(
                rejected(405, WebhookReason.METHOD_NOT_ALLOWED, "only POST is accepted", headers={"allow": "POST"})
            )
        body = read_body(event, self.settings.max_body_bytes)
        try:
            check_signature(header(event, signature.HEADER), body, self.keys)
        except SecretUnavailableError as error:
            logger.error("cannot read the signing secret", extra={"error": str(error)})
            return unavailable(WebhookReason.SECRET_UNAVAILABLE, "the signing secret cannot be read; try again later")
        except SecretConfigError as error:
            logger.error("the signing secret is not configured", extra={"error": str(error)})
            raise
        payload = parse_payload(body)
        event_name = hook_event(payload)
        if event_name != FILE_UPLOADED:
            return ignored(WebhookReason.OTHER_EVENT, f"event {event_name}")
        request = copy_request_from(payload)
        logger.set_correlation_id(request.uuid)
        if self.settings.skip_derived and derived_from(payload):
            return ignored(WebhookReason.DERIVED_FILE, "derived file")
        try:
            self.queue.send(request.to_message())
        except QueueUnavailableError as error:
            logger.error("cannot send the copy request", extra={"error": str(error)})
            return unavailable(WebhookReason.QUEUE_UNAVAILABLE, "the copy queue is unavailable; try again later")
        return queued(request.uuid)


def _record(answer: Answer) -> None:
    """One log line and the metrics of an answer: totals without dimensions, plus a by-reason breakdown."""
    fields = {"status": answer.status, "outcome": answer.body["status"], "reason": answer.reason}
    if answer.status >= 500:
        logger.error("webhook answered", extra=fields)
    elif answer.status >= 400:
        logger.warning("webhook answered", extra=fields)
    else:
        logger.info("webhook answered", extra=fields)
    metrics.add_metric(name="WebhookReceived", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=answer.metric, unit=MetricUnit.Count, value=1)
    if answer.reason is not None:  # a small, fixed set of values: WebhookReason
        with single_metric(
            name=answer.metric, unit=MetricUnit.Count, value=1, namespace=metrics.namespace
        ) as by_reason:
            by_reason.add_dimension(name="reason", value=str(answer.reason))


def build_app(environ: Mapping[str, str]) -> WebhookApp:
    """Reads the settings (raising `ConfigError` naming every bad variable) and creates the clients, once."""
    settings = load_webhook_settings(environ)
    sqs = boto3.client("sqs", config=SQS_CLIENT_CONFIG)  # honours AWS_ENDPOINT_URL by itself
    keys = KeyStore(settings.secret_id, required=WEBHOOK_SECRET_FIELDS)
    return WebhookApp(settings=settings, keys=keys, queue=SqsCopyQueue(sqs, settings.copy_queue_url))
