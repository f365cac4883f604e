"""The webhook function end to end, in-process as `sam local invoke` would call it: Secrets Manager and SQS on the
session's moto server, a secret and a queue of their own per test. The queue is inspected after every case.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

import handle_webhook
from devkit.lambda_context import LambdaContext
from devkit.make_events import SAMPLE_SIGNING_SECRET
from devkit.servers import free_port
from tests.conftest import load_event
from tests.webhook_support import (
    BAD_SIGNATURE,
    FILE_UPLOADED,
    METRICS_NAMESPACE,
    OTHER_EVENT,
    event_for,
    powertools_for_tests,
    sample_payload,
    signing_secret_value,
    with_signature,
)
from uploadcare_s3_copy.copy_request import CopyRequest
from uploadcare_s3_copy.observability import logger, metrics
from uploadcare_s3_copy.secrets import SecretConfigError
from uploadcare_s3_copy.settings import ConfigError

SAMPLE_UUID = "9f3e6b2a-4c1d-4e8f-a5b7-0d2c8e6f1a43"


@dataclass(frozen=True)
class Stack:
    """The webhook's AWS resources on moto: its secret and its copy queue."""

    secret_id: str
    queue_url: str
    sqs: Any
    secretsmanager: Any

    def queued(self) -> list[str]:
        """Every message body on the queue (received, so later calls see none of them again)."""
        bodies: list[str] = []
        while True:
            answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            batch = [message["Body"] for message in answer.get("Messages", [])]
            if not batch:
                return bodies
            bodies.extend(batch)

    def rotate(self, signing_secret: str) -> None:
        self.secretsmanager.put_secret_value(
            SecretId=self.secret_id, SecretString=json.dumps(signing_secret_value(signing_secret))
        )


