"""Several copies of each file (COPY_SPECS), through the real copier handler, the moto server and the emulator.

Each (file, spec) is its own unit of work: one remote_copy, its own proof and ledger item, its own DLQ message.
"""

from __future__ import annotations

import json
import os
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import ClientError

import handle_copy
from devkit.emulator import EmulatedFile, Fault, Storage, UploadcareEmulator
from devkit.local_resources import LocalStack, StackSpec, create_stack, read_queue
from devkit.sqs_poller import drain
from uploadcare_s3_copy.copy_request import CopyRequest
from uploadcare_s3_copy.ledger import Ledger, LedgerItem
from uploadcare_s3_copy.observability import metrics
from uploadcare_s3_copy.patterns import predict_key

PUBLIC_KEY = "specs-public-key"
SECRET_KEY = "specs-secret-key"
WEB_EFFECTS = "-/resize/100x/-/format/webp/"
OWN_STORAGE_PATTERN = "own/${uuid}${ext}"  # the storage's own pattern, used when a spec sends none


@dataclass
class Specs:
    stack: LocalStack
    emulator: UploadcareEmulator
    cdn_bucket: str

    @property
    def bucket(self) -> str:
        return self.stack.bucket

    def use(self, *specs: dict[str, Any]) -> None:
        """Configures the copier's COPY_SPECS (a fresh cold start; the fixture's monkeypatch restores it)."""
        os.environ["COPY_SPECS"] = json.dumps(list(specs))
        handle_copy.app.cache_clear()

    def original(self, **changes: Any) -> dict[str, Any]:
        return {"name": "original", "target": "backup", "bucket": self.bucket, "prefix": "b/", **changes}

    def web(self, **changes: Any) -> dict[str, Any]:
        return {"name": "web", "target": "cdn", "bucket": self.cdn_bucket, "effects": WEB_EFFECTS, **changes}

    def image(self, name: str = "photo.jpg", size: int = 3000) -> EmulatedFile:
        return self.emulator.add_file(original_filename=name, size=size, mime_type="image/jpeg")

    def send(self, *files: EmulatedFile, specs: tuple[str, ...] | None = None) -> list[str]:
        bodies = []
        for file in files:
            info = self.emulator.file_info(file.uuid)
            body = CopyRequest.from_file_info(info, event="file.uploaded", origin="webhook").for_specs(specs)
            bodies.append(body.to_message())
            boto3.client("sqs").send_message(QueueUrl=self.stack.queue_url, MessageBody=bodies[-1])
        return bodies

    def drain(self) -> None:
        drain(boto3.client("sqs"), self.stack.queue_url, handle_copy.lambda_handler)

    def item(self, file: EmulatedFile, spec: str) -> LedgerItem | None:
        return Ledger(boto3.client("dynamodb"), self.stack.ledger_table).get(file.uuid, spec)

    def size_at(self, bucket: str, key: str) -> int | None:
        try:
            return int(boto3.client("s3").head_object(Bucket=bucket, Key=key)["ContentLength"])
        except ClientError:
            return None

    def original_key(self, file: EmulatedFile) -> str:
        return predict_key("b/", "${default}", file.uuid, file.original_filename)

    def web_key(self, file: EmulatedFile) -> str:
        return predict_key("w/", "${default}", file.uuid, file.original_filename, WEB_EFFECTS)


@pytest.fixture
def specs(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Specs]:
    stack = create_stack(StackSpec(public_key=PUBLIC_KEY, secret_key=SECRET_KEY, storage="backup", prefix="b/"))
    cdn_bucket = f"cdn-{uuidlib.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=cdn_bucket)
    storages = [
        Storage("backup", stack.bucket, "b/"),
        Storage("cdn", cdn_bucket, "w/"),
        Storage("own", stack.bucket, "", OWN_STORAGE_PATTERN),
    ]
    with UploadcareEmulator(
        public_key=PUBLIC_KEY, secret_key=SECRET_KEY, storages=storages, aws_endpoint=aws
    ) as emulator:
        for name, value in stack.copier_env(emulator.url).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("COPY_SPECS", "")
        monkeypatch.setattr(metrics, "namespace", "UploadcareS3Copy")
        parameters.clear_caches()  # type: ignore[no-untyped-call]
        handle_copy.app.cache_clear()
        try:
            yield Specs(stack, emulator, cdn_bucket)
        finally:
            handle_copy.app.cache_clear()
            parameters.clear_caches()  # type: ignore[no-untyped-call]
            metrics.clear_metrics()


