"""The whole flow on local servers, as one object: the demo, the end-to-end tests and the benchmarks use it.

A stack built from template.yaml on a moto endpoint, the Uploadcare emulator in front of its bucket, the webhook
handler fed signed HTTP API events exactly as API Gateway would pass them, and the copier run over the queue as
Lambda's SQS event source would run it. `outcome()` then says, for a file, where it ended: verified in S3 (with
its key and size), in the DLQ (with its reason), still queued, or lost.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import boto3
from botocore.exceptions import ClientError

from devkit.emulator import EmulatedFile, Storage, UploadcareEmulator
from devkit.lambda_context import LambdaContext
from devkit.local_resources import LocalStack, StackSpec, create_stack, read_queue
from devkit.make_events import signed_event
from devkit.sqs_poller import PollStats, drain
from uploadcare_s3_copy.ledger import DEFAULT_SPEC, Ledger, LedgerItem
from uploadcare_s3_copy.observability import logger, metrics
from uploadcare_s3_copy.patterns import predict_key

WEBHOOK_URL = "https://local.execute-api.localhost/webhooks/uploadcare"


@dataclass(frozen=True)
class Outcome:
    uuid: str
    state: str  # verified | dead_lettered | wrong_size | queued | lost
    key: str = ""
    size: int | None = None
    reason: str = ""
    detail: str = ""


@contextlib.contextmanager
def functions_output_to(stream: TextIO) -> Iterator[None]:
    """The functions' Powertools log lines and EMF metrics (which they print) go to `stream` for the block."""
    handler = logger.registered_handler
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        with contextlib.redirect_stdout(stream):
            yield
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]


