"""The copier: one SQS batch of copy requests -> remote copies proved with head_object, or the DLQ with a reason.

design.md, "Copier: one record's outcomes". Per record:
  1. parse the copy request (a malformed one goes straight to the DLQ: `invalid_copy_request`);
  2. Powertools idempotency keyed on file UUID + target + pattern + effects (never the SQS message id, which
     changes on every redelivery): a finished copy is not repeated, a copy in progress elsewhere is retried later;
  3. `POST /files/remote_copy/` (over 5 GB is refused before calling), waiting out a 429 in-process when the
     remaining time allows, re-reading the secret once after a 401;
  4. `head_object`: the object is in TARGET_BUCKET and has the file's size;
  5. success | transient (batch item failure: SQS redelivers) | permanent (sent to the DLQ with `reason` and
     `detail`, then reported done; if that send fails, reported failed so nothing is lost).
Records of a batch run concurrently on a bounded thread pool: each spends its time waiting on the network.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
import urllib3
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from uploadcare_s3_copy.config import CopierSettings, load_copier_settings
from uploadcare_s3_copy.copy_request import CopyRequest, InvalidCopyRequest
from uploadcare_s3_copy.observability import logger, metrics
from uploadcare_s3_copy.patterns import predict_key
from uploadcare_s3_copy.reasons import CopyFailure, PermanentFailure, Reason, TransientFailure
from uploadcare_s3_copy.s3location import S3Location
from uploadcare_s3_copy.secrets import KeyStore, SecretConfigError, SecretUnavailableError, UploadcareKeys
from uploadcare_s3_copy.uploadcare import (
    CopyStatus,
    Credentials,
    RemoteCopyResult,
    UploadcareAuthError,
    UploadcareClient,
)

# "Copying of large files is not supported at the moment. File size MUST NOT exceed 5 GB." Whether GB means 10^9
# or 2^30 is not documented: files above the larger reading are refused here without a call, files between the
# two are left to Uploadcare (whose 400 maps to `too_large` as well).
MAX_COPY_BYTES = 5 * 1024**3
SAFETY_MARGIN_SECONDS = 3.0  # kept free at the end of an invocation to report the batch
MIN_CALL_SECONDS = 2.0  # below this, a call is not started: the record is given back instead
MAX_THROTTLE_WAITS = 2
IDEMPOTENCY_KEY_PREFIX = "uploadcare-s3-copy"
COPIER_SECRET_FIELDS = ("public_key", "secret_key")
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
DENIED_CODES = frozenset({"403", "AccessDenied", "Forbidden"})
DLQ_DETAIL_LIMIT = 1000
# A record given back is made visible again after a back-off instead of the queue's visibility timeout (6 x the
# function timeout: half an hour or more), so a passing 5xx costs seconds, not half an hour.
RETRY_BASE_SECONDS = 15
RETRY_MAX_SECONDS = 900
IN_PROGRESS_RETRY_SECONDS = 30  # the other invocation is probably about to finish


@dataclass(frozen=True)
class Verified:
    """A copy proved by head_object."""

    status: CopyStatus
    bucket: str
    key: str
    size: int

    def as_record(self) -> dict[str, Any]:
        return {"status": str(self.status), "bucket": self.bucket, "key": self.key, "size": self.size}


@dataclass(frozen=True)
class RecordOutcome:
    """What happened to one SQS record; metrics are added from these, on the main thread, after the batch."""

    outcome: str  # copied | already_exists | duplicate | dead_lettered | retry
    uuid: str | None
    seconds: float
    reason: Reason | None = None
    size: int = 0
    retry_after: float | None = None  # what Uploadcare asked for (429 Retry-After), when giving back

    @property
    def give_back(self) -> bool:
        return self.outcome == "retry"


def retry_delay(reason: Reason | None, retry_after: float | None, receive_count: int) -> int:
    """Seconds until a given-back record is delivered again: Uploadcare's Retry-After when it named one, else an
    exponential back-off on the receive count (15 s, 30 s, 60 s, ... at most 15 min)."""
    if retry_after is not None:
        return max(1, min(RETRY_MAX_SECONDS, math.ceil(retry_after)))
    if reason is Reason.IN_PROGRESS:
        return IN_PROGRESS_RETRY_SECONDS
    doublings: int = min(max(0, receive_count - 1), 10)
    return int(min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2**doublings))


class Redelivery:
    """Shortens the wait of given-back records (ChangeMessageVisibility on the copy queue). Best effort: when it
    fails, or no queue URL is configured, SQS redelivers after the queue's visibility timeout as usual."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def delay(self, receipt_handle: str, seconds: int) -> None:
        if not self._queue_url:
            return
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self._queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )
        except (ClientError, BotoCoreError) as error:
            logger.warning("Could not shorten a retry's wait", extra={"error": type(error).__name__})