def test_two_specs_each_verified_with_one_remote_copy_per_file_and_spec(specs: Specs) -> None:
    specs.use(specs.original(), specs.web())
    files = [specs.image(f"photo {n}.jpg", 3000 + n) for n in range(5)]

    specs.send(*files)
    specs.drain()

    for file in files:
        assert specs.emulator.copy_calls(file.uuid, "backup") == 1
        assert specs.emulator.copy_calls(file.uuid, "cdn") == 1
        assert specs.size_at(specs.bucket, specs.original_key(file)) == file.size
        processed = specs.size_at(specs.cdn_bucket, specs.web_key(file))
        assert processed is not None
        assert 0 < processed != file.size
        original, web = specs.item(file, "original"), specs.item(file, "web")
        assert original is not None
        assert original.verified
        assert original.size == file.size
        assert web is not None
        assert web.verified
        assert (web.bucket, web.key, web.size) == (
            specs.cdn_bucket,
            specs.web_key(file),
            processed,
        )
    assert read_queue(specs.stack.dlq_url) == []


def test_a_redelivered_webhook_costs_no_call_for_any_spec(specs: Specs) -> None:
    specs.use(specs.original(), specs.web())
    file = specs.image()
    (body,) = specs.send(file)
    specs.drain()

    boto3.client("sqs").send_message(QueueUrl=specs.stack.queue_url, MessageBody=body)  # Uploadcare's retry
    specs.drain()

    assert specs.emulator.copy_calls(file.uuid) == 2  # one per spec, none for the redelivery


def test_a_file_the_image_spec_does_not_copy_is_skipped_for_it_only(specs: Specs) -> None:
    specs.use(specs.original(), specs.web())
    pdf = specs.emulator.add_file(original_filename="report.pdf", size=900, mime_type="application/pdf")

    specs.send(pdf)
    specs.drain()

    assert specs.emulator.copy_calls(pdf.uuid, "backup") == 1
    assert specs.emulator.copy_calls(pdf.uuid, "cdn") == 0
    assert specs.item(pdf, "original") is not None
    assert specs.item(pdf, "web") is None
    assert read_queue(specs.stack.dlq_url) == []


def test_an_image_spec_open_to_every_type_parks_a_non_image_with_its_reason(specs: Specs) -> None:
    specs.use(specs.original(), specs.web(mime_types=["*/*"]))
    pdf = specs.emulator.add_file(original_filename="report.pdf", size=900, mime_type="application/pdf")

    specs.send(pdf)
    specs.drain()

    (parked,) = read_queue(specs.stack.dlq_url)
    assert parked["MessageAttributes"]["spec"]["StringValue"] == "web"
    assert parked["MessageAttributes"]["reason"]["StringValue"] == "bad_source"
    original = specs.item(pdf, "original")
    assert original is not None
    assert original.verified


def test_a_spec_with_a_missing_storage_parks_only_its_own_records(specs: Specs) -> None:
    ghost = {"name": "ghost", "target": "no-such-storage", "bucket": specs.bucket, "prefix": "g/"}
    specs.use(specs.original(), specs.web(), ghost)
    files = [specs.image(f"p{n}.jpg") for n in range(3)]

    specs.send(*files)
    specs.drain()

    parked = read_queue(specs.stack.dlq_url)
    assert len(parked) == 3
    for message in parked:
        attributes = message["MessageAttributes"]
        assert attributes["spec"]["StringValue"] == "ghost"
        assert attributes["reason"]["StringValue"] == "storage_not_found"
        assert json.loads(message["Body"])["specs"] == ["ghost"]  # a redrive copies only this spec
    for file in files:
        assert specs.item(file, "original").verified  # type: ignore[union-attr]
        assert specs.item(file, "web").verified  # type: ignore[union-attr]
        ghost_item = specs.item(file, "ghost")
        assert ghost_item is not None
        assert ghost_item.reason == "storage_not_found"

    # The storage is created; the parked messages are redriven: only the ghost spec is copied.
    specs.emulator.add_storage(Storage("no-such-storage", specs.bucket, "g/"))
    for message in parked:
        boto3.client("sqs").send_message(QueueUrl=specs.stack.queue_url, MessageBody=message["Body"])
    specs.drain()
    for file in files:
        assert specs.emulator.copy_calls(file.uuid, "backup") == 1
        assert specs.emulator.copy_calls(file.uuid, "cdn") == 1
        assert specs.emulator.copy_calls(file.uuid, "no-such-storage") == 2
        assert specs.item(file, "ghost").verified  # type: ignore[union-attr]


