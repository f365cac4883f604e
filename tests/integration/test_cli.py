"""The operations CLI (`uploadcare-s3-copy`) end to end: its commands run in-process through `main(argv)` against
the session's moto server and the Uploadcare emulator over loopback HTTP, with the copier (`handle_copy`) run over
the queues by the local event-source poller where a command's effect is a copy. One test runs the installed
console script as a subprocess."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import EndpointConnectionError

import handle_copy
from devkit.emulator import EmulatedFile
from devkit.local_resources import publish_stack, read_queue
from tests.integration.copier_support import STORAGE, CopierHarness, copier, reason_of
from uploadcare_s3_copy.uploadcare import Credentials
from uploadcare_s3_copy_cli.admin_api import AdminClient
from uploadcare_s3_copy_cli.app import main
from uploadcare_s3_copy_cli.context import AwsClients
from uploadcare_s3_copy_cli.queueing import BatchSender

__all__ = ["copier"]  # the fixture

WEBHOOK_URL = "https://ops.execute-api.localhost/webhooks/uploadcare"
JANUARY = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Ops:
    copier: CopierHarness
    environ: dict[str, str]
    cache: Path
    sleeps: list[float] = field(default_factory=list)

    @property
    def emulator(self) -> Any:
        return self.copier.emulator

    def run(self, *argv: str, environ: dict[str, str] | None = None, aws: AwsClients | None = None) -> Ran:
        out, err = io.StringIO(), io.StringIO()
        environ = self.environ if environ is None else environ
        code = main(list(argv), environ=environ, out=out, err=err, sleep=self.sleeps.append, aws=aws)
        return Ran(code, out.getvalue(), err.getvalue())

    def queued(self) -> list[dict[str, Any]]:
        """The copy requests on the copy queue, left there (made visible again after reading)."""
        messages = read_queue(self.copier.stack.queue_url)
        sqs = boto3.client("sqs")
        for message in messages:
            sqs.change_message_visibility(
                QueueUrl=self.copier.stack.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        return [json.loads(m["Body"]) for m in messages]

    def take_queued(self) -> list[dict[str, Any]]:
        """Receives and deletes every copy request on the copy queue."""
        sqs = boto3.client("sqs")
        taken: list[dict[str, Any]] = []
        while batch := sqs.receive_message(QueueUrl=self.copier.stack.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            taken.extend(json.loads(m["Body"]) for m in batch)
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)]
            sqs.delete_message_batch(QueueUrl=self.copier.stack.queue_url, Entries=entries)
        return taken

    def secret(self) -> dict[str, str]:
        answer = boto3.client("secretsmanager").get_secret_value(SecretId=self.copier.stack.secret_id)
        value: dict[str, str] = json.loads(answer["SecretString"])
        return value

    def dlq_depth(self) -> int:
        attributes = boto3.client("sqs").get_queue_attributes(
            QueueUrl=self.copier.stack.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])


@pytest.fixture
def ops(copier: CopierHarness, tmp_path: Path) -> Ops:
    """The CLI's settings are the functions' own environment variables of a local stack (plus WEBHOOK_URL)."""
    environ = {
        **copier.stack.webhook_env(),
        **copier.stack.copier_env(copier.emulator.url),
        "WEBHOOK_URL": WEBHOOK_URL,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    return Ops(copier, environ, tmp_path / "cache")


def uploads(ops: Ops, count: int, *, start: datetime = JANUARY, **kwargs: Any) -> list[EmulatedFile]:
    return [
        ops.emulator.add_file(
            original_filename=f"file-{n:05d}.bin",
            size=100 + n,
            datetime_uploaded=start + timedelta(minutes=n),
            **kwargs,
        )
        for n in range(count)
    ]


def state_of(ops: Ops) -> dict[str, Any]:
    (path,) = (ops.cache / "uploadcare-s3-copy").glob("backfill-*.json")
    state: dict[str, Any] = json.loads(path.read_text())
    return state


# --- backfill -------------------------------------------------------------------------------------------------


class RecordingSqs:
    """SendMessageBatch recorded in memory. For the 2,500-file backfill only: moto's SQS gets quadratically slower
    with the messages a queue holds (every send and receive recounts them), minutes for a few thousand. Sending to
    moto for real is what the other backfill tests do."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.batches.append([entry["MessageBody"] for entry in Entries])
        return {"Successful": [{"Id": entry["Id"], "MessageId": entry["Id"]} for entry in Entries], "Failed": []}


