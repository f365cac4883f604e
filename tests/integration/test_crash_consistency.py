"""Crash consistency: the copier dies, times out or loses an AWS dependency at the worst moment, and still every
copy request ends verified in S3 (with one successful remote copy) or in the DLQ with its reason: never lost,
never dead-lettered for a copy that succeeded.

The copier runs over a real SQS queue on the moto server through the Uploadcare emulator (copier_support.py).
A killed invocation's in-progress window is waited out on the real schedule (the shortest Lambda timeout that still
starts a copy, about half a minute); only the visibility timeout of a failed invocation's batch (SQS's own clock,
35 minutes for the default template) is cut short by making its messages visible.
"""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

import handle_copy
from devkit.lambda_context import LambdaContext
from devkit.sqs_poller import queue_arn, to_lambda_record
from tests.integration.copier_support import SHORT_TIMEOUT, CopierHarness, assert_verified_once, copier
from uploadcare_s3_copy.copier.rules import AFTER_COPY_SECONDS, IN_PROGRESS_MARGIN_SECONDS, SAFETY_MARGIN_SECONDS
from uploadcare_s3_copy.copier.service import CopyService
from uploadcare_s3_copy.copy_request import CopyRequest
from uploadcare_s3_copy.ledger import Ledger, LedgerItem

__all__ = ["copier"]  # the fixture
# An invocation that dies, or whose only record failed unexpectedly, publishes no metrics: Powertools warns.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


class LambdaKilled(BaseException):
    """The runtime ending an invocation (timeout, out of memory): no `except Exception` in the code runs."""


def verify_fails_once_for(monkeypatch: pytest.MonkeyPatch, uuid: str, error: BaseException) -> list[BaseException]:
    """Makes the head_object proof of `uuid` raise `error` once, after Uploadcare has made the copy."""
    raised: list[BaseException] = []
    real_verify = CopyService.verify

    def verify(self: CopyService, location: Any, *args: Any) -> Any:
        if not raised and uuid in location.key:
            raised.append(error)
            raise error
        return real_verify(self, location, *args)

    monkeypatch.setattr(CopyService, "verify", verify)
    return raised


def ledger_write_fails_once_for(monkeypatch: pytest.MonkeyPatch, uuid: str, error: BaseException) -> list[str]:
    """Makes the ledger write of `uuid`'s verified copy raise `error` once: after the proof, before the record is
    done. Returns the statuses of the writes that went through."""
    written: list[str] = []
    raised: list[BaseException] = []
    real_put = Ledger.put

    def put(self: Ledger, item: LedgerItem) -> None:
        if not raised and item.uuid == uuid:
            raised.append(error)
            raise error
        real_put(self, item)
        written.append(str(item.status))

    monkeypatch.setattr(Ledger, "put", put)
    return written


def receive(copier: CopierHarness, count: int) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    messages: list[dict[str, Any]] = []
    while len(messages) < count:
        answer = sqs.receive_message(
            QueueUrl=copier.stack.queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        )
        if not answer.get("Messages"):
            break
        messages.extend(answer["Messages"])
    return messages


def lambda_event(copier: CopierHarness, messages: list[dict[str, Any]]) -> dict[str, Any]:
    arn = queue_arn(copier.stack.queue_url)
    return {"Records": [to_lambda_record(message, arn) for message in messages]}


def visibility_timeout_passes(copier: CopierHarness, messages: list[dict[str, Any]]) -> None:
    """What SQS does once the visibility timeout of a failed invocation's messages has passed: they are visible."""
    sqs = boto3.client("sqs")
    for message in messages:
        sqs.change_message_visibility(
            QueueUrl=copier.stack.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )


def in_progress_records(copier: CopierHarness) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=copier.stack.table)["Items"]
    return [item for item in items if item.get("status", {}).get("S") == "INPROGRESS"]


# --- the copier dies between Uploadcare's copy and the idempotency record --------------------------------------