def test_a_throttled_spec_costs_the_verified_one_no_second_call(specs: Specs) -> None:
    specs.use(specs.original(), specs.web())
    file = specs.image()
    specs.emulator.script(file.uuid, Fault.throttled(retry_after=1), Fault.throttled(retry_after=1), target="cdn")
    specs.emulator.script(file.uuid, Fault.throttled(retry_after=1), target="cdn")

    specs.send(file)
    specs.drain()  # the record is given back until the cdn spec gets through

    assert specs.emulator.copy_calls(file.uuid, "backup") == 1
    assert specs.emulator.copy_calls(file.uuid, "cdn") == 4
    assert specs.item(file, "web").verified  # type: ignore[union-attr]


def test_a_request_naming_specs_copies_only_those(specs: Specs) -> None:
    specs.use(specs.original(), specs.web())
    file = specs.image()

    specs.send(file, specs=("web",))
    specs.drain()

    assert specs.emulator.copy_calls(file.uuid, "backup") == 0
    assert specs.emulator.copy_calls(file.uuid, "cdn") == 1


def test_a_request_naming_an_unknown_spec_parks_that_name_and_copies_the_known_one(specs: Specs) -> None:
    specs.use(specs.original(), specs.web())
    file = specs.image()

    specs.send(file, specs=("web", "gone"))
    specs.drain()

    (parked,) = read_queue(specs.stack.dlq_url)
    assert parked["MessageAttributes"]["reason"]["StringValue"] == "unknown_spec"
    assert parked["MessageAttributes"]["spec"]["StringValue"] == "gone"
    assert json.loads(parked["Body"])["specs"] == ["gone"]
    assert specs.emulator.copy_calls(file.uuid, "cdn") == 1
    assert specs.item(file, "gone") is None


def test_pattern_null_sends_no_pattern_and_verifies_from_result(specs: Specs) -> None:
    specs.use({"name": "own", "target": "own", "bucket": specs.bucket, "pattern": None})
    file = specs.image("pic.jpg")

    specs.send(file)
    specs.drain()

    own_key = f"own/{file.uuid}.jpg"  # only the storage's own pattern puts it here: no pattern was sent
    assert specs.size_at(specs.bucket, own_key) == file.size
    item = specs.item(file, "own")
    assert item is not None
    assert item.verified
    assert item.key == own_key


def test_pattern_null_with_a_200_without_result_is_verification_failed(specs: Specs) -> None:
    specs.use({"name": "own", "target": "own", "bucket": specs.bucket, "pattern": None})
    file = specs.image("pic.jpg")
    boto3.client("s3").put_object(Bucket=specs.bucket, Key=f"own/{file.uuid}.jpg", Body=b"x" * file.size)
    specs.emulator.already_exists_with_result = False

    specs.send(file)
    specs.drain()

    (parked,) = read_queue(specs.stack.dlq_url)
    assert parked["MessageAttributes"]["reason"]["StringValue"] == "verification_failed"
    assert "sends no pattern" in parked["MessageAttributes"]["detail"]["StringValue"]
    assert specs.emulator.copy_calls(file.uuid) == 1


def test_without_copy_specs_the_single_copy_keeps_its_idempotency_key(specs: Specs) -> None:
    """An upgrade from one copy to specs: the `original` spec made from the old variables is the same copy, so
    the idempotency records of the last 72 hours still settle redeliveries."""
    file = specs.image()
    (body,) = specs.send(file)
    specs.drain()
    boto3.client("dynamodb").delete_item(
        TableName=specs.stack.ledger_table, Key={"uuid": {"S": file.uuid}, "spec": {"S": "original"}}
    )
    specs.use(specs.original())

    boto3.client("sqs").send_message(QueueUrl=specs.stack.queue_url, MessageBody=body)
    specs.drain()

    assert specs.emulator.copy_calls(file.uuid) == 1
