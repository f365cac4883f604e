"""The copier function's wiring: one SQS batch of copy requests -> remote copies proved with head_object, or the
DLQ with a reason (docs/design.md, "Copier: one record's outcomes"). Per record:
  1. parse the copy request (a malformed one goes straight to the DLQ: `invalid_copy_request`);
  2. fan it out to its copy specs (the request's `specs`, else every spec of the deployment): each (file, spec) is
     its own unit of work, and the specs of one record run concurrently;
  3. per (file, spec): the ledger (a verified copy costs no call), then Powertools idempotency keyed on file UUID +
     target + pattern + effects (never the SQS message id, which changes on every redelivery): a finished copy is
     not repeated, a copy in progress elsewhere is retried later; then `CopyService`: the remote copy and its proof;
  4. per (file, spec): success | transient | permanent (sent to the DLQ with `reason`, `detail` and `spec`, the body
     narrowed to that spec, then done; if that send fails, given back so nothing is lost). The record is given back
     (a batch item failure: SQS redelivers) when any of its specs is; the redelivery finds the others settled in
     the ledger, at no Uploadcare call.
Records of a batch run concurrently on a bounded thread pool: each spends its time waiting on the network.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
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
from uploadcare_s3_copy.copier.removals import MAYBE_REMOVED, Evidence, SourceChanges
from uploadcare_s3_copy.copier.rules import (
    AWS_ATTEMPTS,
    AWS_CONNECT_SECONDS,
    AWS_READ_SECONDS,
    Deadline,
    hold_delay,
    retry_delay,
)
from uploadcare_s3_copy.copier.service import CopyService
from uploadcare_s3_copy.copier.settings import CopierSettings, load_copier_settings
from uploadcare_s3_copy.copy_request import CopyRequest, InvalidCopyRequest, now_iso
from uploadcare_s3_copy.ledger import (
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
from uploadcare_s3_copy.source_changes import SOURCE_CHANGE_EVENTS
from uploadcare_s3_copy.specs import CopySpec
from uploadcare_s3_copy.uploadcare.auth import Credentials
from uploadcare_s3_copy.uploadcare.client import UploadcareClient, new_pool

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

IDEMPOTENCY_KEY_PREFIX = "uploadcare-s3-copy"
# What a confirmed deletion or infection did to a (file, spec), as a count metric each.
SOURCE_CHANGE_METRICS = {
    "source_deleted": "SourceDeleted",
    "object_tagged": "ObjectTagged",
    "object_deleted": "ObjectDeleted",
    "infected": "InfectedNotCopied",
}
MAX_COPIES_IN_FLIGHT = 50
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
        changes: SourceChanges,
        redelivery: Redelivery | None = None,
    ) -> None:
        self.settings = settings
        self._ledger = ledger
        self._changes = changes
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
        # The specs of one record run concurrently too, so that a batch with five specs is not five times slower.
        self._spec_pool = ThreadPoolExecutor(max_workers=copies_in_flight(settings), thread_name_prefix="spec")
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
                ended = [RecordOutcome("retry", None, 0.0, reason=Reason.AWS_UNAVAILABLE)]
            else:
                ended = self.process_record(record, keys, deadline, known)
            outcomes.extend(ended)
            back = [outcome for outcome in ended if outcome.give_back]
            if back:  # any (file, spec) given back gives the record back; its settled specs cost nothing next time
                count = receive_count(record)
                waits = [outcome.retry_after for outcome in back if outcome.retry_after is not None]
                holds = [outcome.hold_until for outcome in back if outcome.hold_until is not None]
                delay = retry_delay(max(waits) if waits else None, count)
                given_back.append((record.receipt_handle, delay, max(holds) if holds else None))
                raise RetryLater(f"{', '.join(sorted({str(o.reason) for o in back}))}: given back to the queue")
            return ",".join(outcome.outcome for outcome in ended)

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
        """The ledger items of the whole batch (every record's specs) in one BatchGetItem, on the main thread. None
        if that fails: each (file, spec) then looks its own item up (and is given back if that fails too)."""
        wanted: list[tuple[str, str]] = []
        for raw in event.get("Records", []):
            try:
                request = CopyRequest.from_message(str(raw.get("body", "")))
            except InvalidCopyRequest:
                continue  # parked by its record handler
            specs, _unknown = self._specs_of(request)
            wanted.extend((request.uuid, spec.name) for spec in specs if spec.applies_to(request.mime_type))
        if not wanted:
            return None
        try:
            return self._ledger.get_many(wanted)
        except LedgerUnavailableError as error:
            logger.warning("Copy ledger batch lookup failed; each copy looks itself up", extra={"error": str(error)})
            return None

    def _specs_of(self, request: CopyRequest) -> tuple[list[CopySpec], list[str]]:
        """The deployment's specs a request is for (all, without `specs`), and the names it gives that are none."""
        if request.specs is None:
            return list(self.settings.specs), []
        specs = [spec for spec in self.settings.specs if spec.name in request.specs]
        known = {spec.name for spec in specs}
        return specs, [name for name in request.specs if name not in known]

    def process_record(
        self, record: SQSRecord, keys: UploadcareKeys, deadline: Deadline, known: LedgerView | None = None
    ) -> list[RecordOutcome]:
        """One outcome per (file, spec) of the record; the specs of one record run concurrently."""
        started = time.monotonic()
        try:
            request = CopyRequest.from_message(record.body)
        except InvalidCopyRequest as error:
            failure = PermanentFailure(Reason.INVALID_COPY_REQUEST, str(error))
            return [self._dead_letter(record, None, None, failure, started)]
        specs, unknown = self._specs_of(request)
        outcomes: list[RecordOutcome] = []
        if unknown:
            failure = PermanentFailure(
                Reason.UNKNOWN_SPEC,
                f"the request is for copy specs {', '.join(unknown)}; this deployment has "
                f"{', '.join(self.settings.spec_names)}",
            )
            outcomes.append(self._dead_letter(record, request, tuple(unknown), failure, started))
        wanted: list[CopySpec] = []
        for spec in specs:
            if spec.applies_to(request.mime_type):
                wanted.append(spec)
            else:
                logger.info(
                    "Not a file this copy spec copies: skipped",
                    extra={"file_uuid": request.uuid, "spec": spec.name, "mime_type": request.mime_type},
                )
                outcomes.append(RecordOutcome("skipped", request.uuid, 0.0, spec=spec.name))
        if _source_change(request):
            if wanted:
                outcomes.extend(self._source_changed(record, request, wanted, keys, deadline, known, started))
            return outcomes
        if len(wanted) == 1:
            outcomes.append(self._process_spec(record, request, wanted[0], keys, deadline, known))
        elif wanted:
            futures = [
                self._spec_pool.submit(self._process_spec, record, request, spec, keys, deadline, known)
                for spec in wanted
            ]
            outcomes.extend(future.result() for future in futures)
        return outcomes

    def _process_spec(
        self,
        record: SQSRecord,
        request: CopyRequest,
        spec: CopySpec,
        keys: UploadcareKeys,
        deadline: Deadline,
        known: LedgerView | None,
    ) -> RecordOutcome:
        started = time.monotonic()
        logger.thread_safe_append_keys(file_uuid=request.uuid, message_id=record.message_id, spec=spec.name)
        copy_key = spec.idempotency_key(request.uuid)
        run = _Run()
        self._ran.value = run
        try:
            settled = self._settled_without_copy(request, spec, deadline, started, known)
            if settled is not None:
                return settled
            stored = self._copy_once(
                copy_key=copy_key,
                request=request,
                spec=spec,
                keys=keys,
                deadline=deadline,
                receive_count=receive_count(record),
            )
            if not run.ran:
                logger.info("Duplicate copy request: already copied and verified", extra={"copy": stored})
                return RecordOutcome("duplicate", request.uuid, time.monotonic() - started, spec=spec.name)
            logger.info("Copy verified", extra={"copy": stored})
            return RecordOutcome(
                str(stored["status"]),
                request.uuid,
                time.monotonic() - started,
                size=int(stored["size"]),
                spec=spec.name,
            )
        except PermanentFailure as failure:
            removed = self._removed_before_copy(request, spec, keys, failure, deadline, started)
            return removed or self._dead_letter(record, request, (spec.name,), failure, started)
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
                spec=spec.name,
            )
        except IdempotencyAlreadyInProgressError:
            hold_until = self._in_progress_window_end(copy_key, deadline)
            logger.info(
                "The same copy is in progress elsewhere; given back until its in-progress window ends",
                extra={"seconds": round(hold_until - time.monotonic(), 1)},
            )
            return RecordOutcome(
                "retry",
                request.uuid,
                time.monotonic() - started,
                reason=Reason.IN_PROGRESS,
                hold_until=hold_until,
                spec=spec.name,
            )
        except IdempotencyPersistenceLayerError as error:
            return self._persistence_failed(record, request, spec, run, error, deadline, started)
        finally:
            logger.thread_safe_clear_keys()

    def _source_changed(
        self,
        record: SQSRecord,
        request: CopyRequest,
        specs: list[CopySpec],
        keys: UploadcareKeys,
        deadline: Deadline,
        known: LedgerView | None,
        started: float,
    ) -> list[RecordOutcome]:
        """A file.deleted / file.infected: confirmed once with Uploadcare, then applied to each spec's copy in turn
        (tags and deletes are quick). Not confirmed: parked whole, nothing touched, no ledger item."""
        names = tuple(spec.name for spec in specs)
        logger.thread_safe_append_keys(file_uuid=request.uuid, message_id=record.message_id, event=request.event)
        try:
            _time_for_a_call(deadline)
            evidence = self._changes.confirm(request, keys)
            return [self._change_spec(record, request, spec, evidence, deadline, known) for spec in specs]
        except PermanentFailure as failure:
            return [self._dead_letter(record, request, names, failure, started)]
        except TransientFailure as failure:
            logger.warning("Source change not applied for now; given back", extra={"reason": str(failure.reason)})
            return [
                RecordOutcome("retry", request.uuid, time.monotonic() - started, reason=failure.reason, spec=name)
                for name in names
            ]
        finally:
            logger.thread_safe_clear_keys()

    def _change_spec(
        self,
        record: SQSRecord,
        request: CopyRequest,
        spec: CopySpec,
        evidence: Evidence,
        deadline: Deadline,
        known: LedgerView | None,
    ) -> RecordOutcome:
        started = time.monotonic()
        try:
            _time_for_a_call(deadline)
            item = self._ledger_item(request.uuid, spec.name, known)
            applied = self._changes.apply(request, spec.name, item, evidence)
        except PermanentFailure as failure:
            return self._dead_letter(record, request, (spec.name,), failure, started)
        except TransientFailure as failure:
            logger.warning(
                "Source change not applied for now; given back",
                extra={"spec": spec.name, "reason": str(failure.reason), "detail": failure.detail},
            )
            return RecordOutcome(
                "retry", request.uuid, time.monotonic() - started, reason=failure.reason, spec=spec.name
            )
        written = applied.item
        logger.info(
            "Source change applied" if written else "Source change already applied: nothing to do",
            extra={"spec": spec.name, "outcome": applied.outcome, "why": written.why if written else None},
        )
        return RecordOutcome(applied.outcome, request.uuid, time.monotonic() - started, spec=spec.name)

    def _ledger_item(self, uuid: str, spec: str, known: LedgerView | None) -> LedgerItem | None:
        """From the batch's lookup when it covered (uuid, spec), else GetItem; TransientFailure if unreadable."""
        if known is not None and (uuid, spec) in known.looked_up:
            return known.items.get((uuid, spec))
        try:
            return self._ledger.get(uuid, spec)
        except LedgerUnavailableError as error:
            raise TransientFailure(Reason.AWS_UNAVAILABLE, str(error)) from error

    def _settled_without_copy(
        self, request: CopyRequest, spec: CopySpec, deadline: Deadline, started: float, known: LedgerView | None
    ) -> RecordOutcome | None:
        """Given back when no call can start in time; done when the ledger already proves the copy (however long
        ago: no Uploadcare call); None when the copy must be tried. The batch's lookup answers if it covered this
        (file, spec), else its own GetItem. Raises TransientFailure if the ledger cannot be read."""
        if not deadline.allows_aws_call():
            logger.info("No time left in this invocation to start the copy; given back")
            return RecordOutcome(
                "retry", request.uuid, time.monotonic() - started, reason=Reason.TIMEOUT, spec=spec.name
            )
        proven = self._ledger_item(request.uuid, spec.name, known)
        if proven is None or not proven.settled:
            return None
        if not proven.verified:
            logger.info(
                "The source was deleted or flagged infected: not copied",
                extra={"status": str(proven.status), "why": proven.why},
            )
            return RecordOutcome("skipped", request.uuid, time.monotonic() - started, spec=spec.name)
        logger.info(
            "Already verified in the ledger: no Uploadcare call",
            extra={"copy": {"bucket": proven.bucket, "key": proven.key, "verified_at": proven.verified_at}},
        )
        return RecordOutcome("duplicate", request.uuid, time.monotonic() - started, spec=spec.name)

    def _removed_before_copy(
        self,
        request: CopyRequest,
        spec: CopySpec,
        keys: UploadcareKeys,
        failure: PermanentFailure,
        deadline: Deadline,
        started: float,
    ) -> RecordOutcome | None:
        """remote_copy refused a source that may have been removed meanwhile: if Uploadcare shows it removed, the
        (file, spec) ends `source_deleted` in the ledger (nothing to copy, nothing lost), else None (parked)."""
        if failure.reason not in MAYBE_REMOVED or not deadline.allows_aws_call():
            return None
        try:
            applied = self._changes.removed_before_copy(request, spec.name, keys)
        except (PermanentFailure, TransientFailure) as error:
            logger.info("Could not tell whether the source was removed", extra={"error": str(error)})
            return None
        if applied is None:
            return None
        logger.info("The file was removed at Uploadcare before it was copied", extra={"detail": failure.detail})
        return RecordOutcome(applied.outcome, request.uuid, time.monotonic() - started, spec=spec.name)

    def _persistence_failed(
        self,
        record: SQSRecord,
        request: CopyRequest,
        spec: CopySpec,
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
            return RecordOutcome("retry", request.uuid, seconds, reason=Reason.AWS_UNAVAILABLE, spec=spec.name)
        if isinstance(run.failure, PermanentFailure):
            logger.warning("Idempotency record not deleted after a permanent failure", extra={"error": cause})
            return self._dead_letter(record, request, (spec.name,), run.failure, started)
        if run.verified is not None:
            logger.warning(
                "Copy verified and in the ledger, but its idempotency record was not saved: done (the ledger "
                "settles any redelivery)",
                extra={"copy": run.verified, "error": cause},
            )
            return RecordOutcome(
                str(run.verified["status"]), request.uuid, seconds, size=int(run.verified["size"]), spec=spec.name
            )
        logger.warning("Idempotency record not deleted after a transient failure", extra={"error": cause})
        reason = run.failure.reason if run.failure is not None else Reason.AWS_UNAVAILABLE
        hold_until = time.monotonic() + deadline.invocation_left()
        return RecordOutcome("retry", request.uuid, seconds, reason=reason, hold_until=hold_until, spec=spec.name)

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
        spec: CopySpec,
        keys: UploadcareKeys,
        deadline: Deadline,
        receive_count: int,
    ) -> dict[str, Any]:
        """Runs only when no finished copy is recorded for `copy_key`; what it returns is stored and replayed."""
        run: _Run = self._ran.value
        run.ran = True
        try:
            proof = self._service.copy_and_verify(request, spec, keys, deadline, receive_count)
            self._record_verified(request, spec.name, proof)
        except CopyFailure as failure:
            run.failure = failure
            raise
        verified = proof.as_record()
        run.verified = verified
        return verified

    def _record_verified(self, request: CopyRequest, spec: str, proof: Verified) -> None:
        """The ledger item, written after the proof and before the record is reported done. If it cannot be
        written the record is given back: the redelivery finds the copy already there and writes it then."""
        now = now_iso()
        item = LedgerItem(
            uuid=request.uuid,
            spec=spec,
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

    def _record_dead_lettered(self, request: CopyRequest, spec: str, failure: CopyFailure) -> None:
        """Best effort: the DLQ message is the record of a parked request; the ledger item lets the reconciler and
        `audit` count it. A verified item is never replaced (`Ledger.put`)."""
        item = LedgerItem(
            uuid=request.uuid,
            spec=spec,
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
        self,
        record: SQSRecord,
        request: CopyRequest | None,
        specs: tuple[str, ...] | None,
        failure: CopyFailure,
        started: float,
    ) -> RecordOutcome:
        """Parks what failed: the record's body as it came when it is for exactly these specs, else narrowed to them
        (`specs`), so a `dlq redrive` copies only what failed. The `spec` attribute names them."""
        uuid = request.uuid if request else None
        spec = ",".join(specs) if specs else None
        extra = {"reason": str(failure.reason), "detail": failure.detail, "status": failure.status, "spec": spec}
        body = record.body
        if request is not None and specs is not None:
            whole = request.specs if request.specs is not None else self.settings.spec_names
            if tuple(whole) != specs:
                body = request.for_specs(specs).to_message()
        try:
            self._dead_letters.send(body, failure, uuid, spec=spec)
        except (ClientError, BotoCoreError):
            logger.error("DLQ send failed; the record is given back so it is not lost", extra=extra)
            return RecordOutcome("retry", uuid, time.monotonic() - started, reason=Reason.AWS_UNAVAILABLE, spec=spec)
        logger.error("Copy failed permanently; sent to the dead-letter queue", extra=extra)
        # No item for no spec, nor for a deletion not confirmed: the copy (if any) stands as it was.
        if request is not None and specs and failure.reason is not Reason.UNKNOWN_SPEC and not _source_change(request):
            for name in specs:
                self._record_dead_lettered(request, name, failure)
        return RecordOutcome("dead_lettered", uuid, time.monotonic() - started, reason=failure.reason, spec=spec)

    @staticmethod
    def _add_metrics(outcomes: list[RecordOutcome]) -> None:
        names = {
            "copied": "CopySucceeded",
            "already_exists": "CopyAlreadyExisted",
            "duplicate": "CopyDuplicate",
            "skipped": "CopySkipped",
            **SOURCE_CHANGE_METRICS,
        }
        by_spec: Counter[tuple[str, str]] = Counter()
        for outcome in outcomes:
            name = names.get(outcome.outcome) or ("CopyFailed" if outcome.outcome == "dead_lettered" else "CopyRetried")
            if outcome.spec and outcome.reason is not Reason.UNKNOWN_SPEC:
                by_spec[(name, outcome.spec)] += 1
            if outcome.outcome == "skipped" or outcome.outcome in SOURCE_CHANGE_METRICS:
                metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
            elif outcome.outcome in names:
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
        for (name, spec), count in sorted(by_spec.items()):  # the deployment's spec names: at most ten values
            with single_metric(name=name, unit=MetricUnit.Count, value=count, namespace=metrics.namespace) as one:
                one.add_dimension(name="spec", value=spec)


def _time_for_a_call(deadline: Deadline) -> None:
    if not deadline.allows_aws_call():
        raise TransientFailure(Reason.TIMEOUT, "no time left in this invocation for the next call")


def _source_change(request: CopyRequest) -> bool:
    return request.event in SOURCE_CHANGE_EVENTS


def copies_in_flight(settings: CopierSettings) -> int:
    """(file, spec) copies one invocation runs at once: COPY_CONCURRENCY records, each with its specs, at most
    MAX_COPIES_IN_FLIGHT."""
    return max(1, min(MAX_COPIES_IN_FLIGHT, settings.copy_concurrency * len(settings.specs)))


def build_copier(environ: Mapping[str, str]) -> Copier:
    """The container's copier from its environment (docs/configuration.md); a bad configuration raises ConfigError.

    Everything shared by the record threads (AWS clients, the urllib3 pool, the Uploadcare client per key pair) is
    built here, on one thread, once per container."""
    settings = load_copier_settings(environ)
    # Clients are created once per container; boto3 honours AWS_ENDPOINT_URL for local servers by itself.
    aws_config = aws_client_config(copies_in_flight(settings))
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

    ledger = Ledger(dynamodb, settings.ledger_table)
    return Copier(
        settings,
        service=CopyService(s3=s3, key_store=key_store, client_factory=client_factory),
        dead_letters=DeadLetters(sqs, settings.dlq_url),
        key_store=key_store,
        persistence=DynamoDBPersistenceLayer(
            table_name=settings.idempotency_table, key_attr="id", expiry_attr="expiration", boto3_client=dynamodb
        ),
        ledger=ledger,
        changes=SourceChanges(s3=s3, ledger=ledger, client_factory=client_factory, policy=settings.on_source_delete),
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
