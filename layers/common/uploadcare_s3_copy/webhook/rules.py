"""The webhook's decisions, as plain functions: size cap, signature, then JSON and field validation.

Steps run in this order, so unauthenticated bytes are measured and signature-checked but never parsed. Each step
returns what the next needs or raises `Refused` carrying the answer (docs/design.md, "Webhook function: the answers").
A signing secret missing from the secret is a deployment error: it is raised, never read as "accept unsigned".
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, Protocol

from uploadcare_s3_copy.copy_request import UUID_PATTERN, CopyRequest
from uploadcare_s3_copy.observability import logger
from uploadcare_s3_copy.secrets import UploadcareKeys
from uploadcare_s3_copy.source_changes import (
    COPY_REQUEST_EVENTS,
    FILE_INFECTED,
    FILE_INFO_UPDATED,
    FILE_UPLOADED,
    is_infected,
)
from uploadcare_s3_copy.webhook import signing
from uploadcare_s3_copy.webhook.answers import Refused, WebhookReason, rejected

_MAX_EVENT_NAME = 64  # an event name is echoed in the answer and the log; Uploadcare's are ~15 characters
_OPTIONAL_TEXT_FIELDS = ("original_filename", "mime_type", "original_file_url")


def _too_large(max_body_bytes: int) -> Refused:
    return Refused(rejected(413, WebhookReason.BODY_TOO_LARGE, f"body is larger than the {max_body_bytes}-byte limit"))


def _invalid(message: str) -> Refused:
    return Refused(rejected(400, WebhookReason.INVALID_PAYLOAD, message))


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
    if not signing.is_well_formed(value):
        raise Refused(
            rejected(
                401,
                WebhookReason.SIGNATURE_MALFORMED,
                "X-Uc-Signature is not of the form v1=<64 lowercase hex digits>",
            )
        )
    if signing.verify(value, body, keys.get().webhook_signing_secret):
        return
    # None when the secret was re-read less than a minute ago; SecretUnavailableError (-> 503) while a failed re-read
    # waits to be tried again: the secret may have been rotated, so "no" would be a guess
    refreshed = keys.refresh()
    if refreshed is not None and signing.verify(value, body, refreshed.webhook_signing_secret):
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


def file_problems(data: Any, *, size_required: bool = True) -> list[str]:
    """What is wrong with a webhook's `data` (the file object), one phrase per field; empty when it is usable. A
    deletion needs no size (the copier asks Uploadcare about the file anyway), but a size given must be one."""
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
        if size_required:
            problems.append("data.size is missing")
    elif isinstance(size, bool) or not isinstance(size, int) or size < 0:
        problems.append("data.size is not a non-negative integer")
    problems.extend(
        f"data.{name} is not a string"
        for name in _OPTIONAL_TEXT_FIELDS
        if data.get(name) is not None and not isinstance(data.get(name), str)
    )
    return problems


def queued_event(event: str, payload: Mapping[str, Any]) -> str | None:
    """The copy request event a webhook event becomes, or None when it is not one the copier acts on. A
    `file.info_updated` whose ClamAV verdict is "infected" is a `file.infected` (Uploadcare's announced successor)."""
    if event in COPY_REQUEST_EVENTS:
        return event
    data = payload.get("data")
    if event == FILE_INFO_UPDATED and isinstance(data, Mapping) and is_infected(data):
        return FILE_INFECTED
    return None


def copy_request_from(payload: Mapping[str, Any], event: str = FILE_UPLOADED) -> CopyRequest:
    """The copy request for a valid payload of `event`; `Refused` (400) naming every bad field otherwise."""
    data = payload.get("data")
    problems = file_problems(data, size_required=event == FILE_UPLOADED)
    if problems or not isinstance(data, Mapping):
        raise _invalid("; ".join(problems))
    cdn_url = payload.get("file")
    return CopyRequest.from_file_info(
        {**data, "size": data.get("size") or 0},
        event=event,
        origin="webhook",
        cdn_url=cdn_url if isinstance(cdn_url, str) else "",
    )


def derived_from(payload: Mapping[str, Any]) -> str | None:
    """`initiator.detail.source_file_uuid`: set when the upload was made from another file (a copy, an add-on)."""
    initiator = payload.get("initiator")
    detail = initiator.get("detail") if isinstance(initiator, Mapping) else None
    source = detail.get("source_file_uuid") if isinstance(detail, Mapping) else None
    return source if isinstance(source, str) and source else None