def test_an_exception_after_the_copy_ends_verified_through_already_exists(
    copier: CopierHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a file whose head_object proof blows up once, after Uploadcare has copied it (an unexpected error)
    file = copier.add_file(original_filename="crash after copy.pdf", size=4321)
    raised = verify_fails_once_for(monkeypatch, file.uuid, RuntimeError("the copier crashed"))

    # When its copy request goes through the copier, and is redelivered as SQS does after a failure
    copier.send(file)
    stats = copier.drain()

    # Then the first attempt was given back, and the redelivery found the file already there (200, no `result`),
    # located it by key prediction and verified it: one copy, nothing dead-lettered, nothing left
    assert raised
    assert stats.given_back == 1
    assert copier.emulator.copy_stats(file.uuid).already_exists == 1
    assert_verified_once(copier, file)
    assert copier.dead_letters() == []
    assert copier.queue_depth() == 0


def test_a_killed_invocation_is_finished_by_the_redelivery_after_its_deadline(
    copier: CopierHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a file, copied by Uploadcare and proved by head_object, whose invocation (the shortest timeout that
    # copies) is killed at the ledger write, before the idempotency record completes
    file = copier.add_file(original_filename="killed.mov", size=2048)
    written = ledger_write_fails_once_for(monkeypatch, file.uuid, LambdaKilled())
    copier.send(file)
    messages = receive(copier, 1)
    killed_at = time.monotonic()
    with pytest.raises(LambdaKilled):
        handle_copy.lambda_handler(lambda_event(copier, messages), LambdaContext(timeout_seconds=SHORT_TIMEOUT))
    assert copier.emulator.copies(file.uuid) == 1
    assert len(in_progress_records(copier)) == 1  # the dead invocation's record: no `except` cleaned it up

    # When SQS redelivers before the dead invocation's deadline has passed
    visibility_timeout_passes(copier, messages)
    early = copier.poll_once(function_timeout=SHORT_TIMEOUT, as_lambda=True)

    # Then the record is given back untouched (another invocation might still be copying): no call, no DLQ
    assert len(early.responses[0]["batchItemFailures"]) == 1
    assert copier.emulator.copy_calls(file.uuid) == 1

    # And it comes back on the copier's hold, once the dead invocation's deadline has passed, and that redelivery
    # finishes the copy through "already exists"
    later, came_back = copier.poll_until_received(within=SHORT_TIMEOUT + IN_PROGRESS_MARGIN_SECONDS + 10)
    assert came_back - killed_at >= SHORT_TIMEOUT
    assert later.responses[0] == {"batchItemFailures": []}
    assert copier.emulator.copy_stats(file.uuid).already_exists == 1
    assert_verified_once(copier, file)
    assert written == ["verified"]  # and the proof the kill cut off is in the ledger now
    item = copier.ledger_item(file)
    assert item is not None
    assert item.verified
    assert copier.dead_letters() == []
    assert copier.queue_depth() == 0


def test_a_batch_killed_mid_way_redelivers_everything_and_copies_nothing_twice(
    copier: CopierHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a batch of three run one at a time, whose last record's invocation is killed after Uploadcare copied it
    monkeypatch.setenv("COPY_CONCURRENCY", "1")
    done_first = [copier.add_file(size=100 + n) for n in range(2)]
    killed = copier.add_file(size=300)
    verify_fails_once_for(monkeypatch, killed.uuid, LambdaKilled())
    copier.send(*done_first, killed)
    messages = receive(copier, 3)
    first_killed_last = sorted(messages, key=lambda m: CopyRequest.from_message(m["Body"]).uuid == killed.uuid)
    killed_at = time.monotonic()
    with pytest.raises(LambdaKilled):
        handle_copy.lambda_handler(
            lambda_event(copier, first_killed_last), LambdaContext(timeout_seconds=SHORT_TIMEOUT)
        )

    # When Lambda gives the whole batch back (a failed invocation) and SQS redelivers it
    visibility_timeout_passes(copier, messages)
    replayed = copier.poll_once(function_timeout=SHORT_TIMEOUT, as_lambda=True)

    # Then the two finished before the kill are replayed from their idempotency records (no second call) and the
    # killed one is held back while its dead invocation might still be copying
    assert replayed.deleted == 2
    assert replayed.given_back == 1
    assert [copier.emulator.copy_calls(f.uuid) for f in [*done_first, killed]] == [1, 1, 1]

    # And after the dead invocation's deadline it is finished through "already exists": three verified, one copy each
    finished, came_back = copier.poll_until_received(within=SHORT_TIMEOUT + IN_PROGRESS_MARGIN_SECONDS + 10)
    assert came_back - killed_at >= SHORT_TIMEOUT
    assert finished.deleted == 1
    assert [copier.emulator.copy_calls(f.uuid) for f in [*done_first, killed]] == [1, 1, 2]
    assert_verified_once(copier, *done_first, killed)
    assert copier.dead_letters() == []
    assert copier.queue_depth() == 0


def test_records_not_started_before_the_deadline_are_given_back_uncalled(
    copier: CopierHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given five requests copied one at a time, each remote copy taking a second, and a Lambda timeout that leaves
    # 4.5 s for remote copies (the copier keeps a safety margin and room for the calls after each copy, and starts
    # no call with less than 2 s of its own)
    monkeypatch.setenv("COPY_CONCURRENCY", "1")
    files = [copier.add_file(size=10 + n) for n in range(5)]
    copier.emulator.copy_delay = 1.0
    copier.send(*files)
    messages = receive(copier, 5)
    context = LambdaContext(timeout_seconds=SAFETY_MARGIN_SECONDS + AFTER_COPY_SECONDS + 4.5)

    # When one invocation runs them
    response = handle_copy.lambda_handler(lambda_event(copier, messages), context)

    # Then it returned before its deadline, reporting exactly the records it did not finish, none of which it
    # started; the others are verified
    assert context.get_remaining_time_in_millis() > 0
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    by_id = {m["MessageId"]: CopyRequest.from_message(m["Body"]).uuid for m in messages}
    given_back = [f for f in files if f.uuid in {by_id[i] for i in failed}]
    finished = [f for f in files if f not in given_back]
    assert len(given_back) >= 2  # the fourth call would start with at most 1.5 s left
    assert finished
    assert all(copier.emulator.copy_calls(f.uuid) == 0 for f in given_back)
    assert_verified_once(copier, *finished)

    # And the redelivery copies them
    copier.emulator.copy_delay = 0.0
    for message in messages:
        if message["MessageId"] in failed:
            visibility_timeout_passes(copier, [message])
        else:
            boto3.client("sqs").delete_message(QueueUrl=copier.stack.queue_url, ReceiptHandle=message["ReceiptHandle"])
    copier.drain()
    assert_verified_once(copier, *files)
    assert copier.queue_depth() == 0
    assert copier.dead_letters() == []


# AWS dependencies failing (DynamoDB, S3, SQS, Secrets Manager) are injected in front of moto by
# tests/integration/test_aws_outages.py, on the real schedule.