class AwsWithRecordedSqs(AwsClients):
    def __init__(self, sqs: RecordingSqs) -> None:
        super().__init__()
        self.sqs = sqs

    def __call__(self, service: str) -> Any:
        return self.sqs if service == "sqs" else super().__call__(service)


def test_an_interrupted_backfill_of_2500_files_resumes_and_queues_each_file_once(ops: Ops) -> None:
    # Given 2,500 files uploaded in 2024, and the copy queue's sends recorded
    files = uploads(ops, 2500)
    sqs = RecordingSqs()
    aws = AwsWithRecordedSqs(sqs)

    # When a backfill stops after 10 pages of 100 (as an interruption would) and is then resumed
    first = ops.run("backfill", "--from", "2024-01-01", "--max-pages", "10", aws=aws)
    saved = state_of(ops)
    sent_by_first = [json.loads(body)["uuid"] for batch in sqs.batches for body in batch]
    second = ops.run("backfill", "--resume", aws=aws)

    # Then the first run saved and printed where to continue, and how
    assert first.code == 0, first.text
    assert saved["queued"] == 1000
    assert saved["done"] is False
    assert f"Next page: {saved['cursor']}" in first.out
    assert "Continue with: uploadcare-s3-copy backfill --resume" in first.out
    # and the resumed run went on from that cursor (25 pages in all, none listed twice) to the end
    assert second.code == 0, second.text
    assert ops.emulator.request_count("GET", "/files/") == 25
    assert state_of(ops)["done"] is True
    assert "Backfill finished: 2,500 files seen, 2,500 queued, 0 skipped, 25 pages (1,500 queued by this run)" in (
        second.out
    )
    assert "backfill: 2,500 seen · 2,500 queued · 0 skipped" in second.err  # the progress line
    # and every file was queued exactly once, ten per SendMessageBatch, as a backfill copy request
    queued = [json.loads(body) for batch in sqs.batches for body in batch]
    assert sorted(request["uuid"] for request in queued) == sorted(file.uuid for file in files)
    assert sent_by_first == [file.uuid for file in files[:1000]]  # in upload order
    assert {len(batch) for batch in sqs.batches} == {10}
    assert {request["origin"] for request in queued} == {"backfill"}
    # and a third run has nothing left to do
    third = ops.run("backfill", "--resume", aws=aws)
    assert third.code == 0
    assert "Nothing to resume" in third.out


