"""The copy ledger (uploadcare_s3_copy/ledger.py): the copier leaves one permanent item per verified or parked copy,
and a request for a copy the ledger proves costs no Uploadcare call, however long after the first copy it comes.
Real DynamoDB semantics from the moto server; its faults injected in front of it (devkit/aws_faults.py)."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import boto3
import pytest

from devkit.aws_faults import AwsFaultProxy, Fault
from tests.integration.copier_support import CopierHarness, assert_verified_once, copier, reason_of
from tests.integration.test_aws_outages import BOTH_ATTEMPTS, proxy
from uploadcare_s3_copy.ledger import DEFAULT_SPEC, Ledger, LedgerItem, LedgerStatus

__all__ = ["copier", "proxy"]  # the fixtures
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_a_verified_copy_leaves_its_proof_in_the_ledger(copier: CopierHarness) -> None:
    # Given a file
    file = copier.add_file(original_filename="invoice 7.pdf", size=1234)
    copier.send(file)

    # When the copier copies it
    copier.drain()

    # Then the ledger holds the proof: where the object is, its size and ETag as S3 reported them, and when
    item = copier.ledger_item(file)
    assert item is not None
    head = boto3.client("s3").head_object(Bucket=copier.bucket, Key=copier.key_of(file))
    assert (item.status, item.spec, item.bucket, item.key) == (
        LedgerStatus.VERIFIED,
        DEFAULT_SPEC,
        copier.bucket,
        copier.key_of(file),
    )
    assert item.size == 1234
    assert item.etag == head["ETag"].strip('"')
    assert item.origin == "manual"
    assert ISO_UTC.match(item.verified_at)
    assert item.updated_at == item.verified_at
    assert item.reason == ""


def test_a_copy_the_ledger_proves_costs_no_uploadcare_call_after_the_idempotency_records_expired(
    copier: CopierHarness,
) -> None:
    # Given three files copied, and their idempotency records gone (as TTL removes them after 96 hours)
    files = [copier.add_file(size=10 + n) for n in range(3)]
    copier.send(*files)
    copier.drain()
    assert copier.forget_idempotency() == 3

    # When their copy requests come again (a backfill a year later, a late redelivery)
    copier.send(*files)
    stats = copier.drain()

    # Then each is done from the ledger: no second remote_copy call, nothing parked
    assert stats.deleted == 3
    assert [copier.emulator.copy_calls(f.uuid) for f in files] == [1, 1, 1]
    assert_verified_once(copier, *files)
    assert copier.dead_letters() == []


def test_a_parked_copy_is_in_the_ledger_as_dead_lettered_with_its_reason(copier: CopierHarness) -> None:
    # Given a file whose copy comes out the wrong size
    file = copier.add_file(size=300, wrong_size=True)
    copier.send(file)

    # When the copier parks it
    copier.drain()

    # Then the DLQ and the ledger both say why
    [message] = copier.dead_letters()
    assert reason_of(message) == "verification_failed"
    item = copier.ledger_item(file)
    assert item is not None
    assert (item.status, item.reason, item.origin) == (LedgerStatus.DEAD_LETTERED, "verification_failed", "manual")
    assert ISO_UTC.match(item.updated_at)
    assert item.verified_at == ""


def test_a_dead_lettered_item_never_replaces_a_verified_one(copier: CopierHarness) -> None:
    # Given a verified copy in the ledger
    file = copier.add_file(size=64)
    copier.send(file)
    copier.drain()
    ledger = Ledger(boto3.client("dynamodb"), copier.stack.ledger_table)

    # When a late permanent failure for the same (file, spec) is recorded
    ledger.put(LedgerItem(file.uuid, DEFAULT_SPEC, LedgerStatus.DEAD_LETTERED, "2030-01-01T00:00:00.000Z", reason="x"))

    # Then the proof stands
    item = copier.ledger_item(file)
    assert item is not None
    assert item.status is LedgerStatus.VERIFIED
    assert item.reason == ""


def test_the_ledger_write_failing_after_the_proof_gives_back_and_the_redelivery_writes_it(
    copier: CopierHarness, proxy: AwsFaultProxy
) -> None:
    # Given DynamoDB failing the ledger write (both attempts) once the copy is verified
    table = copier.stack.ledger_table
    rule = proxy.add(
        "dynamodb:PutItem", Fault.server_error(), when=lambda call: call.mentions(f'"{table}"'), times=BOTH_ATTEMPTS
    )
    file = copier.add_file(size=512)
    copier.send(file)

    # When the copier runs until the queue is empty
    stats = copier.drain()

    # Then the first attempt was given back (not reported done without its proof), and the redelivery found the
    # copy already there and wrote the ledger item: one copy, nothing parked
    assert rule.hits == BOTH_ATTEMPTS
    assert stats.given_back == 1
    assert copier.emulator.copy_stats(file.uuid).already_exists == 1
    item = copier.ledger_item(file)
    assert item is not None
    assert item.status is LedgerStatus.VERIFIED
    assert_verified_once(copier, file)
    assert copier.dead_letters() == []


def test_a_batch_is_looked_up_in_the_ledger_with_one_call(copier: CopierHarness, proxy: AwsFaultProxy) -> None:
    # Given five files, three of them already proven in the ledger
    files = [copier.add_file(size=20 + n) for n in range(5)]
    copier.send(*files[:3])
    copier.drain()
    copier.forget_idempotency()
    before = dict(proxy.calls)

    # When one batch brings all five
    copier.send(*files)
    stats = copier.poll_once()

    # Then one BatchGetItem answered for the whole batch (no GetItem per record): the three proven ones made no
    # Uploadcare call, the two new ones were copied
    assert stats.deleted == 5
    assert proxy.calls["dynamodb:BatchGetItem"] - before.get("dynamodb:BatchGetItem", 0) == 1
    assert proxy.calls["dynamodb:GetItem"] - before.get("dynamodb:GetItem", 0) == 0
    assert [copier.emulator.copy_calls(f.uuid) for f in files] == [1, 1, 1, 1, 1]
    assert_verified_once(copier, *files)


def test_a_failed_batch_lookup_falls_back_to_one_lookup_per_record(copier: CopierHarness, proxy: AwsFaultProxy) -> None:
    # Given a file already proven, and DynamoDB failing the batch lookup (both attempts)
    file = copier.add_file(size=33)
    copier.send(file)
    copier.drain()
    copier.forget_idempotency()
    rule = proxy.add("dynamodb:BatchGetItem", Fault.server_error(), times=BOTH_ATTEMPTS)

    # When its request comes again
    copier.send(file)
    stats = copier.poll_once()

    # Then its own GetItem found the proof: done, no second Uploadcare call
    assert rule.hits == BOTH_ATTEMPTS
    assert stats.deleted == 1
    assert copier.emulator.copy_calls(file.uuid) == 1


def test_an_unreadable_ledger_gives_the_record_back_before_any_copy(
    copier: CopierHarness, proxy: AwsFaultProxy
) -> None:
    # Given DynamoDB throttling every ledger lookup, batched and single
    table = copier.stack.ledger_table
    proxy.add("dynamodb:BatchGetItem", Fault.throttled(), when=lambda call: call.mentions(f'"{table}"'))
    rule = proxy.add("dynamodb:GetItem", Fault.throttled(), when=lambda call: call.mentions(f'"{table}"'))
    file = copier.add_file(size=77)
    copier.send(file)

    # When the copier runs once
    stats = copier.poll_once()

    # Then the record is given back without an Uploadcare call, and copied once the table answers again
    assert rule.hits == BOTH_ATTEMPTS
    assert len(stats.responses[0]["batchItemFailures"]) == 1
    assert copier.emulator.copy_calls(file.uuid) == 0
    proxy.clear()
    copier.drain()
    assert_verified_once(copier, file)


def test_the_upload_time_a_request_carries_lands_in_the_ledger_item(copier: CopierHarness) -> None:
    # Given a copy request that knows when the file was uploaded (a webhook's or the reconciler's)
    file = copier.add_file(size=77)
    request = copier.request_for(file)
    copier.send_body(replace(request, uploaded_at="2025-03-04T05:06:07.123Z").to_message())

    # When it is copied
    copier.drain()

    # Then its ledger item says when the file was uploaded
    item = copier.ledger_item(file)
    assert item is not None
    assert (item.status, item.uploaded_at) == (LedgerStatus.VERIFIED, "2025-03-04T05:06:07.123Z")


def test_a_request_for_a_spec_this_deployment_lacks_is_parked_without_a_call_or_a_ledger_item(
    copier: CopierHarness,
) -> None:
    # Given a request naming only a copy spec this deployment does not have
    file = copier.add_file(size=5)
    copier.send_body(copier.request_for(file).for_specs(("thumbnail",)).to_message())

    # When the copier takes it
    copier.drain()

    # Then it is parked as unknown_spec: no Uploadcare call, no ledger item for a spec it was not for
    [message] = copier.dead_letters()
    assert reason_of(message) == "unknown_spec"
    assert "thumbnail" in message["MessageAttributes"]["detail"]["StringValue"]
    assert copier.emulator.copy_calls(file.uuid) == 0
    assert copier.ledger_item(file) is None


def test_a_request_naming_the_original_spec_among_others_is_copied_and_the_unknown_one_parked(
    copier: CopierHarness,
) -> None:
    file = copier.add_file(size=6)
    copier.send_body(copier.request_for(file).for_specs(("thumbnail", DEFAULT_SPEC)).to_message())

    copier.drain()

    assert_verified_once(copier, file)
    [message] = copier.dead_letters()  # the name no spec of this deployment has, on its own
    assert reason_of(message) == "unknown_spec"
    assert message["MessageAttributes"]["spec"]["StringValue"] == "thumbnail"
    assert json.loads(message["Body"])["specs"] == ["thumbnail"]
