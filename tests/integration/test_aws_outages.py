"""AWS failing under the copier and the webhook, injected in front of the moto server (devkit/aws_faults.py): the
functions' own boto3 clients meet a throttle, a 5xx or a slow answer over real HTTP, with botocore's retries and
timeouts as configured. Where a wait matters (an in-progress window, a back-off) the test waits it out on the real
schedule: the copier runs as Lambda's SQS event source would, polling and leaving the visibility the copier set.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import boto3
import pytest

import handle_copy
import handle_webhook
from devkit.aws_faults import AwsFaultProxy, Call, Fault
from devkit.emulator import Fault as UploadcareFault
from devkit.lambda_context import LambdaContext
from devkit.sqs_poller import queue_arn, queue_name, to_lambda_record
from tests.conftest import load_event
from tests.integration.copier_support import SHORT_TIMEOUT, CopierHarness, assert_verified_once, copier, reason_of
from tests.integration.test_webhook_handler import Stack, stack
from tests.webhook_support import FILE_UPLOADED
from uploadcare_s3_copy.copier.rules import (
    IN_PROGRESS_MARGIN_SECONDS,
)
from uploadcare_s3_copy.copy_request import CopyRequest

__all__ = ["copier", "stack"]  # the fixtures
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

BOTH_ATTEMPTS = 2  # the functions' AWS clients try a call twice: a fault must meet both to reach the code


@pytest.fixture
def proxy(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsFaultProxy]:
    """Every boto3 client created from now on (the functions build theirs at cold start) goes through the proxy."""
    with AwsFaultProxy(moto_endpoint).running() as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL", running.url)
        handle_copy.app.cache_clear()
        handle_webhook.app.cache_clear()
        yield running
        handle_copy.app.cache_clear()
        handle_webhook.app.cache_clear()


@dataclass
class Receipts:
    """What a Lambda-like poller saw: when each file's record was received, in seconds from the start."""

    started: float = field(default_factory=time.monotonic)
    by_uuid: dict[str, list[float]] = field(default_factory=dict)


def poll_as_lambda(copier: CopierHarness, seconds: float, *, timeout: float = SHORT_TIMEOUT) -> Receipts:
    """Polls the copy queue every half second for `seconds`, as the event source mapping would: records reported
    as batch item failures keep the visibility the copier set, so they come back on the copier's own schedule."""
    receipts = Receipts()
    sqs = boto3.client("sqs")
    arn = queue_arn(copier.stack.queue_url)
    while time.monotonic() < receipts.started + seconds:
        messages = sqs.receive_message(
            QueueUrl=copier.stack.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            time.sleep(0.5)
            continue
        now = time.monotonic() - receipts.started
        for message in messages:
            receipts.by_uuid.setdefault(CopyRequest.from_message(message["Body"]).uuid, []).append(now)
        event = {"Records": [to_lambda_record(message, arn) for message in messages]}
        response = handle_copy.lambda_handler(event, LambdaContext(timeout_seconds=timeout))
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=copier.stack.queue_url, ReceiptHandle=message["ReceiptHandle"])
    return receipts


# --- the idempotency table --------------------------------------------------------------------------------------


def test_records_held_by_an_in_progress_window_come_back_when_it_ends_not_before(
    copier: CopierHarness, proxy: AwsFaultProxy
) -> None:
    # Given a file whose copy fails for now (Uploadcare 503) while DynamoDB fails to delete that attempt's record
    # (both attempts), and another file whose copy request is in the same batch twice while its copy takes a second
    failed_late = copier.add_file(original_filename="delete fails.pdf", size=4321)
    copier.emulator.script(failed_late.uuid, UploadcareFault.server_error(503))
    proxy.add("dynamodb:DeleteItem", Fault.server_error(), times=BOTH_ATTEMPTS)
    duplicated = copier.add_file(original_filename="sent twice.jpg", size=1234)
    copier.emulator.copy_delay = 1.0
    copier.send(failed_late, duplicated, duplicated)

    # When the copier runs over the queue as Lambda would, for a little longer than one invocation can last
    receipts = poll_as_lambda(copier, SHORT_TIMEOUT + IN_PROGRESS_MARGIN_SECONDS + 6)

    # Then both given-back records stayed away until the in-progress window of their first invocation had ended
    # (a retry before then would only meet "in progress" and spend a receive; the 503's own back-off is 15 s), and
    # came back once
    first, second = receipts.by_uuid[failed_late.uuid]
    assert second - first >= SHORT_TIMEOUT - 1
    assert len(receipts.by_uuid[duplicated.uuid]) == 3  # both copies at once, then the held-back one again
    assert receipts.by_uuid[duplicated.uuid][2] - receipts.by_uuid[duplicated.uuid][0] >= SHORT_TIMEOUT - 2
    # And the second round copied the first file, and found the second's proof in the ledger: one copy each,
    # nothing parked, nothing left
    assert len(proxy.hits_of("dynamodb:DeleteItem")) == BOTH_ATTEMPTS
    assert copier.emulator.copy_calls(failed_late.uuid) == 2
    assert copier.emulator.copy_calls(duplicated.uuid) == 1
    assert_verified_once(copier, failed_late, duplicated)
    assert copier.dead_letters() == []
    assert copier.queue_depth() == 0


