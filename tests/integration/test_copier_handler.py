"""The copier end to end: `handle_copy.lambda_handler` driven over a real SQS queue (moto server) by the local
event-source poller, copying through the Uploadcare emulator into a moto bucket. Every file must end verified in
the bucket or in the DLQ with a reason, and the counts must add up."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from devkit.emulator import Fault
from tests.conftest import load_event
from tests.integration.copier_support import CopierHarness, copier, detail_of, reason_of
from uploadcare_s3_copy.copier.rules import (
    AFTER_COPY_SECONDS,
    MIN_CALL_SECONDS,
    RETRY_BASE_SECONDS,
    SAFETY_MARGIN_SECONDS,
)
from uploadcare_s3_copy.copy_request import CopyRequest

__all__ = ["copier"]  # the fixture


def test_a_copy_lands_in_the_bucket_and_is_verified(copier: CopierHarness) -> None:
    # Given a file Uploadcare knows
    file = copier.add_file(original_filename="report.pdf", size=2048)

    # When its copy request goes through the copier
    copier.send(file)
    stats = copier.drain()

    # Then the object is in the bucket with the file's size, the queue is empty and nothing was dead-lettered
    assert copier.object_size(f"uploads/{file.uuid}/report.pdf") == 2048
    assert copier.emulator.copies(file.uuid) == 1
    assert stats.deleted == 1
    assert stats.responses == [{"batchItemFailures": []}]
    assert copier.queue_depth() == 0
    assert copier.dead_letters() == []


def test_unicode_and_spaces_in_the_name(copier: CopierHarness) -> None:
    file = copier.add_file(original_filename="Fjällräven \u2013 summer 2024 (1).JPG", size=777)

    copier.send(file)
    copier.drain()

    assert copier.object_size(copier.key_of(file)) == 777
    assert copier.key_of(file) == f"uploads/{file.uuid}/Fjllrvensummer20241.JPG"
    assert copier.dead_letters() == []


def test_already_there_without_result_is_verified_at_the_predicted_key(copier: CopierHarness) -> None:
    # Given Uploadcare's auto-copy already put the file there (so remote_copy answers 200 without `result`)
    file = copier.add_file(original_filename="auto copied.png", size=500)
    boto3.client("s3").put_object(Bucket=copier.bucket, Key=copier.key_of(file), Body=b"x" * 500)

    copier.send(file)
    stats = copier.drain()

    assert copier.emulator.copy_calls(file.uuid) == 1
    assert copier.emulator.copies(file.uuid) == 0
    assert stats.deleted == 1
    assert copier.dead_letters() == []


def test_already_there_with_result(copier: CopierHarness) -> None:
    copier.emulator.already_exists_with_result = True
    file = copier.add_file(original_filename="a.txt", size=10)
    copier.send(file)
    copier.drain()
    copier.send(file)  # a second request (e.g. from a backfill): Uploadcare says 200 with `result`
    copier.drain()

    assert copier.emulator.copies(file.uuid) == 1
    assert copier.dead_letters() == []


def test_already_there_but_of_another_size_is_a_verification_failure(copier: CopierHarness) -> None:
    file = copier.add_file(original_filename="b.txt", size=10)
    boto3.client("s3").put_object(Bucket=copier.bucket, Key=copier.key_of(file), Body=b"short")

    copier.send(file)
    copier.drain()

    [message] = copier.dead_letters()
    assert reason_of(message) == "verification_failed"
    assert "5 bytes, expected 10" in detail_of(message)


def test_throttled_then_copied_in_the_same_invocation(copier: CopierHarness) -> None:
    file = copier.add_file(size=100)
    copier.emulator.script(file.uuid, Fault.throttled(retry_after=1))

    copier.send(file)
    stats = copier.drain()

    assert stats.batches == 1  # waited Retry-After in-process instead of giving the record back
    assert copier.emulator.copy_calls(file.uuid) == 2
    assert copier.object_size(copier.key_of(file)) == 100


@pytest.mark.parametrize("fault", [Fault.server_error(502), Fault.server_error(500), Fault.not_ready()])
def test_transient_failure_is_given_back_and_copied_on_redelivery(copier: CopierHarness, fault: Fault) -> None:
    file = copier.add_file(size=64)
    copier.emulator.script(file.uuid, fault)

    copier.send(file)
    stats = copier.drain()

    assert stats.given_back == 1
    assert stats.batches == 2
    assert copier.object_size(copier.key_of(file)) == 64
    assert copier.emulator.copies(file.uuid) == 1
    assert copier.dead_letters() == []


def test_wrong_size_copy_goes_to_the_dlq_with_the_numbers(copier: CopierHarness) -> None:
    file = copier.add_file(size=300, wrong_size=True)

    [body] = copier.send(file)
    stats = copier.drain()

    [message] = copier.dead_letters()
    assert reason_of(message) == "verification_failed"
    assert "301 bytes, expected 300" in detail_of(message)
    assert message["Body"] == body  # the original request, unchanged, so it can be redriven
    assert message["MessageAttributes"]["uuid"]["StringValue"] == file.uuid
    assert stats.deleted == 1  # reported done once it is safely in the DLQ
    assert copier.queue_depth() == 0


def test_over_5_gb_goes_to_the_dlq_without_a_remote_call(copier: CopierHarness) -> None:
    file = copier.add_file(original_filename="huge.mov", size=6 * 1024**3)

    copier.send(file)
    copier.drain()

    [message] = copier.dead_letters()
    assert reason_of(message) == "too_large"
    assert copier.emulator.copy_calls(file.uuid) == 0


def test_unknown_file_goes_to_the_dlq(copier: CopierHarness) -> None:
    file = copier.add_file(size=10)
    request = copier.request_for(file)
    copier.emulator.forget_file(file.uuid)  # 404 to remote_copy and to GET /files/<uuid>/: not of this project

    copier.send_body(request.to_message())
    copier.drain()

    [message] = copier.dead_letters()
    assert reason_of(message) == "not_found"


def test_a_message_that_is_not_a_copy_request_goes_to_the_dlq_unchanged(copier: CopierHarness) -> None:
    copier.send_body('{"version": 1, "uuid": "not-a-uuid"}')

    copier.drain()

    [message] = copier.dead_letters()
    assert reason_of(message) == "invalid_copy_request"
    assert "uuid is not a lowercase canonical UUID" in detail_of(message)
    assert message["Body"] == '{"version": 1, "uuid": "not-a-uuid"}'


def test_a_redelivered_request_is_not_copied_twice(copier: CopierHarness) -> None:
    # Given a file copied once
    file = copier.add_file(size=42)
    copier.send(file)
    copier.drain()

    # When the same copy request arrives again (Uploadcare redelivered the webhook: a new SQS message)
    copier.send(file)
    stats = copier.drain()

    # Then Uploadcare is not called again and the record is done
    assert copier.emulator.copy_calls(file.uuid) == 1
    assert stats.deleted == 1
    assert copier.dead_letters() == []


def test_duplicates_in_one_batch_copy_once(copier: CopierHarness) -> None:
    file = copier.add_file(size=42)
    copier.emulator.copy_delay = 0.3  # so the twin finds the first in progress
    copier.send(file, file, file)

    copier.drain()

    assert copier.emulator.copies(file.uuid) == 1
    assert copier.emulator.copy_calls(file.uuid) == 1
    assert copier.queue_depth() == 0
    assert copier.dead_letters() == []


def test_mixed_batch_reports_exactly_the_transient_failures(copier: CopierHarness) -> None:
    # Given one batch of ten with every kind of outcome
    good = [copier.add_file(size=100 + n, original_filename=f"good {n}.jpg") for n in range(5)]
    flaky = copier.add_file(size=11)
    copier.emulator.script(flaky.uuid, Fault.server_error(503))
    not_ready = copier.add_file(size=12)
    copier.emulator.script(not_ready.uuid, Fault.not_ready())
    wrong = copier.add_file(size=13, wrong_size=True)
    huge = copier.add_file(size=5 * 1024**3 + 1)
    gone = copier.add_file(size=14)
    gone_request = copier.request_for(gone)
    copier.emulator.forget_file(gone.uuid)
    copier.send(*good, flaky, not_ready, wrong, huge)
    copier.send_body(gone_request.to_message())

    # When the poller runs the copier over the queue
    stats = copier.drain()

    # Then the first response names exactly the two transient records, and all ten end up somewhere
    first = stats.responses[0]["batchItemFailures"]
    assert len(first) == 2
    verified = [f for f in [*good, flaky, not_ready] if copier.object_size(copier.key_of(f)) == f.size]
    dead = copier.dead_letters()
    assert sorted(reason_of(m) for m in dead) == ["not_found", "too_large", "verification_failed"]
    assert len(verified) == 7
    assert len(verified) + len(dead) == 10
    assert copier.queue_depth() == 0


def test_dlq_send_failing_gives_the_record_back(copier: CopierHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a DLQ that cannot be reached, and a copy that fails permanently
    monkeypatch.setenv("COPY_DLQ_URL", copier.stack.dlq_url + "-missing")
    file = copier.add_file(size=10, wrong_size=True)
    copier.send(file)

    # When the copier runs once
    stats = copier.poll_once()

    # Then the record is reported failed and stays on the queue: not lost
    [failure] = stats.responses[0]["batchItemFailures"]
    assert failure["itemIdentifier"]
    assert stats.given_back == 1
    assert copier.queue_depth() == 1
    assert copier.dead_letters() == []


def test_rotated_uploadcare_secret_key_is_picked_up(copier: CopierHarness) -> None:
    # Given a warm copier, then the Uploadcare secret key rotated (in Uploadcare and in Secrets Manager)
    first = copier.add_file(size=5)
    copier.send(first)
    copier.drain()
    copier.emulator.rotate_secret_key("rotated-secret-key")
    copier.stack.put_secret(secret_key="rotated-secret-key")

    # When the next file is copied
    second = copier.add_file(size=6)
    copier.send(second)
    stats = copier.drain()

    # Then the copier re-read the secret after the 401 and copied in the same invocation
    assert copier.object_size(copier.key_of(second)) == 6
    assert stats.batches == 1
    assert copier.dead_letters() == []


def test_the_sample_sqs_event_carries_a_valid_copy_request() -> None:
    event = load_event("sqs-copy-request.json")
    webhook = json.loads(load_event("webhook-file-uploaded.json")["body"])

    request = CopyRequest.from_message(event["Records"][0]["body"])

    assert request.uuid == webhook["data"]["uuid"]
    assert request.size == webhook["data"]["size"]
    assert request.original_filename == webhook["data"]["original_filename"]


def test_metrics_count_outcomes_and_failures_by_reason(
    copier: CopierHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    good = copier.add_file(size=10)
    wrong = copier.add_file(size=20, wrong_size=True)
    copier.send(good, wrong)

    copier.drain()

    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    by_reason = [b for b in blobs if b.get("reason") == "verification_failed"]
    batch = next(b for b in blobs if "CopySucceeded" in b and "spec" not in b)
    assert batch["CopySucceeded"] == [1.0]
    assert batch["CopyFailed"] == [1.0]
    assert batch["VerificationFailed"] == [1.0]
    assert batch["BytesCopied"] == [10.0]
    assert [b["CopyFailed"] for b in by_reason] == [[1.0]]
    # and once more by copy spec (dimension `spec`), one blob per (metric, spec) of the batch
    by_spec = {
        (name, b["spec"]): b[name]
        for b in blobs
        if "spec" in b
        for name in ("CopySucceeded", "CopyFailed")
        if name in b
    }
    assert by_spec == {("CopySucceeded", "original"): [1.0], ("CopyFailed", "original"): [1.0]}


def test_a_throttled_record_that_cannot_wait_returns_after_the_backoff_not_the_visibility_timeout(
    copier: CopierHarness,
) -> None:
    # Given a copy Uploadcare throttles for 1 s, in an invocation that can start the call but not wait in-process
    file = copier.add_file(size=10)
    copier.emulator.script(file.uuid, Fault.throttled(retry_after=1))
    copier.send(file)
    timeout = SAFETY_MARGIN_SECONDS + AFTER_COPY_SECONDS + MIN_CALL_SECONDS + 0.5

    # When the copier gives it back (as on AWS: the poller leaves the visibility the copier set)
    stats = copier.poll_once(function_timeout=timeout, as_lambda=True)
    given_back = time.monotonic()

    # Then it is hidden for the first back-off (15 s: a run of short Retry-After answers must not spend the retry
    # budget's receives in seconds), and back then, not after the queue's 35-minute visibility timeout
    assert stats.given_back == 1
    assert copier.emulator.copy_calls(file.uuid) == 1
    time.sleep(2)
    assert copier.visible_messages() == 0
    time.sleep(max(0.0, given_back + RETRY_BASE_SECONDS + 1.5 - time.monotonic()))
    assert copier.visible_messages() == 1
    copier.drain()
    assert copier.object_size(copier.key_of(file)) == 10