class LocalFlow:
    """Both functions wired to local servers. Use `with LocalFlow.start(endpoint, ...) as flow:`."""

    def __init__(self, stack: LocalStack, emulator: UploadcareEmulator, log: TextIO | None, endpoint: str = "") -> None:
        self.stack = stack
        self.endpoint = endpoint  # the moto server's, as given to `start` (a fault proxy may stand in front of it)
        self.emulator = emulator
        self._log = log
        self.sqs: Any = boto3.client("sqs")
        self.s3: Any = boto3.client("s3")

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        endpoint: str,
        *,
        name: str = "flow",
        storage: str = "local-storage",
        prefix: str = "uploadcare/",
        log: TextIO | None = None,
        parameters: dict[str, str] | None = None,
        extra_storages: tuple[Storage, ...] = (),
    ) -> Iterator[LocalFlow]:
        """Emulator up, stack created, this process's environment pointed at them; all undone on exit.
        `extra_storages`: more custom storages (copy specs), each bucket created."""
        saved = dict(os.environ)
        with UploadcareEmulator(aws_endpoint=endpoint) as emulator:
            try:
                stack = create_stack(
                    StackSpec(
                        name=name,
                        public_key=emulator.public_key,
                        secret_key=emulator.secret_key,
                        storage=storage,
                        prefix=prefix,
                        api_url=emulator.url,
                        parameters=parameters or {},
                    )
                )
                emulator.add_storage(Storage(storage, stack.bucket, prefix))
                for extra in extra_storages:
                    boto3.client("s3").create_bucket(Bucket=extra.bucket)
                    emulator.add_storage(extra)
                os.environ.update({**stack.webhook_env(), **stack.copier_env(), **stack.reconciler_env()})
                # The shared Metrics object read its namespace when first imported, maybe before this environment.
                metrics.namespace = os.environ["POWERTOOLS_METRICS_NAMESPACE"]
                flow = cls(stack, emulator, log, endpoint)
                flow.reset_functions()
                yield flow
            finally:
                cls.reset_functions()
                os.environ.clear()
                os.environ.update(saved)

    @staticmethod
    def reset_functions() -> None:
        """Cold-start the functions on their next invocation (they read the environment once per container)."""
        from aws_lambda_powertools.utilities import parameters  # noqa: PLC0415

        import handle_copy  # noqa: PLC0415 - the handlers are imported once the environment is set
        import handle_reconcile  # noqa: PLC0415
        import handle_webhook  # noqa: PLC0415

        handle_webhook.app.cache_clear()
        handle_copy.app.cache_clear()
        handle_reconcile.app.cache_clear()
        parameters.clear_caches()  # type: ignore[no-untyped-call]

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """Send the handlers' JSON logs and EMF metrics to the log file (if any), keeping stdout for the caller."""
        if self._log is None:
            yield
            return
        with functions_output_to(self._log):
            yield

    def add_file(self, **kwargs: Any) -> EmulatedFile:
        return self.emulator.add_file(**kwargs)

    def webhook_body(self, file: EmulatedFile, event: str = "file.uploaded") -> dict[str, Any]:
        return self.emulator.file_uploaded_body(file.uuid, target_url=WEBHOOK_URL, event=event)

    def deliver(self, payload: dict[str, Any], secret: str | None = None) -> int:
        """One webhook delivery through the webhook handler; returns the HTTP status it answered."""
        import handle_webhook  # noqa: PLC0415

        event = signed_event(payload, secret or self.stack.spec.signing_secret)
        with self._quiet():
            response = handle_webhook.lambda_handler(event, LambdaContext(function_name="WebhookFunction"))
        return int(response["statusCode"])

    def run_copier(
        self, *, batch_size: int = 10, function_timeout: float = 60.0, give_back_visibility: int | None = 0
    ) -> PollStats:
        """The copier over the queue until it is empty, failures redelivered as SQS would: at once (the default,
        for quick runs), or with None when the visibility the copier set has passed (see `drain`)."""
        import handle_copy  # noqa: PLC0415

        with self._quiet():
            return drain(
                self.sqs,
                self.stack.queue_url,
                handle_copy.lambda_handler,
                batch_size=batch_size,
                function_timeout=function_timeout,
                give_back_visibility=give_back_visibility,
            )

    def reconcile(self, event: dict[str, Any] | None = None, *, function_timeout: float = 300.0) -> dict[str, Any]:
        """One reconciler invocation (`{}`: the scheduled run); returns its summary."""
        import handle_reconcile  # noqa: PLC0415

        context = LambdaContext(function_name="ReconcilerFunction", timeout_seconds=function_timeout)
        with self._quiet():
            return dict(handle_reconcile.lambda_handler({} if event is None else event, context))

    def key_of(self, file: EmulatedFile) -> str:
        return predict_key(self.stack.spec.prefix, "${default}", file.uuid, file.original_filename)

    def object_size(self, file: EmulatedFile) -> int | None:
        """The size of `file`'s copy in the bucket, at its predicted key; None when there is none."""
        try:
            return int(self.s3.head_object(Bucket=self.stack.bucket, Key=self.key_of(file))["ContentLength"])
        except ClientError:
            return None

    def ledger_item(self, uuid: str, spec: str = DEFAULT_SPEC) -> LedgerItem | None:
        return Ledger(boto3.client("dynamodb"), self.stack.ledger_table).get(uuid, spec)

    def size_in(self, bucket: str, key: str) -> int | None:
        try:
            return int(self.s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except ClientError:
            return None

    def dead_letters(self) -> list[dict[str, Any]]:
        return read_queue(self.stack.dlq_url)

    def queue_depth(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.stack.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def outcomes(
        self, files: list[EmulatedFile], dead_letters: list[dict[str, Any]] | None = None
    ) -> dict[str, Outcome]:
        """Where each file ended. `dead_letters`: the DLQ as already read (reading hides messages for a while)."""
        listed = self.dead_letters() if dead_letters is None else dead_letters
        dead = {message["MessageAttributes"].get("uuid", {}).get("StringValue"): message for message in listed}
        result: dict[str, Outcome] = {}
        for file in files:
            if file.uuid in dead:
                attributes = dead[file.uuid]["MessageAttributes"]
                result[file.uuid] = Outcome(
                    file.uuid,
                    "dead_lettered",
                    reason=attributes["reason"]["StringValue"],
                    detail=attributes["detail"]["StringValue"],
                )
                continue
            key = self.key_of(file)
            size = self.object_size(file)
            if size is None:
                result[file.uuid] = Outcome(file.uuid, "lost", key=key)
                continue
            state = "verified" if size == file.size else "wrong_size"
            result[file.uuid] = Outcome(file.uuid, state, key=key, size=size)
        return result
