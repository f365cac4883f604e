"""A copier under test: its AWS resources on the session's moto server, the Uploadcare emulator in front of the
same bucket, and the SQS poller that runs `handle_copy.lambda_handler` as Lambda's event source mapping would."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import ClientError

import handle_copy
from devkit.emulator import EmulatedFile, Storage, UploadcareEmulator
from devkit.local_resources import LocalStack, StackSpec, create_stack, read_queue
from devkit.sqs_poller import PollStats, drain, poll_once
from uploadcare_s3_copy.copier.rules import AFTER_COPY_SECONDS, MIN_CALL_SECONDS, SAFETY_MARGIN_SECONDS
from uploadcare_s3_copy.copy_request import CopyRequest
from uploadcare_s3_copy.ledger import DEFAULT_SPEC, Ledger, LedgerItem
from uploadcare_s3_copy.observability import metrics
from uploadcare_s3_copy.patterns import predict_key

PUBLIC_KEY = "copier-public-key"
SECRET_KEY = "copier-secret-key"
STORAGE = "copy-storage"
PREFIX = "uploads/"
# The shortest copier invocation that still starts a remote copy: its in-progress window is this long.
SHORT_TIMEOUT = SAFETY_MARGIN_SECONDS + AFTER_COPY_SECONDS + MIN_CALL_SECONDS + 1.0


@dataclass
class CopierHarness:
    stack: LocalStack
    emulator: UploadcareEmulator

    @property
    def bucket(self) -> str:
        return self.stack.bucket

    def add_file(self, **kwargs: Any) -> EmulatedFile:
        return self.emulator.add_file(**kwargs)

    def request_for(self, file: EmulatedFile) -> CopyRequest:
        info = self.emulator.file_info(file.uuid)
        return CopyRequest.from_file_info(info, event="file.uploaded", origin="manual")

    def send(self, *files: EmulatedFile) -> list[str]:
        """Queues one copy request per file; returns the message bodies as sent."""
        bodies = [self.request_for(file).to_message() for file in files]
        for body in bodies:
            self.send_body(body)
        return bodies

    def send_body(self, body: str) -> None:
        boto3.client("sqs").send_message(QueueUrl=self.stack.queue_url, MessageBody=body)

    def drain(self, batch_size: int = 10) -> PollStats:
        return drain(boto3.client("sqs"), self.stack.queue_url, handle_copy.lambda_handler, batch_size=batch_size)

    def poll_once(self, *, function_timeout: float = 300.0, as_lambda: bool = False) -> PollStats:
        """One poll. `as_lambda`: failed records keep the visibility the copier gave them, as on AWS."""
        stats = PollStats()
        poll_once(
            boto3.client("sqs"),
            self.stack.queue_url,
            handle_copy.lambda_handler,
            stats=stats,
            function_timeout=function_timeout,
            give_back_visibility=None if as_lambda else 0,
        )
        return stats

    def poll_until_received(self, *, within: float, function_timeout: float = SHORT_TIMEOUT) -> tuple[PollStats, float]:
        """Polls as Lambda would, every half second, until a batch arrives (at most `within` seconds); returns its
        stats and the time.monotonic() it arrived. Waits on the real schedule: nothing here moves a clock."""
        give_up = time.monotonic() + within
        while time.monotonic() < give_up:
            stats = self.poll_once(function_timeout=function_timeout, as_lambda=True)
            if stats.received:
                return stats, time.monotonic()
            time.sleep(0.5)
        raise AssertionError(f"nothing came back within {within:.0f} s")

    def ledger_item(self, file: EmulatedFile, spec: str = DEFAULT_SPEC) -> LedgerItem | None:
        return Ledger(boto3.client("dynamodb"), self.stack.ledger_table).get(file.uuid, spec)

    def forget_idempotency(self) -> int:
        """What 96 hours do to the idempotency records (TTL): every one is deleted. Returns how many there were."""
        dynamodb = boto3.client("dynamodb")
        items = dynamodb.scan(TableName=self.stack.table)["Items"]
        for item in items:
            dynamodb.delete_item(TableName=self.stack.table, Key={"id": item["id"]})
        return len(items)

    def visible_messages(self) -> int:
        answer = boto3.client("sqs").receive_message(
            QueueUrl=self.stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
        )
        return len(answer.get("Messages", []))

    def dead_letters(self) -> list[dict[str, Any]]:
        return read_queue(self.stack.dlq_url)

    def queue_depth(self) -> int:
        attributes = boto3.client("sqs").get_queue_attributes(
            QueueUrl=self.stack.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def object_size(self, key: str) -> int | None:
        try:
            return int(boto3.client("s3").head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except ClientError:
            return None

    def key_of(self, file: EmulatedFile) -> str:
        return predict_key(PREFIX, "${default}", file.uuid, file.original_filename)


def assert_verified_once(copier: CopierHarness, *files: EmulatedFile) -> None:
    """Each file is in the bucket at its key with its size, from exactly one successful remote copy."""
    for file in files:
        assert copier.object_size(copier.key_of(file)) == file.size
        assert copier.emulator.copies(file.uuid) == 1


def reason_of(message: dict[str, Any]) -> str:
    return str(message["MessageAttributes"]["reason"]["StringValue"])


def detail_of(message: dict[str, Any]) -> str:
    return str(message["MessageAttributes"]["detail"]["StringValue"])


@pytest.fixture
def copier(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CopierHarness]:
    spec = StackSpec(public_key=PUBLIC_KEY, secret_key=SECRET_KEY, storage=STORAGE, prefix=PREFIX)
    stack = create_stack(spec)
    storage = Storage(STORAGE, stack.bucket, PREFIX)
    with UploadcareEmulator(
        public_key=PUBLIC_KEY, secret_key=SECRET_KEY, storages=[storage], aws_endpoint=aws
    ) as emulator:
        for name, value in stack.copier_env(emulator.url).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(metrics, "namespace", "UploadcareS3Copy")
        parameters.clear_caches()  # type: ignore[no-untyped-call]
        handle_copy.app.cache_clear()
        try:
            yield CopierHarness(stack, emulator)
        finally:
            handle_copy.app.cache_clear()
            parameters.clear_caches()  # type: ignore[no-untyped-call]
            metrics.clear_metrics()