class RetryLater(Exception):
    """Raised to Powertools' batch processor so the record becomes a batch item failure (SQS redelivers it)."""


def idempotency_key(request: CopyRequest, settings: CopierSettings) -> dict[str, str]:
    """What makes two copy requests the same copy. Not the SQS message id: it changes on every redelivery."""
    return {"uuid": request.uuid, "target": settings.copy_target, "pattern": settings.copy_pattern, "effects": ""}


def locate_copy(result: RemoteCopyResult, request: CopyRequest, settings: CopierSettings) -> S3Location:
    """Where the copy must be: Uploadcare's `result`, or (200 without one) the key predicted from the pattern."""
    location = result.location or S3Location(
        settings.target_bucket,
        predict_key(settings.target_prefix, settings.copy_pattern, request.uuid, request.original_filename),
    )
    if location.bucket != settings.target_bucket:
        raise PermanentFailure(
            Reason.UNEXPECTED_BUCKET,
            f"Uploadcare copied to {location}, not into TARGET_BUCKET {settings.target_bucket}: "
            f"does storage {settings.copy_target!r} point at another bucket?",
        )
    return location


def missing_object(location: S3Location, expected_size: int) -> PermanentFailure:
    return PermanentFailure(Reason.VERIFICATION_FAILED, f"no object at {location} (expected {expected_size} bytes)")


def check_object(location: S3Location, found_size: int, expected_size: int) -> None:
    """The proof, once an object was found: it has the original file's size."""
    if found_size != expected_size:
        raise PermanentFailure(
            Reason.VERIFICATION_FAILED, f"{location} has {found_size} bytes, expected {expected_size}"
        )


