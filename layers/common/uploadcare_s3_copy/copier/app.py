"""The copier function's wiring: one SQS batch of copy requests -> remote copies proved with head_object, or the
DLQ with a reason (docs/design.md, "Copier: one record's outcomes"). Per record:
  1. parse the copy request (a malformed one goes straight to the DLQ: `invalid_copy_request`);
  2. Powertools idempotency keyed on file UUID + target + pattern + effects (never the SQS message id, which
     changes on every redelivery): a finished copy is not repeated, a copy in progress elsewhere is retried later;
  3. `CopyService`: the remote copy and its proof;
  4. success | transient (batch item failure: SQS redelivers) | permanent (sent to the DLQ with `reason` and
     `detail`, then reported done; if that send fails, reported failed so nothing is lost).
Records of a batch run concurrently on a bounded thread pool: each spends its time waiting on the network.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.batch import process_partial_response
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
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from uploadcare_s3_copy.copier.adapters import DeadLetters, Redelivery
from uploadcare_s3_copy.copier.batch import ConcurrentBatchProcessor, RetryLater
from uploadcare_s3_copy.copier.outcomes import RecordOutcome, Verified
from uploadcare_s3_copy.copier.rules import (
    AWS_ATTEMPTS,
    AWS_CONNECT_SECONDS,
    AWS_READ_SECONDS,
    Deadline,
    hold_delay,
    idempotency_key,
    retry_delay,
)
from uploadcare_s3_copy.copier.service import CopyService
from uploadcare_s3_copy.copier.settings import CopierSettings, load_copier_settings
from uploadcare_s3_copy.copy_request import CopyRequest, InvalidCopyRequest, now_iso
from uploadcare_s3_copy.ledger import (
    DEFAULT_SPEC,
    Ledger,
    LedgerItem,
    LedgerStatus,
    LedgerUnavailableError,
    LedgerView,
)
from uploadcare_s3_copy.observability import logger, metrics
from uploadcare_s3_copy.reasons import CopyFailure, PermanentFailure, Reason, TransientFailure
from uploadcare_s3_copy.secrets import (
    KeyStore,
    SecretConfigError,
    SecretUnavailableError,
    UploadcareKeys,
    secrets_manager_fetcher,
)
from uploadcare_s3_copy.uploadcare.auth import Credentials
from uploadcare_s3_copy.uploadcare.client import UploadcareClient, new_pool

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

IDEMPOTENCY_KEY_PREFIX = "uploadcare-s3-copy"
COPIER_SECRET_FIELDS = ("public_key", "secret_key")


def receive_count(record: SQSRecord) -> int:
    try:
        return max(1, int(record.attributes.approximate_receive_count or 1))
    except ValueError:
        return 1


@dataclass
class _Run:
    """What the idempotent copy of one record did, for when Powertools' own bookkeeping around it fails."""

    ran: bool = False
    verified: dict[str, Any] | None = None
    failure: CopyFailure | None = None


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
        ledger: Ledger,
        redelivery: Redelivery | None = None,
    ) -> None:
        self.settings = settings
        self._ledger = ledger
        self._service = service
        self._dead_letters = dead_letters
        self._redelivery = redelivery
        self._key_store = key_store
        self._idempotency = IdempotencyConfig(
            expires_after_seconds=settings.idempotency_ttl_seconds, raise_on_no_idempotency_key=True
        )
        # The persistence layer is configured once here, before any thread uses it (its first configure is racy).
        persistence.configure(self._idempotency, key_prefix=IDEMPOTENCY_KEY_PREFIX)
        self._persistence = persistence
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
        keys: UploadcareKeys | None
        try:
            # Read once per invocation on the main thread: cold threads would each call Secrets Manager.
            keys = self._key_store.get()
        except SecretConfigError:
            logger.exception("The Uploadcare secret is unusable; every record is given back")
            raise
        except SecretUnavailableError as error:
            # Transient, like any AWS outage: each record is given back on its own back-off, none is lost or parked.
            logger.warning("Secrets Manager is unavailable; every record is given back", extra={"error": str(error)})
            keys = None
        outcomes: list[RecordOutcome] = []
        given_back: list[tuple[str, int, float | None]] = []
        known = self._look_up_batch(event) if keys is not None and deadline.allows_aws_call() else None

        def record_handler(record: SQSRecord) -> str:
            if keys is None:
                outcome = RecordOutcome("retry", None, 0.0, reason=Reason.AWS_UNAVAILABLE)
            else:
                outcome = self.process_record(record, keys, deadline, known)
            outcomes.append(outcome)
            if outcome.give_back:
                count = receive_count(record)
                delay = retry_delay(outcome.retry_after, count)
                given_back.append((record.receipt_handle, delay, outcome.hold_until))
                raise RetryLater(f"{outcome.reason}: given back to the queue")
            return outcome.outcome

        response = process_partial_response(event, record_handler, ConcurrentBatchProcessor(self._pool), context)
        if self._redelivery is not None and given_back:
            now = time.monotonic()
            delays = [
                (handle, delay if hold is None else max(delay, hold_delay(hold - now)))
                for handle, delay, hold in given_back
            ]
            if deadline.allows_aws_call():
                self._redelivery.delay_all(delays)
            else:
                logger.warning("No time left to set the retry waits; SQS redelivers after the visibility timeout")
        self._add_metrics(outcomes)
        return dict(response)

    def _look_up_batch(self, event: dict[str, Any]) -> LedgerView | None:
        """The ledger items of the whole batch in one BatchGetItem, on the main thread. None if that fails: each
        record then looks its own item up (and is given back if that fails too)."""
        wanted: list[tuple[str, str]] = []
        for raw in event.get("Records", []):
            try:
                wanted.append((CopyRequest.from_message(str(raw.get("body", ""))).uuid, DEFAULT_SPEC))
            except InvalidCopyRequest:
                continue  # parked by its record handler
        if not wanted:
            return None
        try:
            return self._ledger.get_many(wanted)
        except LedgerUnavailableError as error:
            logger.warning("Copy ledger batch lookup failed; each record looks itself up", extra={"error": str(error)})
            return None

    def process_record(
        self, record: SQSRecord, keys: UploadcareKeys, deadline: Deadline, known: LedgerView | None = None
    ) -> RecordOutcome:
        started = time.monotonic()
        try:
            request = CopyRequest.from_message(record.body)
        except InvalidCopyRequest as error:
            return self._dead_letter(record, None, PermanentFailure(Reason.INVALID_COPY_REQUEST, str(error)), started)
        logger.thread_safe_append_keys(file_uuid=request.uuid, message_id=record.message_id)
        copy_key = idempotency_key(request, self.settings)
        run = _Run()
        self._ran.value = run
        try:
            settled = self._settled_without_copy(request, deadline, started, known)
            if settled is not None:
                return settled
            stored = self._copy_once(
                copy_key=copy_key, request=request, keys=keys, deadline=deadline, receive_count=receive_count(record)
            )
            if not run.ran:
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
            hold_until = self._in_progress_window_end(copy_key, deadline)
            logger.info(
                "The same copy is in progress elsewhere; given back until its in-progress window ends",
                extra={"seconds": round(hold_until - time.monotonic(), 1)},
            )
            return RecordOutcome(
                "retry", request.uuid, time.monotonic() - started, reason=Reason.IN_PROGRESS, hold_until=hold_until
            )
        except IdempotencyPersistenceLayerError as error:
            return self._persistence_failed(record, request, run, error, deadline, started)
        finally:
            logger.thread_safe_clear_keys()

    def _settled_without_copy(
        self, request: CopyRequest, deadline: Deadline, started: float, known: LedgerView | None
    ) -> RecordOutcome | None:
        """Given back when no call can start in time; done when the ledger already proves the copy (however long
        ago: no Uploadcare call); None when the copy must be tried. The batch's lookup answers if it covered this
        record, else its own GetItem. Raises TransientFailure if the ledger cannot be read, PermanentFailure when the
        request is for no copy spec of this deployment."""
        if request.specs is not None and DEFAULT_SPEC not in request.specs:
            raise PermanentFailure(
                Reason.UNKNOWN_SPEC,
                f"the request is for copy specs {', '.join(request.specs)}; this deployment has only {DEFAULT_SPEC!r}",
            )
        if not deadline.allows_aws_call():
            logger.info("No time left in this invocation to start the copy; given back")
            return RecordOutcome("retry", request.uuid, time.monotonic() - started, reason=Reason.TIMEOUT)
        key = (request.uuid, DEFAULT_SPEC)
        if known is not None and key in known.looked_up:
            proven = known.items.get(key)
        else:
            try:
                proven = self._ledger.get(*key)
            except LedgerUnavailableError as error:
                raise TransientFailure(Reason.AWS_UNAVAILABLE, str(error)) from error
        if proven is None or not proven.verified:
            return None
        logger.info(
            "Already verified in the ledger: no Uploadcare call",
            extra={"copy": {"bucket": proven.bucket, "key": proven.key, "verified_at": proven.verified_at}},
        )
        return RecordOutcome("duplicate", request.uuid, time.monotonic() - started)

    def _persistence_failed(
        self,
        record: SQSRecord,
        request: CopyRequest,
        run: _Run,
        error: IdempotencyPersistenceLayerError,
        deadline: Deadline,
        started: float,
    ) -> RecordOutcome:
        """The idempotency table failed. Before the copy ran (no record saved): a plain retry. After a verified copy
        the ledger already holds its proof, so the record is done: a redelivery is settled by the ledger before it
        meets the INPROGRESS record left behind. After a transient failure the record stays INPROGRESS until this
        invocation's end, so a retry before then would only meet "in progress": it is held back until that window
        has ended. A permanent failure keeps its own reason."""
        seconds = time.monotonic() - started
        cause = type(error.__cause__).__name__ if error.__cause__ else type(error).__name__
        if not run.ran:
            logger.warning("Idempotency table unavailable; given back", extra={"error": cause})
            return RecordOutcome("retry", request.uuid, seconds, reason=Reason.AWS_UNAVAILABLE)
        if isinstance(run.failure, PermanentFailure):
            logger.warning("Idempotency record not deleted after a permanent failure", extra={"error": cause})
            return self._dead_letter(record, request, run.failure, started)
        if run.verified is not None:
            logger.warning(
                "Copy verified and in the ledger, but its idempotency record was not saved: done (the ledger "
                "settles any redelivery)",
                extra={"copy": run.verified, "error": cause},
            )
            return RecordOutcome(str(run.verified["status"]), request.uuid, seconds, size=request.size)
        logger.warning("Idempotency record not deleted after a transient failure", extra={"error": cause})
        reason = run.failure.reason if run.failure is not None else Reason.AWS_UNAVAILABLE
        hold_until = time.monotonic() + deadline.invocation_left()
        return RecordOutcome("retry", request.uuid, seconds, reason=reason, hold_until=hold_until)

    def _in_progress_window_end(self, copy_key: dict[str, str], deadline: Deadline) -> float:
        """When the other invocation's in-progress window ends (time.monotonic()), read from its record; at worst
        the longest an invocation can last, taken as this one's own length."""
        fallback = time.monotonic() + deadline.invocation_started_with()
        if not deadline.allows_aws_call():
            return fallback
        try:
            existing = self._persistence.get_record(data=copy_key)
        except Exception as error:  # any failure of this extra read falls back to the bound
            logger.info("Could not read the in-progress record", extra={"error": type(error).__name__})
            return fallback
        expiry_ms = existing.in_progress_expiry_timestamp if existing is not None else None
        if expiry_ms is None:
            return fallback
        return time.monotonic() + max(0.0, float(expiry_ms) / 1000 - time.time())  # a Decimal from DynamoDB

    def _copy_unguarded(
        self,
        copy_key: dict[str, str],
        request: CopyRequest,
        keys: UploadcareKeys,
        deadline: Deadline,
        receive_count: int,
    ) -> dict[str, Any]:
        """Runs only when no finished copy is recorded for `copy_key`; what it returns is stored and replayed."""
        run: _Run = self._ran.value
        run.ran = True
        try:
            proof = self._service.copy_and_verify(request, keys, deadline, receive_count)
            self._record_verified(request, proof)
        except CopyFailure as failure:
            run.failure = failure
            raise
        verified = proof.as_record()
        run.verified = verified
        return verified

    def _record_verified(self, request: CopyRequest, proof: Verified) -> None:
        """The ledger item, written after the proof and before the record is reported done. If it cannot be
        written the record is given back: the redelivery finds the copy already there and writes it then."""
        now = now_iso()
        item = LedgerItem(
            uuid=request.uuid,
            spec=DEFAULT_SPEC,
            status=LedgerStatus.VERIFIED,
            updated_at=now,
            bucket=proof.bucket,
            key=proof.key,
            size=proof.size,
            etag=proof.etag,
            checksum=proof.checksum,
            verified_at=now,
            origin=request.origin,
            uploaded_at=request.uploaded_at,
        )
        try:
            self._ledger.put(item)
        except LedgerUnavailableError as error:
            raise TransientFailure(Reason.AWS_UNAVAILABLE, f"copy verified, ledger not written: {error}") from error

    def _record_dead_lettered(self, request: CopyRequest, failure: CopyFailure) -> None:
        """Best effort: the DLQ message is the record of a parked request; the ledger item lets the reconciler and
        `audit` count it. A verified item is never replaced (`Ledger.put`)."""
        item = LedgerItem(
            uuid=request.uuid,
            spec=DEFAULT_SPEC,
            status=LedgerStatus.DEAD_LETTERED,
            updated_at=now_iso(),
            origin=request.origin,
            uploaded_at=request.uploaded_at,
            reason=str(failure.reason),
        )
        try:
            self._ledger.put(item)
        except LedgerUnavailableError as error:
            logger.warning("Parked, but the ledger item was not written", extra={"error": str(error)})

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
        if request is not None and failure.reason is not Reason.UNKNOWN_SPEC:  # an item of no spec of this deployment
            self._record_dead_lettered(request, failure)
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
    """The container's copier from its environment (docs/configuration.md); a bad configuration raises ConfigError.

    Everything shared by the record threads (AWS clients, the urllib3 pool, the Uploadcare client per key pair) is
    built here, on one thread, once per container."""
    settings = load_copier_settings(environ)
    # Clients are created once per container; boto3 honours AWS_ENDPOINT_URL for local servers by itself.
    aws_config = aws_client_config(settings.copy_concurrency)
    s3 = boto3.client("s3", config=aws_config)
    sqs = boto3.client("sqs", config=aws_config)
    dynamodb = boto3.client("dynamodb", config=aws_config)
    key_store = KeyStore(
        settings.secret_id,
        required=COPIER_SECRET_FIELDS,
        fetch=secrets_manager_fetcher(aws_config),
    )
    api_url = settings.api_url
    pool = new_pool()
    clients: dict[UploadcareKeys, UploadcareClient] = {}
    lock = threading.Lock()

    def client_factory(keys: UploadcareKeys) -> UploadcareClient:
        with lock:  # one client per key pair (a rotation adds one), all on the container's one pool
            client = clients.get(keys)
            if client is None:
                client = clients[keys] = UploadcareClient(
                    Credentials(keys.public_key, keys.secret_key), api_url, pool=pool
                )
            return client

    return Copier(
        settings,
        service=CopyService(settings, s3=s3, key_store=key_store, client_factory=client_factory),
        dead_letters=DeadLetters(sqs, settings.dlq_url),
        key_store=key_store,
        persistence=DynamoDBPersistenceLayer(
            table_name=settings.idempotency_table, key_attr="id", expiry_attr="expiration", boto3_client=dynamodb
        ),
        ledger=Ledger(dynamodb, settings.ledger_table),
        redelivery=Redelivery(sqs, settings.copy_queue_url),
    )


def aws_client_config(concurrency: int) -> BotoConfig:
    """Short timeouts and two attempts: every AWS call ends within AWS_CALL_SECONDS (copier/rules.py), so the
    deadline can leave room for the calls that follow a copy."""
    return BotoConfig(
        connect_timeout=AWS_CONNECT_SECONDS,
        read_timeout=AWS_READ_SECONDS,
        retries={"total_max_attempts": AWS_ATTEMPTS, "mode": "standard"},
        max_pool_connections=max(10, concurrency),
    )
