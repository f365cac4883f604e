"""Hostile input against the real wiring: fewer examples than tests/unit/test_webhook_properties.py, each through
`handle_webhook.lambda_handler` with Secrets Manager and SQS on the moto server, the queue read after every one.
What only the real edge can show: a copy request SQS cannot carry, a botocore error that escapes as a 500.
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
from hypothesis import HealthCheck, given, settings

import handle_webhook
from devkit.lambda_context import LambdaContext
from devkit.make_events import SAMPLE_SIGNING_SECRET
from tests.webhook_strategies import Delivery, arbitrary_events, deliveries, tampered_events
from tests.webhook_support import powertools_for_tests, signing_secret_value
from uploadcare_s3_copy.copy_request import CopyRequest
from uploadcare_s3_copy.observability import logger, metrics
from uploadcare_s3_copy.webhook.settings import DEFAULT_MAX_BODY_BYTES

AGAINST_MOTO = settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])


@dataclass(frozen=True)
class Queue:
    url: str
    sqs: Any

    def take_all(self) -> list[str]:
        """Every message now on the queue, deleted as read (so the next example starts from an empty queue)."""
        bodies: list[str] = []
        while True:
            answer = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = answer.get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(message["Body"])
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def queue(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    name = f"properties-{uuid.uuid4().hex[:12]}"
    boto3.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(signing_secret_value()))
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    monkeypatch.setenv("UPLOADCARE_SECRET_ID", name)
    monkeypatch.setenv("COPY_QUEUE_URL", url)
    for optional in ("SKIP_DERIVED", "WEBHOOK_MAX_BODY_BYTES"):
        monkeypatch.delenv(optional, raising=False)
    powertools_for_tests(monkeypatch)
    monkeypatch.setattr(logger.registered_handler, "stream", io.StringIO())
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    handle_webhook.app.cache_clear()
    yield Queue(url, sqs)
    handle_webhook.app.cache_clear()
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    metrics.clear_metrics()


def invoke(event: dict[str, Any]) -> int:
    response = handle_webhook.lambda_handler(event, LambdaContext(function_name="WebhookFunction"))
    return int(response["statusCode"])


@AGAINST_MOTO
@given(delivery=deliveries(DEFAULT_MAX_BODY_BYTES))
def test_a_signed_body_gets_its_answer_and_a_valid_one_is_on_the_queue_once(queue: Queue, delivery: Delivery) -> None:
    status = invoke(delivery.event(SAMPLE_SIGNING_SECRET))

    assert status == delivery.expect, delivery.why
    queued = queue.take_all()
    if status == 202:
        [message] = queued
        assert (CopyRequest.from_message(message).uuid, CopyRequest.from_message(message).size) == (
            delivery.uuid,
            delivery.size,
        )
    else:
        assert queued == []


@AGAINST_MOTO
@given(delivery=deliveries(DEFAULT_MAX_BODY_BYTES, valid_only=True))
def test_any_valid_upload_reaches_the_queue(queue: Queue, delivery: Delivery) -> None:
    # File names and types with lone surrogates, non-characters, controls: whatever Uploadcare's JSON can carry
    status = invoke(delivery.event(SAMPLE_SIGNING_SECRET))

    assert status == 202, delivery.why
    [message] = queue.take_all()
    assert CopyRequest.from_message(message).uuid == delivery.uuid


@AGAINST_MOTO
@given(event=arbitrary_events())
def test_a_request_without_the_secret_is_never_a_5xx_and_never_queued(queue: Queue, event: dict[str, Any]) -> None:
    status = invoke(event)

    assert status in {200, 202, 400, 401, 405, 413}
    assert queue.take_all() == []


@AGAINST_MOTO
@given(event=tampered_events())
def test_a_tampered_signature_is_a_401_and_queues_nothing(queue: Queue, event: dict[str, Any]) -> None:
    status = invoke(event)

    assert status == 401
    assert queue.take_all() == []