class Deadline:
    """The time this invocation has left, minus a safety margin; every network call is bounded by it."""

    def __init__(self, seconds_left: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ends_at = clock() + seconds_left - SAFETY_MARGIN_SECONDS

    @classmethod
    def of(cls, context: LambdaContext) -> Deadline:
        return cls(context.get_remaining_time_in_millis() / 1000)

    def left(self) -> float:
        return self._ends_at - self._clock()

    def call_timeout(self) -> urllib3.Timeout:
        left = self.left()
        if left < MIN_CALL_SECONDS:
            raise TransientFailure(Reason.TIMEOUT, f"only {max(left, 0):.1f} s left in this invocation")
        return urllib3.Timeout(connect=min(5.0, left), read=left)

    def can_wait(self, seconds: float) -> bool:
        return self.left() - seconds >= MIN_CALL_SECONDS


class CopyService:
    """Copies one file and proves it. Adapters (Uploadcare client factory, S3 client, key store) are injected."""

    def __init__(
        self,
        settings: CopierSettings,
        *,
        s3: Any,
        key_store: KeyStore,
        client_factory: Callable[[UploadcareKeys], UploadcareClient],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._s3 = s3
        self._key_store = key_store
        self._client_factory = client_factory
        self._sleep = sleep

    def copy_and_verify(self, request: CopyRequest, keys: UploadcareKeys, deadline: Deadline) -> Verified:
        if request.size > MAX_COPY_BYTES:
            raise PermanentFailure(
                Reason.TOO_LARGE, f"{request.size} bytes is over Uploadcare's 5 GB remote-copy limit; not attempted"
            )
        result = self.remote_copy(request, keys, deadline)
        location = locate_copy(result, request, self._settings)
        return self.verify(location, request.size, result.status)

    def remote_copy(self, request: CopyRequest, keys: UploadcareKeys, deadline: Deadline) -> RemoteCopyResult:
        client = self._client_factory(keys)
        throttle_waits = 0
        secret_reread = False
        while True:
            try:
                return client.remote_copy(
                    request.uuid,
                    self._settings.copy_target,
                    make_public=self._settings.make_public,
                    pattern=self._settings.copy_pattern,
                    timeout=deadline.call_timeout(),
                )
            except UploadcareAuthError:
                if secret_reread:
                    raise
                secret_reread = True
                fresh = self._fresh_keys()
                if fresh == keys:
                    raise
                logger.info("Uploadcare refused the keys; retrying once with the re-read secret")
                keys, client = fresh, self._client_factory(fresh)
            except TransientFailure as failure:
                wait = failure.retry_after
                if failure.reason is not Reason.THROTTLED or wait is None or throttle_waits >= MAX_THROTTLE_WAITS:
                    raise
                if not deadline.can_wait(wait):
                    raise
                throttle_waits += 1
                logger.info("Uploadcare throttled the copy; waiting", extra={"retry_after": wait})
                self._sleep(wait)

    def _fresh_keys(self) -> UploadcareKeys:
        try:
            return self._key_store.refresh() or self._key_store.get()
        except SecretUnavailableError as error:
            raise TransientFailure(Reason.AWS_UNAVAILABLE, str(error)) from error

    def verify(self, location: S3Location, expected_size: int, status: CopyStatus) -> Verified:
        for key in location.candidate_keys():
            try:
                head = self._s3.head_object(Bucket=location.bucket, Key=key)
            except ClientError as error:
                code = str(error.response.get("Error", {}).get("Code", ""))
                if code in NOT_FOUND_CODES:
                    continue
                if code in DENIED_CODES:
                    raise PermanentFailure(
                        Reason.VERIFICATION_FAILED,
                        f"head_object on {location} was denied: the copier needs s3:GetObject and s3:ListBucket",
                    ) from error
                raise TransientFailure(Reason.AWS_UNAVAILABLE, f"head_object on {location}: {code}") from error
            except BotoCoreError as error:
                raise TransientFailure(
                    Reason.AWS_UNAVAILABLE, f"head_object on {location}: {type(error).__name__}"
                ) from error
            found = S3Location(location.bucket, key)
            check_object(found, int(head["ContentLength"]), expected_size)
            return Verified(status=status, bucket=found.bucket, key=found.key, size=expected_size)
        raise missing_object(location, expected_size)


class DeadLetters:
    """Sends a permanently failed request to the DLQ: the original body unchanged, the reason as attributes."""

    def __init__(self, sqs: Any, dlq_url: str) -> None:
        self._sqs = sqs
        self._dlq_url = dlq_url

    def send(self, body: str, failure: CopyFailure, uuid: str | None) -> None:
        attributes = {
            "reason": {"DataType": "String", "StringValue": str(failure.reason)},
            "detail": {"DataType": "String", "StringValue": failure.detail[:DLQ_DETAIL_LIMIT] or "-"},
        }
        if uuid:
            attributes["uuid"] = {"DataType": "String", "StringValue": uuid}
        if failure.request_id:
            attributes["uploadcare_request_id"] = {"DataType": "String", "StringValue": failure.request_id}
        self._sqs.send_message(QueueUrl=self._dlq_url, MessageBody=body, MessageAttributes=attributes)


class ConcurrentBatchProcessor(BatchProcessor):
    """Powertools' SQS batch processor with the records run on a thread pool; its failure bookkeeping is kept."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        # Every record failing is reported as batch item failures like any other, not raised as a function error.
        super().__init__(EventType.SQS, raise_on_entire_batch_failure=False)
        self._pool = pool

    def process(self) -> list[tuple[Any, ...]]:
        return list(self._pool.map(self._process_record, self.records))


class Copier:
    """Everything one container needs, built once at cold start and reused by every warm invocation."""

    def __init__(
        self,
        settings: CopierSettings,
        *,
        service: CopyService,
        dead_letters: DeadLetters,
        key_store: KeyStore,
        persistence: DynamoDBPersistenceLayer,
        redelivery: Redelivery | None = None,
    ) -> None:
        self.settings = settings
        self._service = service
        self._dead_letters = dead_letters
        self._redelivery = redelivery
        self._key_store = key_store
        self._idempotency = IdempotencyConfig(
            expires_after_seconds=settings.idempotency_ttl_seconds, raise_on_no_idempotency_key=True
        )
        # The persistence layer is configured once here, before any thread uses it (its first configure is racy).
        persistence.configure(self._idempotency, key_prefix=IDEMPOTENCY_KEY_PREFIX)
        self._copy_once = idempotent_function(
            self._copy_unguarded,
            data_keyword_argument="copy_key",
            persistence_store=persistence,
            config=self._idempotency,
            key_prefix=IDEMPOTENCY_KEY_PREFIX,
        )
        self._pool = ThreadPoolExecutor(max_workers=settings.copy_concurrency, thread_name_prefix="copy")
        self._ran = threading.local()

    def handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        self._idempotency.register_lambda_context(context)
        deadline = Deadline.of(context)
        try:
            # Read once per invocation on the main thread: cold threads would each call Secrets Manager.
            keys = self._key_store.get()
        except SecretConfigError:
            logger.exception("The Uploadcare secret is unusable; every record is given back")
            raise
        outcomes: list[RecordOutcome] = []
        given_back: list[tuple[str, int]] = []

        def record_handler(record: SQSRecord) -> str:
            outcome = self.process_record(record, keys, deadline)
            outcomes.append(outcome)
            if outcome.give_back:
                count = int(record.attributes.approximate_receive_count or 1)
                given_back.append((record.receipt_handle, retry_delay(outcome.reason, outcome.retry_after, count)))
                raise RetryLater(f"{outcome.reason}: given back to the queue")
            return outcome.outcome

        response = process_partial_response(event, record_handler, ConcurrentBatchProcessor(self._pool), context)
        if self._redelivery is not None:
            for receipt_handle, seconds in given_back:
                self._redelivery.delay(receipt_handle, seconds)
        self._add_metrics(outcomes)
        return dict(response)

    def process_record(self, record: SQSRecord, keys: UploadcareKeys, deadline: Deadline) -> RecordOutcome:
        started = time.monotonic()
        try:
            request = CopyRequest.from_message(record.body)
        except InvalidCopyRequest as error:
            return self._dead_letter(record, None, PermanentFailure(Reason.INVALID_COPY_REQUEST, str(error)), started)
        logger.thread_safe_append_keys(file_uuid=request.uuid, message_id=record.message_id)
        try:
            self._ran.value = False
            stored = self._copy_once(
                copy_key=idempotency_key(request, self.settings), request=request, keys=keys, deadline=deadline
            )
            if not self._ran.value:
                logger.info("Duplicate copy request: already copied and verified", extra={"copy": stored})
                return RecordOutcome("duplicate", request.uuid, time.monotonic() - started)
            logger.info("Copy verified", extra={"copy": stored})
            return RecordOutcome(str(stored["status"]), request.uuid, time.monotonic() - started, size=request.size)
        except PermanentFailure as failure:
            return self._dead_letter(record, request, failure, started)
        except TransientFailure as failure:
            logger.warning(
                "Copy failed for now; given back to the queue",
                extra={"reason": str(failure.reason), "detail": failure.detail, "status": failure.status},
            )
            return RecordOutcome(
                "retry",
                request.uuid,
                time.monotonic() - started,
                reason=failure.reason,
                retry_after=failure.retry_after,
            )
        except IdempotencyAlreadyInProgressError:
            logger.info("The same copy is in progress elsewhere; given back to the queue")
            return RecordOutcome("retry", request.uuid, time.monotonic() - started, reason=Reason.IN_PROGRESS)
        except IdempotencyPersistenceLayerError as error:
            logger.warning("Idempotency table unavailable; given back", extra={"error": type(error).__name__})
            return RecordOutcome("retry", request.uuid, time.monotonic() - started, reason=Reason.AWS_UNAVAILABLE)
        finally:
            logger.thread_safe_clear_keys()

    def _copy_unguarded(
        self, copy_key: dict[str, str], request: CopyRequest, keys: UploadcareKeys, deadline: Deadline
    ) -> dict[str, Any]:
        """Runs only when no finished copy is recorded for `copy_key`; what it returns is stored and replayed."""
        self._ran.value = True
        return self._service.copy_and_verify(request, keys, deadline).as_record()

    def _dead_letter(
        self, record: SQSRecord, request: CopyRequest | None, failure: CopyFailure, started: float
    ) -> RecordOutcome:
        uuid = request.uuid if request else None
        extra = {"reason": str(failure.reason), "detail": failure.detail, "status": failure.status}
        try:
            self._dead_letters.send(record.body, failure, uuid)
        except (ClientError, BotoCoreError):
            logger.error("DLQ send failed; the record is given back so it is not lost", extra=extra)
            return RecordOutcome("retry", uuid, time.monotonic() - started, reason=Reason.AWS_UNAVAILABLE)
        logger.error("Copy failed permanently; sent to the dead-letter queue", extra=extra)
        return RecordOutcome("dead_lettered", uuid, time.monotonic() - started, reason=failure.reason)

    @staticmethod
    def _add_metrics(outcomes: list[RecordOutcome]) -> None:
        names = {"copied": "CopySucceeded", "already_exists": "CopyAlreadyExisted", "duplicate": "CopyDuplicate"}
        for outcome in outcomes:
            if outcome.outcome in names:
                metrics.add_metric(name=names[outcome.outcome], unit=MetricUnit.Count, value=1)
                metrics.add_metric(name="CopyLatency", unit=MetricUnit.Milliseconds, value=outcome.seconds * 1000)
                if outcome.outcome == "copied":
                    metrics.add_metric(name="BytesCopied", unit=MetricUnit.Bytes, value=outcome.size)
            else:
                failed = outcome.outcome == "dead_lettered"
                metrics.add_metric(name="CopyFailed" if failed else "CopyRetried", unit=MetricUnit.Count, value=1)
                if outcome.reason is Reason.VERIFICATION_FAILED:
                    metrics.add_metric(name="VerificationFailed", unit=MetricUnit.Count, value=1)
                if outcome.reason is not None:  # the fixed vocabulary of reasons.py: a small set of values
                    with single_metric(
                        name="CopyFailed" if failed else "CopyRetried",
                        unit=MetricUnit.Count,
                        value=1,
                        namespace=metrics.namespace,
                    ) as by_reason:
                        by_reason.add_dimension(name="reason", value=str(outcome.reason))


def build_copier(environ: Mapping[str, str]) -> Copier:
    """The container's copier from its environment (design.md contract); a bad configuration raises ConfigError."""
    settings = load_copier_settings(environ)
    # Clients are created once per container; boto3 honours AWS_ENDPOINT_URL for local servers by itself.
    aws_config = BotoConfig(
        connect_timeout=5,
        read_timeout=15,
        retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=max(10, settings.copy_concurrency),
    )
    s3 = boto3.client("s3", config=aws_config)
    sqs = boto3.client("sqs", config=aws_config)
    dynamodb = boto3.client("dynamodb", config=aws_config)
    key_store = KeyStore(settings.secret_id, required=COPIER_SECRET_FIELDS)
    api_url = settings.api_url

    def client_factory(keys: UploadcareKeys) -> UploadcareClient:
        return UploadcareClient(Credentials(keys.public_key, keys.secret_key), api_url)

    return Copier(
        settings,
        service=CopyService(settings, s3=s3, key_store=key_store, client_factory=client_factory),
        dead_letters=DeadLetters(sqs, settings.dlq_url),
        key_store=key_store,
        persistence=DynamoDBPersistenceLayer(
            table_name=settings.idempotency_table, key_attr="id", expiry_attr="expiration", boto3_client=dynamodb
        ),
        redelivery=Redelivery(sqs, settings.copy_queue_url),
    )