def test_a_verified_copy_whose_idempotency_save_fails_is_done_at_once_on_the_ledgers_proof(
    copier: CopierHarness, proxy: AwsFaultProxy
) -> None:
    # Given a file whose idempotency save fails (both attempts) after Uploadcare copied it, head_object proved it
    # and the ledger recorded it
    file = copier.add_file(original_filename="save fails.pdf", size=4321)
    rule = proxy.add(
        "dynamodb:UpdateItem", Fault.throttled(), when=lambda call: call.mentions(file.uuid), times=BOTH_ATTEMPTS
    )
    copier.send(file)

    # When the copier runs once, and the same request comes again while the unsaved record is still INPROGRESS
    first = copier.poll_once(as_lambda=True)
    copier.send(file)
    again = copier.poll_once(as_lambda=True)

    # Then the first is done at once (not held back for the in-progress window), and the second is settled by the
    # ledger without meeting "in progress": one Uploadcare call, one copy, nothing parked, nothing left
    assert rule.hits == BOTH_ATTEMPTS
    assert first.responses[0] == {"batchItemFailures": []}
    assert again.responses[0] == {"batchItemFailures": []}
    assert copier.emulator.copy_calls(file.uuid) == 1
    item = copier.ledger_item(file)
    assert item is not None
    assert item.verified
    assert_verified_once(copier, file)
    assert copier.dead_letters() == []
    assert copier.queue_depth() == 0


def test_a_permanent_failure_keeps_its_reason_when_the_idempotency_delete_fails(
    copier: CopierHarness, proxy: AwsFaultProxy
) -> None:
    # Given a copy that comes out the wrong size, and DynamoDB refusing to delete the record of the failed attempt
    proxy.add("dynamodb:DeleteItem", Fault.server_error(), times=BOTH_ATTEMPTS)
    file = copier.add_file(size=50, wrong_size=True)
    [body] = copier.send(file)

    # When the copier runs once
    stats = copier.poll_once()

    # Then the request is parked with its real reason, not given back as an AWS outage
    assert len(proxy.hits_of("dynamodb:DeleteItem")) == BOTH_ATTEMPTS
    assert stats.responses[0] == {"batchItemFailures": []}
    [message] = copier.dead_letters()
    assert reason_of(message) == "verification_failed"
    assert message["Body"] == body


@pytest.mark.parametrize("fault", [Fault.throttled(), Fault.dropped()], ids=["throttled", "dropped"])
def test_the_idempotency_table_failing_gives_the_record_back_before_any_copy(
    copier: CopierHarness, proxy: AwsFaultProxy, fault: Fault
) -> None:
    # Given DynamoDB failing the in-progress record's write
    rule = proxy.add("dynamodb:PutItem", fault)
    file = copier.add_file(size=64)
    copier.send(file)

    # When the copier runs once
    stats = copier.poll_once()

    # Then the record is given back without calling Uploadcare (no copy without a record of it), and not parked
    assert rule.hits == BOTH_ATTEMPTS
    assert len(stats.responses[0]["batchItemFailures"]) == 1
    assert copier.emulator.copy_calls(file.uuid) == 0
    assert copier.dead_letters() == []

    # And once DynamoDB is back, the redelivery copies and verifies it
    proxy.clear()
    copier.drain()
    assert_verified_once(copier, file)
    assert copier.queue_depth() == 0


# --- S3, SQS and Secrets Manager ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [Fault.server_error(), Fault.slow(5.0)], ids=["5xx", "slower-than-the-read-timeout"])
def test_head_object_failing_after_the_copy_ends_verified_through_already_exists(
    copier: CopierHarness, proxy: AwsFaultProxy, fault: Fault
) -> None:
    # Given S3 failing the proof's head_object (both attempts) once Uploadcare has copied the file
    file = copier.add_file(size=777)
    rule = proxy.add("s3:HeadObject", fault, when=lambda call: file.uuid in call.path, times=BOTH_ATTEMPTS)
    copier.send(file)

    # When the copier runs until the queue is empty
    stats = copier.drain()

    # Then the first attempt was given back (the call bounded by the client's timeouts), the second verified the copy
    # already there: one copy, nothing parked
    assert rule.hits == BOTH_ATTEMPTS
    assert stats.given_back == 1
    assert copier.emulator.copy_stats(file.uuid).already_exists == 1
    assert_verified_once(copier, file)
    assert copier.dead_letters() == []


