"""Hostile input, property-based: the webhook over arbitrary bodies, headers, encodings and sizes, with the real
signature check, key store and validation, and an in-memory queue at the process edge (tests/webhook_support.py).

* never a 5xx, and never a queued copy request without a valid signature;
* every validly signed `file.uploaded` with a usable file is queued exactly once per delivery, as the copy
  request for that file; every other signed body gets the answer it is owed and queues nothing;
* every queued message is one SQS accepts (SQS refuses lone surrogates, U+FFFE/U+FFFF and most controls).

Examples are derandomized (the `ci` profile in tests/conftest.py), so a run is repeatable; set
HYPOTHESIS_PROFILE=explore to hunt with fresh random examples.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devkit.make_events import SAMPLE_SIGNING_SECRET
from tests.webhook_strategies import Delivery, arbitrary_events, deliveries, tampered_events
from tests.webhook_support import RecordingQueue, event_for, powertools_for_tests, sample_payload, unit_app
from uploadcare_s3_copy.copy_request import CopyRequest
from uploadcare_s3_copy.observability import logger, metrics
from uploadcare_s3_copy.webhook import WebhookApp
from uploadcare_s3_copy.webhook.settings import DEFAULT_MAX_BODY_BYTES

# What SQS accepts in a message body: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
SQS_REFUSES = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
NOT_5XX = {200, 202, 400, 401, 405, 413}
FIXTURES_RESET_IN_THE_TEST = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def _quiet_powertools(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Metrics with the template's namespace; the JSON log lines go nowhere (thousands of examples)."""
    powertools_for_tests(monkeypatch)
    monkeypatch.setattr(logger.registered_handler, "stream", io.StringIO())
    yield
    metrics.clear_metrics()


def answer(app: WebhookApp, event: dict[str, Any]) -> int:
    status = int(app.handle(event)["statusCode"])
    metrics.clear_metrics()
    return status


@FIXTURES_RESET_IN_THE_TEST
@given(arbitrary_events())
@example(  # found by HYPOTHESIS_PROFILE=explore: b64decode refuses non-ASCII text with ValueError, not binascii.Error
    {"body": "\x80", "isBase64Encoded": True, "headers": {}, "requestContext": {"http": {"method": "POST"}}}
)
@example(event_for(sample_payload(), secret=None))  # a perfectly valid upload, unsigned
@example(event_for(sample_payload(), secret="not-the-signing-secret"))  # signed, with another secret
def test_a_request_without_the_secret_is_never_a_5xx_and_never_queued(event: dict[str, Any]) -> None:
    queue = RecordingQueue()
    app = unit_app(queue=queue)

    status = answer(app, event)

    assert status in NOT_5XX
    assert queue.messages == []


@FIXTURES_RESET_IN_THE_TEST
@given(deliveries(DEFAULT_MAX_BODY_BYTES))
def test_a_signed_body_gets_the_answer_it_is_owed_and_is_queued_exactly_once_when_valid(delivery: Delivery) -> None:
    queue = RecordingQueue()
    app = unit_app(queue=queue)

    status = answer(app, delivery.event(SAMPLE_SIGNING_SECRET))

    assert status == delivery.expect, delivery.why
    if status == 202:
        [message] = queue.messages
        request = CopyRequest.from_message(message)
        assert (request.uuid, request.size, request.event) == (delivery.uuid, delivery.size, delivery.queued_as)
        assert SQS_REFUSES.search(message) is None, f"SQS would refuse {message!r}"
    else:
        assert queue.messages == []


@FIXTURES_RESET_IN_THE_TEST
@given(deliveries(DEFAULT_MAX_BODY_BYTES, valid_only=True), st.integers(2, 4))
def test_every_delivery_of_a_valid_upload_is_queued_once(delivery: Delivery, times: int) -> None:
    # Uploadcare redelivers: each delivery is one copy request (the copier's idempotency makes the extra ones free)
    queue = RecordingQueue()
    app = unit_app(queue=queue)
    event = delivery.event(SAMPLE_SIGNING_SECRET)

    statuses = [answer(app, event) for _ in range(times)]

    assert statuses == [202] * times
    assert [CopyRequest.from_message(m).uuid for m in queue.messages] == [delivery.uuid] * times


@FIXTURES_RESET_IN_THE_TEST
@given(tampered_events())
def test_a_tampered_signature_or_body_is_a_401_and_queues_nothing(event: dict[str, Any]) -> None:
    queue = RecordingQueue()
    app = unit_app(queue=queue)

    status = answer(app, event)

    assert status == 401
    assert queue.messages == []


@FIXTURES_RESET_IN_THE_TEST
@given(deliveries(DEFAULT_MAX_BODY_BYTES, valid_only=True))
def test_a_valid_upload_signed_with_another_secret_is_a_401(delivery: Delivery) -> None:
    queue = RecordingQueue()
    app = unit_app(queue=queue)

    status = answer(app, delivery.event("some-other-signing-secret"))

    assert status == 401
    assert queue.messages == []


def test_a_name_sqs_cannot_carry_is_queued_escaped_and_reads_back_unchanged() -> None:
    # Given a signed upload whose name and type hold a lone surrogate, a non-character and a control (JSON escapes)
    payload = sample_payload()
    payload["data"]["original_filename"] = "report\ud800\uffff\x01.pdf"
    payload["data"]["mime_type"] = "application/\ufffe"
    queue = RecordingQueue()

    # When it is delivered
    status = answer(unit_app(queue=queue), event_for(json.dumps(payload)))

    # Then the copy request is one SQS accepts, and the copier reads back exactly the names Uploadcare sent
    assert status == 202
    [message] = queue.messages
    assert SQS_REFUSES.search(message) is None
    request = CopyRequest.from_message(message)
    assert (request.original_filename, request.mime_type) == ("report\ud800\uffff\x01.pdf", "application/\ufffe")