@pytest.fixture
def stack(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    name = f"webhook-{uuid.uuid4().hex[:12]}"
    secretsmanager = boto3.client("secretsmanager")
    secretsmanager.create_secret(Name=name, SecretString=json.dumps(signing_secret_value()))
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    monkeypatch.setenv("UPLOADCARE_SECRET_ID", name)
    monkeypatch.setenv("COPY_QUEUE_URL", queue_url)
    for optional in ("SKIP_DERIVED", "WEBHOOK_MAX_BODY_BYTES"):
        monkeypatch.delenv(optional, raising=False)
    powertools_for_tests(monkeypatch)
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    handle_webhook.app.cache_clear()
    yield Stack(name, queue_url, sqs, secretsmanager)
    handle_webhook.app.cache_clear()
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    metrics.clear_metrics()


def invoke(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = handle_webhook.lambda_handler(event, LambdaContext(function_name="uploadcare-s3-copy-webhook"))
    return response["statusCode"], json.loads(response["body"])


# --- the sample events, exactly as `sam local invoke -e events/<file>` passes them --------------------------------


def test_the_upload_sample_is_queued_as_one_copy_request(stack: Stack) -> None:
    # When the signed file.uploaded sample arrives
    status, body = invoke(load_event(FILE_UPLOADED))

    # Then the answer is 202 and the queue holds exactly one copy request for the file
    assert (status, body) == (202, {"status": "queued", "uuid": SAMPLE_UUID})
    messages = stack.queued()
    assert len(messages) == 1
    fields = json.loads(messages[0])
    received_at = fields.pop("received_at")
    assert fields == {
        "version": 1,
        "uuid": SAMPLE_UUID,
        "size": 482113,
        "original_filename": "harbour-at-dusk.jpg",
        "mime_type": "image/jpeg",
        "cdn_url": f"https://1s4oyld5dc.ucarecd.net/{SAMPLE_UUID}/",
        "event": "file.uploaded",
        "origin": "webhook",
        "uploaded_at": "2025-10-05T15:38:08.075064Z",
    }
    assert received_at.endswith("Z")
    assert messages[0] == CopyRequest.from_message(messages[0]).to_message()


def test_the_other_event_sample_is_ignored_and_nothing_is_queued(stack: Stack) -> None:
    status, body = invoke(load_event(OTHER_EVENT))

    assert (status, body) == (200, {"status": "ignored", "reason": "event file.stored"})
    assert stack.queued() == []


def test_the_bad_signature_sample_is_a_401_and_nothing_is_queued(stack: Stack) -> None:
    status, body = invoke(load_event(BAD_SIGNATURE))

    assert (status, body) == (
        401,
        {"status": "rejected", "reason": "signature_mismatch", "message": "X-Uc-Signature does not match the body"},
    )
    assert stack.queued() == []


# --- the rest of the answer table ----------------------------------------------------------------------------------


def test_a_base64_encoded_upload_is_queued(stack: Stack) -> None:
    status, _ = invoke(event_for(sample_payload(), base64_encoded=True))

    assert status == 202
    assert len(stack.queued()) == 1


@pytest.mark.parametrize(
    ("header", "reason"),
    [(None, "signature_missing"), ("sha256=abc", "signature_malformed")],
    ids=["missing", "malformed"],
)
def test_a_missing_or_malformed_signature_is_a_401(stack: Stack, header: str | None, reason: str) -> None:
    status, body = invoke(with_signature(load_event(FILE_UPLOADED), header))

    assert (status, body["status"], body["reason"]) == (401, "rejected", reason)
    assert stack.queued() == []


def test_a_signed_body_that_is_not_json_is_a_400(stack: Stack) -> None:
    status, body = invoke(event_for("not json"))

    assert (status, body) == (400, {"status": "rejected", "reason": "not_json", "message": "body is not JSON"})
    assert stack.queued() == []


def test_a_signed_upload_with_a_bad_uuid_is_a_400(stack: Stack) -> None:
    payload = sample_payload()
    payload["data"]["uuid"] = f"{SAMPLE_UUID}~2"

    status, body = invoke(event_for(payload))

    assert (status, body["reason"], body["message"]) == (
        400,
        "invalid_payload",
        "data.uuid is not a lowercase canonical file UUID",
    )
    assert stack.queued() == []


def test_a_body_over_the_configured_cap_is_a_413(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a cap below the sample's size
    monkeypatch.setenv("WEBHOOK_MAX_BODY_BYTES", "1000")

    status, body = invoke(load_event(FILE_UPLOADED))

    assert (status, body["reason"]) == (413, "body_too_large")
    assert stack.queued() == []


def test_with_skip_derived_a_derived_upload_is_ignored(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKIP_DERIVED", "true")
    payload = sample_payload()
    payload["initiator"]["detail"]["source_file_uuid"] = "03ccf9ab-f266-43fb-973d-a6529c55c2ae"

    status, body = invoke(event_for(payload))

    assert (status, body) == (200, {"status": "ignored", "reason": "derived file"})
    assert stack.queued() == []


def test_a_queue_that_does_not_exist_is_a_503(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given COPY_QUEUE_URL naming a queue that is not there
    monkeypatch.setenv("COPY_QUEUE_URL", stack.queue_url + "-gone")

    status, body = invoke(load_event(FILE_UPLOADED))

    assert (status, body["status"], body["reason"]) == (503, "unavailable", "queue_unavailable")
    assert stack.queued() == []


def test_an_unreachable_sqs_endpoint_is_a_503(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given SQS pointed at a loopback port where nothing listens (the client makes its two attempts)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", f"http://127.0.0.1:{free_port()}")

    status, body = invoke(load_event(FILE_UPLOADED))

    assert (status, body["reason"]) == (503, "queue_unavailable")
    monkeypatch.delenv("AWS_ENDPOINT_URL_SQS")
    assert stack.queued() == []


def test_an_unreachable_secrets_manager_is_a_503(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given Secrets Manager pointed at a loopback port where nothing listens (one attempt, to keep the test quick)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    status, body = invoke(load_event(FILE_UPLOADED))

    assert (status, body["reason"]) == (503, "secret_unavailable")
    assert stack.queued() == []


def test_a_rotated_signing_secret_is_picked_up_after_one_reread(stack: Stack) -> None:
    # Given a warm container that has cached the sample signing secret
    assert invoke(load_event(FILE_UPLOADED))[0] == 202

    # When the secret is rotated in Secrets Manager and Uploadcare signs with the new one
    stack.rotate("rotated-signing-secret")
    status, _ = invoke(event_for(sample_payload(), secret="rotated-signing-secret"))

    # Then the first request with the new signature is still queued
    assert status == 202
    assert len(stack.queued()) == 2


def test_a_second_mismatch_within_a_minute_does_not_reread_the_secret(stack: Stack) -> None:
    # Given a rotation that a mismatch has just picked up
    invoke(load_event(FILE_UPLOADED))
    stack.rotate("second-secret")
    assert invoke(event_for(sample_payload(), secret="second-secret"))[0] == 202

    # When the secret is rotated again within the minute and a request signed with it arrives
    stack.rotate("third-secret")
    status, body = invoke(event_for(sample_payload(), secret="third-secret"))

    # Then the secret is not re-read: the request is refused, and only the first two were queued
    assert (status, body["reason"]) == (401, "signature_mismatch")
    assert len(stack.queued()) == 2


def test_the_old_signature_is_refused_after_a_rotation_was_picked_up(stack: Stack) -> None:
    invoke(load_event(FILE_UPLOADED))
    stack.rotate("rotated-signing-secret")
    invoke(event_for(sample_payload(), secret="rotated-signing-secret"))

    status, _ = invoke(load_event(FILE_UPLOADED))

    assert status == 401
    assert len(stack.queued()) == 2


# --- configuration errors fail loudly ------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_a_secret_without_a_signing_secret_fails_the_invocation(stack: Stack) -> None:
    # Given a secret holding only the REST keys
    stack.secretsmanager.put_secret_value(
        SecretId=stack.secret_id, SecretString=json.dumps({"public_key": "pk", "secret_key": "sk"})
    )

    # When a signed upload arrives, the invocation fails instead of answering
    with pytest.raises(SecretConfigError, match="lacks webhook_signing_secret"):
        invoke(load_event(FILE_UPLOADED))

    # Then nothing was queued
    assert stack.queued() == []


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_a_missing_queue_setting_fails_every_invocation(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COPY_QUEUE_URL")

    for _ in range(2):  # not cached as a half-built app: the second invocation fails the same way
        with pytest.raises(ConfigError, match="COPY_QUEUE_URL is required"):
            invoke(load_event(FILE_UPLOADED))

    assert stack.queued() == []


def test_settings_are_read_once_per_container(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a container that has answered once
    assert invoke(load_event(FILE_UPLOADED))[0] == 202

    # When the environment changes under it
    monkeypatch.setenv("COPY_QUEUE_URL", stack.queue_url + "-elsewhere")

    # Then the app built at first use still sends to the original queue
    assert invoke(load_event(FILE_UPLOADED))[0] == 202
    assert len(stack.queued()) == 2


# --- observability ---------------------------------------------------------------------------------------------


@pytest.fixture
def log_stream(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What the Powertools Logger writes (its handler keeps the stdout it found at import, out of capsys' reach)."""
    stream = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", stream)
    return stream


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_a_queued_upload_is_counted_and_logged_with_the_file_uuid(
    stack: Stack, capsys: pytest.CaptureFixture[str], log_stream: io.StringIO
) -> None:
    invoke(load_event(FILE_UPLOADED))

    emf = [line for line in _json_lines(capsys.readouterr().out) if "_aws" in line]
    assert [line["_aws"]["CloudWatchMetrics"][0]["Namespace"] for line in emf] == [METRICS_NAMESPACE]
    assert emf[0]["WebhookReceived"] == [1.0]
    assert emf[0]["WebhookQueued"] == [1.0]
    answered = next(line for line in _json_lines(log_stream.getvalue()) if line["message"] == "webhook answered")
    assert answered["correlation_id"] == SAMPLE_UUID
    assert (answered["status"], answered["outcome"]) == (202, "queued")
    assert len(stack.queued()) == 1


def test_a_rejection_is_counted_by_reason_and_logs_no_secret_signature_or_payload(
    stack: Stack, capsys: pytest.CaptureFixture[str], log_stream: io.StringIO
) -> None:
    # Given a request signed with the wrong secret
    event = load_event(BAD_SIGNATURE)

    # When it is refused
    invoke(event)

    # Then a WebhookRejected metric carries the reason as its dimension
    out = capsys.readouterr().out
    by_reason = [line for line in _json_lines(out) if line.get("reason") == "signature_mismatch"]
    assert [line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] for line in by_reason] == [[["reason", "service"]]]
    assert by_reason[0]["WebhookRejected"] == [1.0]
    # And neither the metrics nor the log carry the signature, the secret or the payload
    logged = log_stream.getvalue()
    assert "webhook answered" in logged
    for text in (out, logged):
        assert event["headers"]["x-uc-signature"].removeprefix("v1=") not in text
        assert SAMPLE_SIGNING_SECRET not in text
        assert "harbour-at-dusk" not in text
    assert stack.queued() == []