def test_a_dead_letter_send_that_fails_gives_the_record_back_until_it_is_parked(
    copier: CopierHarness, proxy: AwsFaultProxy
) -> None:
    # Given a copy that fails permanently (wrong size) while the DLQ cannot be reached, for two deliveries
    dlq_name = queue_name(copier.stack.dlq_url)

    def to_the_dlq(call: Call) -> bool:
        return call.mentions(dlq_name)

    rule = proxy.add("sqs:SendMessage", Fault.unavailable(), when=to_the_dlq, times=2 * BOTH_ATTEMPTS)
    file = copier.add_file(size=50, wrong_size=True)
    [body] = copier.send(file)

    # When the copier runs over the queue until it is empty
    stats = copier.drain()

    # Then the record was given back while the DLQ was down, and parked with its reason once it was up: not lost
    assert rule.hits == 2 * BOTH_ATTEMPTS
    assert stats.given_back == 2
    [message] = copier.dead_letters()
    assert reason_of(message) == "verification_failed"
    assert message["Body"] == body
    assert copier.queue_depth() == 0


def test_retry_waits_that_cannot_be_set_leave_the_record_to_the_queues_visibility_timeout(
    copier: CopierHarness, proxy: AwsFaultProxy
) -> None:
    # Given Uploadcare answering 503 for a file, and SQS failing the copier's ChangeMessageVisibilityBatch
    rule = proxy.add("sqs:ChangeMessageVisibilityBatch", Fault.unavailable(), times=BOTH_ATTEMPTS)
    file = copier.add_file(size=99)
    copier.emulator.script(file.uuid, UploadcareFault.server_error(503))
    copier.send(file)

    # When the copier runs once, as Lambda would (what it gives back keeps the visibility SQS gave it)
    stats = copier.poll_once(as_lambda=True)

    # Then the invocation still reports the record as failed (not lost, not a crashed batch), and the record waits
    # out the queue's visibility timeout instead of the back-off: invisible, on the queue, not parked
    assert rule.hits == BOTH_ATTEMPTS
    assert stats.handler_errors == 0
    assert len(stats.responses[0]["batchItemFailures"]) == 1
    assert copier.visible_messages() == 0
    assert copier.queue_depth() == 1
    assert copier.dead_letters() == []


def test_secrets_manager_failing_gives_every_record_back_without_failing_the_invocation(
    copier: CopierHarness, proxy: AwsFaultProxy
) -> None:
    # Given Secrets Manager unreachable when the copier starts
    rule = proxy.add("secretsmanager:GetSecretValue", Fault.unavailable())
    files = [copier.add_file(size=10 + n) for n in range(3)]
    copier.send(*files)

    # When the copier runs once
    stats = copier.poll_once()

    # Then the invocation answered (no whole-batch failure, which would hold every record for the 35-minute
    # visibility timeout), every record is a batch item failure, and Uploadcare was not called
    assert rule.hits >= 1
    assert stats.handler_errors == 0
    assert len(stats.responses[0]["batchItemFailures"]) == 3
    assert all(copier.emulator.copy_calls(f.uuid) == 0 for f in files)

    # And once Secrets Manager answers again, the redeliveries copy them all
    proxy.clear()
    copier.drain()
    assert_verified_once(copier, *files)


def test_a_slow_secrets_manager_is_answered_503_before_the_webhook_times_out(
    stack: Stack, proxy: AwsFaultProxy
) -> None:
    # Given Secrets Manager taking far longer than the webhook's 5 s timeout to answer
    rule = proxy.add("secretsmanager:GetSecretValue", Fault.slow(8.0))
    context = LambdaContext(function_name="uploadcare-s3-copy-webhook", timeout_seconds=5.0)

    # When a signed upload event arrives on a cold container
    response = handle_webhook.lambda_handler(load_event(FILE_UPLOADED), context)

    # Then it is answered 503 (Uploadcare retries it) within the function's timeout, not a Lambda timeout (a 500)
    assert rule.hits == 1  # one attempt: a second would not fit
    assert response["statusCode"] == 503
    assert context.get_remaining_time_in_millis() > 0
    assert stack.queued() == []