def test_a_backfill_interrupted_mid_page_resumes_from_the_last_saved_page(
    ops: Ops, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 300 files, listed 50 a page (five batches of ten per page)
    files = uploads(ops, 300)
    original = BatchSender.send_batch
    calls = 0

    def interrupted_on_the_18th_batch(self: BatchSender, bodies: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 18:  # the third batch of the fourth page: Ctrl-C
            raise KeyboardInterrupt
        return original(self, bodies)

    monkeypatch.setattr(BatchSender, "send_batch", interrupted_on_the_18th_batch)

    # When the backfill is interrupted inside page 4, then resumed
    first = ops.run("backfill", "--from", "2024-01-01", "--page-size", "50")
    first_queued = [request["uuid"] for request in ops.take_queued()]
    saved = state_of(ops)
    monkeypatch.setattr(BatchSender, "send_batch", original)
    second = ops.run("backfill", "--resume")
    second_queued = [request["uuid"] for request in ops.take_queued()]

    # Then the interrupted run exits 130 with the saved state after page 3, and says how to continue
    assert first.code == 130
    assert saved["pages"] == 3
    assert saved["queued"] == 150
    assert f"Next page: {saved['cursor']}" in first.err
    # and no run queued a file twice; together they queued every file (page 4's first 20 in both runs)
    assert len(first_queued) == len(set(first_queued)) == 170
    assert len(second_queued) == len(set(second_queued)) == 150
    assert set(first_queued) | set(second_queued) == {file.uuid for file in files}
    assert len(set(first_queued) & set(second_queued)) == 20
    assert second.code == 0


def test_an_sqs_failure_mid_page_keeps_the_resume_hint_and_the_resume_finishes(
    ops: Ops, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 120 files, listed 50 a page, and SQS failing the 7th SendMessageBatch (inside page 2)
    files = uploads(ops, 120)
    original = BatchSender.send_batch
    calls = 0

    def sqs_down_on_the_7th_batch(self: BatchSender, bodies: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 7:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/")
        return original(self, bodies)

    monkeypatch.setattr(BatchSender, "send_batch", sqs_down_on_the_7th_batch)

    # When the backfill meets it, and is then resumed
    first = ops.run("backfill", "--from", "2024-01-01", "--page-size", "50")
    saved = state_of(ops)
    first_queued = {request["uuid"] for request in ops.take_queued()}
    second = ops.run("backfill", "--resume")
    second_queued = {request["uuid"] for request in ops.take_queued()}

    # Then the failed run says what failed and how to continue from the page in flight (no traceback)
    assert first.code == 1, first.text
    assert "queueing to SQS failed" in first.err
    assert f"Next page: {saved['cursor']}" in first.err
    assert "Continue with: uploadcare-s3-copy backfill --resume" in first.err
    assert "Traceback" not in first.err
    assert saved["pages"] == 1
    # and the resume queued page 2 again and the rest: every file queued
    assert second.code == 0, second.text
    assert first_queued | second_queued == {file.uuid for file in files}


def test_a_backfill_skips_files_outside_the_range_and_unstored_files_with_stored_only(ops: Ops) -> None:
    # Given files before, inside and after January 2024; one unstored, one removed
    add = ops.emulator.add_file
    before = add(original_filename="before.txt", datetime_uploaded=datetime(2023, 12, 31, 23, 59, tzinfo=UTC))
    stored = add(original_filename="stored.txt", datetime_uploaded=datetime(2024, 1, 10, tzinfo=UTC))
    unstored = add(original_filename="temp.txt", stored=False, datetime_uploaded=datetime(2024, 1, 20, tzinfo=UTC))
    removed = add(original_filename="gone.txt", datetime_uploaded=datetime(2024, 1, 25, tzinfo=UTC))
    last_day = add(original_filename="last-day.txt", datetime_uploaded=datetime(2024, 1, 31, 23, 0, tzinfo=UTC))
    after = add(original_filename="after.txt", datetime_uploaded=datetime(2024, 2, 1, tzinfo=UTC))
    ops.emulator.remove_file(removed.uuid)

    # When two backfills of January run: stored files only, then all files
    stored_only = ops.run("backfill", "--from", "2024-01-01", "--to", "2024-01-31", "--stored-only")
    only_stored = {request["uuid"] for request in ops.take_queued()}
    everything = ops.run("backfill", "--from", "2024-01-01", "--to", "2024-01-31")
    all_files = {request["uuid"] for request in ops.take_queued()}

    # Then a bare --to date includes that whole day, and nothing before, after or removed was queued
    assert stored_only.code == 0
    assert everything.code == 0
    assert only_stored == {stored.uuid, last_day.uuid}
    assert all_files == {stored.uuid, unstored.uuid, last_day.uuid}
    assert not {before.uuid, removed.uuid, after.uuid} & (only_stored | all_files)
    assert "Replacing" not in everything.err  # the first backfill had finished


def test_a_dry_run_counts_but_queues_nothing_and_saves_no_state(ops: Ops) -> None:
    uploads(ops, 12)

    ran = ops.run("backfill", "--from", "2024-01-01", "--dry-run")

    assert ran.code == 0, ran.text
    assert "Dry run: 12 files seen, 12 would be queued, 0 skipped, 1 page" in ran.out
    assert ops.queued() == []
    assert not ops.cache.exists()


# --- copy -----------------------------------------------------------------------------------------------------


def test_copy_queues_manual_requests_that_the_copier_verifies(ops: Ops) -> None:
    # Given one file Uploadcare knows, and a UUID it does not
    file = ops.emulator.add_file(original_filename="contract.pdf", size=4096)
    unknown = str(uuidlib.uuid4())

    # When both are given to `copy`, and the copier runs
    ran = ops.run("copy", file.uuid, unknown)
    queued = ops.queued()
    ops.copier.drain()

    # Then the known one was queued as a manual copy request and ended verified; the unknown one is reported
    assert ran.code == 1
    assert f"✓ {file.uuid}  queued (contract.pdf, 4,096 bytes)" in ran.out
    assert f"✗ {unknown}  not_found" in ran.out
    assert [(request["uuid"], request["origin"], request["size"]) for request in queued] == [
        (file.uuid, "manual", 4096)
    ]
    assert ops.copier.object_size(ops.copier.key_of(file)) == 4096


def test_copy_direct_copies_and_proves_the_copy_here(ops: Ops) -> None:
    # Given a good file and one whose copy comes out one byte too long
    good = ops.emulator.add_file(original_filename="photo.jpg", size=2048)
    bad = ops.emulator.add_file(original_filename="broken.jpg", size=10, wrong_size=True)

    # When both are copied directly
    ran = ops.run("copy", "--direct", good.uuid, bad.uuid)

    # Then the good one is in the bucket and verified, the bad one failed verification; nothing was queued
    key = ops.copier.key_of(good)
    assert ran.code == 1
    assert f"✓ {good.uuid}  s3://{ops.copier.bucket}/{key}  2,048 bytes  copied, verified" in ran.out
    assert f"✗ {bad.uuid}  verification_failed: " in ran.out
    assert ops.copier.object_size(key) == 2048
    assert ops.queued() == []


# --- webhook register -----------------------------------------------------------------------------------------


def test_webhook_register_stores_a_new_signing_secret_first_and_registers_once(
    ops: Ops, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a secret without a signing secret, and a spy on what Secrets Manager holds when Uploadcare is called
    ops.copier.stack.put_secret(webhook_signing_secret="")
    stored_when_registering: list[str] = []
    create_webhook = AdminClient.create_webhook

    def spy(self: AdminClient, target_url: str, **kwargs: Any) -> dict[str, Any]:
        stored_when_registering.append(ops.secret()["webhook_signing_secret"])
        return create_webhook(self, target_url, **kwargs)

    monkeypatch.setattr(AdminClient, "create_webhook", spy)

    # When `webhook register` runs twice
    first = ops.run("webhook", "register")
    second = ops.run("webhook", "register")

    # Then one webhook exists: the stack's URL, file.uploaded, active, version 0.7, signed with the stored secret
    secret = ops.secret()
    signing_secret = secret["webhook_signing_secret"]
    assert first.code == 0, first.text
    assert second.code == 0, second.text
    (hook,) = ops.emulator.webhooks()
    assert (hook["target_url"], hook["event"], hook["is_active"], hook["version"]) == (
        WEBHOOK_URL,
        "file.uploaded",
        True,
        "0.7",
    )
    assert hook["signing_secret"] == signing_secret
    assert 16 <= len(signing_secret) <= 32
    # and the secret was in Secrets Manager before Uploadcare was told (and the API keys were kept)
    assert stored_when_registering == [signing_secret]
    assert (secret["public_key"], secret["secret_key"]) == (
        ops.copier.stack.spec.public_key,
        ops.copier.stack.spec.secret_key,
    )
    # and the second run changed nothing; no run printed the secret
    assert "Already registered" in second.out
    assert signing_secret not in first.text + second.text


def test_webhook_register_reports_an_existing_webhook_that_cannot_work(ops: Ops) -> None:
    # Given an inactive webhook for the stack's URL with another signing secret
    stack = ops.copier.stack
    client = AdminClient(Credentials(stack.spec.public_key, stack.spec.secret_key), ops.emulator.url)
    client.create_webhook(WEBHOOK_URL, signing_secret="someone-elses-secret", is_active=False)

    # When `webhook register` runs
    ran = ops.run("webhook", "register")

    # Then it creates nothing and says what is wrong and how to fix it
    assert ran.code == 1
    assert len(ops.emulator.webhooks()) == 1
    assert "✗ webhook #1" in ran.out
    assert "it is not active" in ran.out
    assert "its signing secret is not the secret's webhook_signing_secret" in ran.out
    assert "fix: in the Uploadcare dashboard" in ran.out
    assert "someone-elses-secret" not in ran.text


# --- doctor ---------------------------------------------------------------------------------------------------


def test_doctor_is_all_green_on_a_good_set_up_with_a_test_copy(ops: Ops) -> None:
    # Given a registered webhook and a file
    assert ops.run("webhook", "register").code == 0
    file = ops.emulator.add_file(original_filename="probe.txt", size=321)

    # When the doctor checks, with a test copy
    ran = ops.run("doctor", "--test-copy", file.uuid)

    # Then every check passed and the copy was proved
    assert ran.code == 0, ran.text
    lines = ran.out.splitlines()
    checks = [line for line in lines if line[:1] in "✓✗·"]
    assert [line[2:20].strip() for line in checks] == [
        "secret",
        "Uploadcare keys",
        "webhook",
        "deletion webhook",
        "bucket",
        "copy queue",
        "dead-letter queue",
        "idempotency table",
        "test copy",
    ]
    deletion = checks.pop(3)
    assert deletion.startswith(
        "· deletion webhook   no file.deleted webhook: with ON_SOURCE_DELETE=keep it is optional"
    )
    assert all(line.startswith("✓") for line in checks)
    assert f"{ops.copier.key_of(file)}  321 bytes  copied, verified" in ran.out
    assert lines[-1] == "All good."
    assert ops.copier.object_size(ops.copier.key_of(file)) == 321
    secret = ops.secret()
    assert secret["secret_key"] not in ran.text
    assert secret["webhook_signing_secret"] not in ran.text


def test_doctor_marks_each_broken_part_with_its_fix(ops: Ops) -> None:
    # Given no signing secret, no webhook, a bucket that does not exist and a dead-lettered request
    ops.copier.stack.put_secret(webhook_signing_secret="")
    boto3.client("sqs").send_message(QueueUrl=ops.copier.stack.dlq_url, MessageBody="{}")
    environ = {**ops.environ, "TARGET_BUCKET": "no-such-bucket-for-doctor"}

    # When the doctor checks
    ran = ops.run("doctor", environ=environ)

    # Then each problem is a ✗ followed by its fix, the rest ✓, and the exit code says problems were found
    assert ran.code == 1
    out = ran.out
    assert f"✗ secret             {ops.copier.stack.secret_id} lacks webhook_signing_secret" in out
    assert "fix: uploadcare-s3-copy webhook register (generates and stores one)" in out
    assert f"✗ webhook            no file.uploaded webhook for {WEBHOOK_URL}" in out
    assert "✗ bucket             no-such-bucket-for-doctor does not exist" in out
    assert "fix: check TargetBucketName (--bucket)" in out
    assert "✗ dead-letter queue  holds 1 failed copy request\n" in out
    assert "fix: uploadcare-s3-copy dlq list, fix the cause, then uploadcare-s3-copy dlq redrive" in out
    assert [line[:20].strip() for line in out.splitlines() if line.startswith("✓")] == [
        "✓ Uploadcare keys",
        "✓ copy queue",
        "✓ idempotency table",
    ]
    assert out.splitlines()[-1] == "4 problems found."


def test_doctor_with_keys_uploadcare_refuses(ops: Ops) -> None:
    ops.copier.stack.put_secret(secret_key="not-the-secret-key")

    ran = ops.run("doctor")

    assert ran.code == 1
    assert "✗ Uploadcare keys    " in ran.out
    assert f"GET {ops.emulator.url}project/: auth: " in ran.out
    assert "fix: copy the project's public and secret API keys" in ran.out
    assert "· webhook            not checked (needs working Uploadcare keys)" in ran.out
    assert "not-the-secret-key" not in ran.text


# --- dlq ------------------------------------------------------------------------------------------------------


def dead_letter(
    ops: Ops, monkeypatch: pytest.MonkeyPatch, storage_refused: int, removed: int
) -> tuple[list[EmulatedFile], list[str]]:
    """Copy requests that end in the DLQ: refused for an unknown storage (COPY_TARGET wrong, as after a deploy
    with the wrong UploadcareStorageName), and for files Uploadcare no longer knows. The copier is then set right.
    Returns the refused files and the bodies of their copy requests."""
    refused = [ops.emulator.add_file(original_filename=f"refused-{n}.png", size=50 + n) for n in range(storage_refused)]
    gone = [ops.emulator.add_file(original_filename=f"gone-{n}.png") for n in range(removed)]
    gone_bodies = [ops.copier.request_for(file).to_message() for file in gone]
    for file in gone:
        ops.emulator.forget_file(file.uuid)
    monkeypatch.setenv("COPY_TARGET", "not-a-connected-storage")
    handle_copy.app.cache_clear()
    bodies = ops.copier.send(*refused)
    ops.copier.drain()
    monkeypatch.setenv("COPY_TARGET", STORAGE)
    handle_copy.app.cache_clear()
    for body in gone_bodies:
        ops.copier.send_body(body)
    ops.copier.drain()
    return refused, bodies


def test_dlq_list_groups_by_reason_and_leaves_the_messages_there(ops: Ops, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given three requests refused for the storage and one for a file Uploadcare does not know
    refused, _ = dead_letter(ops, monkeypatch, storage_refused=3, removed=1)

    # When the DLQ is listed twice
    first = ops.run("dlq", "list", "--examples", "2")
    second = ops.run("dlq", "list", "--examples", "2")

    # Then the groups are counted, largest first, with examples, and the messages are all still visible
    assert first.code == second.code == 1
    lines = first.out.splitlines()
    assert lines[0] == "4 messages in the dead-letter queue:"
    assert lines[1].split() == ["storage_not_found", "3"]
    examples = lines[2:4]
    assert all("Project has no storage with provided name." in line for line in examples)
    assert {line.split()[0] for line in examples} <= {file.uuid for file in refused}
    assert lines[4].strip() == "… and 1 more"
    assert lines[5].split() == ["not_found", "1"]
    assert "Not found." in lines[6]
    again = second.out.splitlines()
    assert (again[0], again[1].split(), again[5].split()) == (lines[0], lines[1].split(), lines[5].split())
    assert ops.dlq_depth() == 4


def test_dlq_redrive_moves_only_the_chosen_reason_with_the_original_body(
    ops: Ops, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three refused requests and one for a removed file in the DLQ
    _, refused_bodies = dead_letter(ops, monkeypatch, storage_refused=3, removed=1)

    # When at most two of the storage_not_found requests are redriven
    ran = ops.run("dlq", "redrive", "--reason", "storage_not_found", "--max", "2")

    # Then exactly two moved, with their original bodies, and the other two are back in view in the DLQ
    assert ran.code == 0, ran.text
    assert "Moved 2 messages to the copy queue (storage_not_found 2)." in ran.out
    assert "Left in the dead-letter queue: 2 (not_found 1, storage_not_found 1)." in ran.out
    moved = read_queue(ops.copier.stack.queue_url)
    assert len(moved) == 2
    assert {m["Body"] for m in moved} < set(refused_bodies)
    assert ops.dlq_depth() == 2
    assert sorted(reason_of(m) for m in read_queue(ops.copier.stack.dlq_url)) == ["not_found", "storage_not_found"]


def test_a_redrive_after_the_fix_empties_the_dlq_and_the_files_get_verified(
    ops: Ops, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three requests dead-lettered for a wrong storage name, and the copier since set right
    refused, _ = dead_letter(ops, monkeypatch, storage_refused=3, removed=0)
    assert ops.dlq_depth() == 3

    # When the DLQ is redriven and the copier runs
    ran = ops.run("dlq", "redrive")
    ops.copier.drain()

    # Then the DLQ is empty and every file is verified in the bucket
    assert ran.code == 0, ran.text
    assert "Moved 3 messages to the copy queue (storage_not_found 3)." in ran.out
    assert ops.copier.dead_letters() == []
    assert ops.copier.queue_depth() == 0
    assert [ops.copier.object_size(ops.copier.key_of(file)) for file in refused] == [file.size for file in refused]
    assert ops.run("dlq", "list").out.startswith("The dead-letter queue is empty")


# --- resources from a stack, and the installed command ---------------------------------------------------------


def test_stack_reads_every_resource_from_the_cloudformation_stack(ops: Ops) -> None:
    # Given the local stack published as a CloudFormation stack (outputs and parameters as template.yaml names them)
    name = publish_stack(ops.copier.stack, api_url=ops.emulator.url, webhook_url=WEBHOOK_URL)
    only_the_cache = {"XDG_CACHE_HOME": str(ops.cache)}

    # When the commands get nothing but --stack
    registered = ops.run("webhook", "register", "--stack", name, environ=only_the_cache)
    checked = ops.run("doctor", "--stack", name, environ=only_the_cache)
    unknown = ops.run("doctor", "--stack", "no-such-stack", environ=only_the_cache)

    # Then they find the secret, the API, the webhook URL, the bucket, both queues and the table
    assert registered.code == 0, registered.text
    assert checked.code == 0, checked.text
    assert f"Checking stack {name}:" in checked.out
    # and an unknown stack is a usage error
    assert unknown.code == 2
    assert "stack 'no-such-stack' does not exist" in unknown.err


def test_the_installed_console_script_runs(ops: Ops) -> None:
    # Given the command `make` installs into the virtualenv
    script = Path(sys.executable).parent / "uploadcare-s3-copy"
    assert script.is_file(), "the dev venv installs the project (scripts/make-venv.sh --with-project)"
    env = {**os.environ, **ops.environ}

    # When it runs as its own process: a command, then a usage error
    listed = subprocess.run([script, "dlq", "list"], env=env, capture_output=True, text=True, timeout=60, check=False)
    misused = subprocess.run([script, "copy", "nope"], env=env, capture_output=True, text=True, timeout=60, check=False)

    # Then it answers with the documented exit codes
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("The dead-letter queue is empty")
    assert misused.returncode == 2
    assert "'nope' is not a file UUID" in misused.stderr


# --- what every command shares --------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once the socket is closed


def test_an_unreachable_uploadcare_names_the_url_and_the_setting_that_gave_it(ops: Ops) -> None:
    # Given an API URL where nothing listens, once from the environment and once from the option
    port = closed_port()
    dead = f"http://127.0.0.1:{port}/"
    environ = {**ops.environ, "UPLOADCARE_API_URL": dead}
    file = ops.emulator.add_file(original_filename="a.jpg", size=10)

    # When a command calls Uploadcare
    from_env = ops.run("copy", file.uuid, environ=environ)
    from_option = ops.run("backfill", "--from", "2024-01-01", "--api-url", dead)

    # Then each failure says where it tried and which setting said so
    assert from_env.code == 1
    assert f"cannot reach Uploadcare's REST API at {dead}, from $UPLOADCARE_API_URL" in from_env.out
    assert from_option.code == 1
    assert f"cannot reach Uploadcare's REST API at {dead}, from --api-url" in from_option.err


def test_an_unreachable_aws_endpoint_names_the_host_and_the_variable(ops: Ops) -> None:
    # Given AWS_ENDPOINT_URL pointing where nothing listens (one attempt, not the CLI's five)
    port = closed_port()
    environ = {**ops.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    once = AwsClients(config=BotoConfig(retries={"max_attempts": 1}, connect_timeout=2), region="us-east-1")
    os.environ["AWS_ENDPOINT_URL"], saved = f"http://127.0.0.1:{port}", os.environ["AWS_ENDPOINT_URL"]
    try:
        # When a command calls SQS there, and another reads its stack there
        ran = ops.run("dlq", "list", environ=environ, aws=once)
        described = ops.run("doctor", "--stack", "prod", environ=environ, aws=once)
    finally:
        os.environ["AWS_ENDPOINT_URL"] = saved

    # Then each error names the endpoint and where it came from, in one line
    expected = f"error: AWS: cannot reach AWS at 127.0.0.1:{port} ($AWS_ENDPOINT_URL): EndpointConnectionError\n"
    assert ran.code == 1
    assert ran.err == expected
    assert described.code == 1
    assert described.err == expected


def test_copy_direct_reports_every_file_in_the_order_given(ops: Ops) -> None:
    # Given two files, and between them a UUID Uploadcare does not know
    first = ops.emulator.add_file(original_filename="first.jpg", size=1)
    last = ops.emulator.add_file(original_filename="last.jpg", size=300)
    unknown = str(uuidlib.uuid4())

    # When they are copied directly, the first given in upper case
    ran = ops.run("copy", "--direct", first.uuid.upper(), unknown, last.uuid)

    # Then the lines follow the input (the unknown one in its place), UUIDs lower-cased, sizes spelled right
    lines = ran.out.splitlines()
    assert ran.code == 1
    assert [line.split()[1] for line in lines] == [first.uuid, unknown, last.uuid]
    assert lines[0].startswith("✓")
    assert "  1 byte  copied, verified" in lines[0]
    assert lines[1].startswith(f"✗ {unknown}  not_found")
    assert lines[2].startswith("✓")
    assert "300 bytes" in lines[2]


def test_a_queued_copy_reports_in_the_order_given_too(ops: Ops) -> None:
    # Given a UUID Uploadcare does not know before a file it knows
    known = ops.emulator.add_file(original_filename="known.jpg", size=1)
    unknown = str(uuidlib.uuid4())

    # When both are queued
    ran = ops.run("copy", unknown, known.uuid)

    # Then the unknown one is reported first and the known one queued
    assert [line.split()[1] for line in ran.out.splitlines()] == [unknown, known.uuid]
    assert "queued (known.jpg, 1 byte)" in ran.out
    assert [request["uuid"] for request in ops.queued()] == [known.uuid]


def test_an_audit_of_one_file_says_file_not_files(ops: Ops) -> None:
    # Given one file uploaded and copied
    file = ops.emulator.add_file(original_filename="solo.pdf", size=5, datetime_uploaded=JANUARY)
    assert ops.run("copy", "--direct", file.uuid).code == 0

    # When it is audited (piped: plain lines, no box drawing)
    ran = ops.run("audit", "--from", "2024-01-01", "--to", "2024-01-02")

    # Then
    assert ran.code == 0, ran.text
    assert ran.out.splitlines()[-1] == "1 of 1 file verified"
    assert "┃" not in ran.out
