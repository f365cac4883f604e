"""The reconciliation: Uploadcare's file list against the ledger, a copy request for every (file, spec) the ledger
does not prove (docs/design.md, "Reconciliation: what the webhooks missed").

Pages `GET /files/` in upload order over a window, looks every (file, spec) of a page up with BatchGetItem (no S3
call per file), and queues one request per file that lacks a `verified` item, for the specs it lacks, ten to a
SendMessageBatch. `dead_lettered` items are counted, not queued again: they wait for `dlq redrive`. Before the
deadline a scheduled run saves where it is and returns; the next run goes on from there.

Each page is looked up and queued before the cursor moves past it, so a run cut short queues a page at most once
more on resumption; the copier's ledger lookup makes a second request for a proven copy cost no Uploadcare call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from uploadcare_s3_copy.copy_request import CopyRequest, has_file_identity
from uploadcare_s3_copy.ledger import AFTER_SOURCE_CHANGE, Ledger, LedgerItem, LedgerStatus, LedgerUnavailableError
from uploadcare_s3_copy.moments import iso_z, parse_when, uploaded_at
from uploadcare_s3_copy.observability import logger
from uploadcare_s3_copy.queueing import QueueSendError
from uploadcare_s3_copy.reasons import CopyFailure, Reason, TransientFailure
from uploadcare_s3_copy.reconciler.settings import ReconcilerSettings
from uploadcare_s3_copy.reconciler.state import ReconcileState, StateStore
from uploadcare_s3_copy.source_changes import FILE_DELETED, SourcePolicy
from uploadcare_s3_copy.uploadcare import FilesPage, files_cursor
from uploadcare_s3_copy.webhook.rules import derived_from

PAGE_SIZE = 100  # files per GET /files/ page: one BatchGetItem (100 keys) per page and spec
# Time a page needs: the listing call (5 s connect + 30 s read at worst), then its lookups, up to ten
# SendMessageBatch calls and the cursor's PutItem (each bounded by the AWS client's timeouts).
PAGE_SECONDS = 40.0
FINISH_SECONDS = 20.0
LISTING_RETRY_DELAYS = (2.0, 5.0)  # after a 5xx, timeout or connection error on a page
RECONCILE_EVENT = "file.uploaded"


class InvalidReconcileEvent(ValueError):
    """The invocation event is not one the reconciler understands; the message names the problem."""


class RunKind(StrEnum):
    SCHEDULED = "scheduled"  # `{}` or an EventBridge event: from the saved watermark (or cursor)
    WINDOW = "window"  # `{"from": ISO, "to": ISO}`: that window, nothing saved
    FULL = "full"  # `{"full": true}`: every file, nothing saved


@dataclass(frozen=True)
class RunRequest:
    kind: RunKind
    lower: datetime | None = None
    upper: datetime | None = None


_EVENT_KEYS = {"from", "to", "full"}


def parse_event(event: Any) -> RunRequest:
    """`{}` (or a scheduled EventBridge event) · `{"from": ISO, "to": ISO}` (`to` optional) · `{"full": true}`."""
    if event is None:
        return RunRequest(RunKind.SCHEDULED)
    if not isinstance(event, Mapping):
        raise InvalidReconcileEvent("the event is not a JSON object")
    if event.get("source") == "aws.events" or "detail-type" in event:
        return RunRequest(RunKind.SCHEDULED)
    unknown = sorted(str(key) for key in event if key not in _EVENT_KEYS)
    if unknown:
        raise InvalidReconcileEvent(f"unknown keys {', '.join(unknown)}: the event takes from, to or full")
    bounds = _bounds(event)
    full = event.get("full", False)
    if not isinstance(full, bool):
        raise InvalidReconcileEvent("full is not true or false")
    if full and "from" in bounds:
        raise InvalidReconcileEvent("full checks every file: it takes no from")
    if "from" in bounds and "to" in bounds and bounds["to"] < bounds["from"]:
        raise InvalidReconcileEvent("to is before from")
    if full:
        return RunRequest(RunKind.FULL, upper=bounds.get("to"))
    if "from" in bounds:
        return RunRequest(RunKind.WINDOW, lower=bounds["from"], upper=bounds.get("to"))
    if "to" in bounds:
        raise InvalidReconcileEvent("to needs a from (or full)")
    return RunRequest(RunKind.SCHEDULED)


def _bounds(event: Mapping[str, Any]) -> dict[str, datetime]:
    bounds: dict[str, datetime] = {}
    for name in ("from", "to"):
        if name in event:
            value = event[name]
            if not isinstance(value, str):
                raise InvalidReconcileEvent(f"{name} is not an ISO date-time string")
            try:
                bounds[name] = parse_when(value, end_of_day=name == "to")
            except ValueError as error:
                raise InvalidReconcileEvent(f"{name}: {error}") from None
    return bounds


@dataclass
class Summary:
    """What a run found. `checked` = `verified` + `queued` + `dead_lettered`: the files looked up in the ledger;
    `skipped` files were not (removed, derived with SKIP_DERIVED, or without a valid uuid and size). `stale`:
    queued files that a finished run had already covered (uploaded before the watermark), so still unverified
    after one round of queueing; the alarm watches it."""

    kind: RunKind
    lower: datetime | None
    upper: datetime
    checked: int = 0
    verified: int = 0
    queued: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    stale: int = 0
    deletions_queued: int = 0  # removed files whose copies still stand: a file.deleted queued for them
    pages: int = 0
    complete: bool = False
    stopped_by: str | None = None  # why an incomplete run stopped: "deadline" or a failure reason

    def as_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "checked": self.checked,
            "verified": self.verified,
            "queued": self.queued,
            "dead_lettered": self.dead_lettered,
            "skipped": self.skipped,
            "complete": self.complete,
            "from": iso_z(self.lower) if self.lower else None,
            "to": iso_z(self.upper),
            "stale": self.stale,
            "deletions_queued": self.deletions_queued,
            "pages": self.pages,
            "run": str(self.kind),
        }
        if self.stopped_by:
            summary["stopped_by"] = self.stopped_by
        return summary


class FileListing(Protocol):
    def list_files_page(self, cursor: str) -> FilesPage: ...


class Sender(Protocol):
    def send_all(self, bodies: Sequence[str]) -> int: ...


@dataclass
class _PageTally:
    checked: int = 0
    verified: int = 0
    queued: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    stale: int = 0
    deletions_queued: int = 0
    bodies: list[str] = field(default_factory=list)


class Reconciler:
    def __init__(
        self,
        settings: ReconcilerSettings,
        *,
        listing: FileListing,
        ledger: Ledger,
        sender: Sender,
        state: StateStore,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        page_size: int = PAGE_SIZE,
        page_seconds: float = PAGE_SECONDS,
        finish_seconds: float = FINISH_SECONDS,
    ) -> None:
        self.settings = settings
        self._listing = listing
        self._ledger = ledger
        self._sender = sender
        self._state = state
        self._clock = clock
        self._sleep = sleep
        self._page_size = page_size
        self._page_seconds = page_seconds
        self._finish_seconds = finish_seconds

    def run(self, request: RunRequest, remaining: Callable[[], float]) -> Summary:
        """One run; `remaining()` is the time left (seconds). Raises LedgerUnavailableError only when a scheduled
        run cannot even read its state; every later failure ends the run incomplete, with `stopped_by`."""
        summary, state, watermark, cursor = self._start(request)
        if summary.lower is not None and summary.upper < summary.lower:
            summary.complete = True  # an empty window (a watermark ahead of the clock less the grace)
            return summary
        if state is not None and not state.unfinished:
            state = self._save(summary, state, cursor)  # a run that dies at once leaves its window, not a gap
            if state is None:
                return summary
        recent: tuple[set[str], set[str]] = (set(), set())

        def check(files: list[Mapping[str, Any]]) -> _PageTally:
            nonlocal recent
            tally, recent = self._check(files, watermark, recent)
            return tally

        def saved(next_cursor: str | None) -> bool:
            nonlocal state
            if state is None:
                return True  # a window or full run saves nothing
            state = self._save(summary, state, next_cursor)
            return state is not None  # a save that failed stops the run (`stopped_by` says so)

        left = self._walk(summary, cursor, remaining, check, saved)
        summary.complete = left is None and summary.stopped_by is None
        if summary.complete and self.settings.on_source_delete is not SourcePolicy.KEEP:
            # Deletions whose webhook was lost: the window's removed files whose copies the ledger still has
            # standing get the file.deleted the webhook would have queued (the copier confirms it again). Not
            # resumable: a pass cut short leaves the run incomplete; the next run's overlap or a full run covers it.
            # Uploadcare pages by upload time, so an old file deleted now is found by a full run.
            lower = summary.lower
            removed = files_cursor(from_datetime=iso_z(lower) if lower else None, limit=self._page_size, removed=True)
            left = self._walk(summary, removed, remaining, self._lost_deletions, lambda _next: True)
            summary.complete = left is None and summary.stopped_by is None
        return summary

    def _walk(
        self,
        summary: Summary,
        cursor: str | None,
        remaining: Callable[[], float],
        check: Callable[[list[Mapping[str, Any]]], _PageTally],
        after_page: Callable[[str | None], bool],
    ) -> str | None:
        """Pages from `cursor` up to the window's end: each page's files through `check`, its requests queued, its
        counts added to `summary`, then `after_page(next cursor)` (False stops the walk). Stops before the deadline
        or at a failure, with `summary.stopped_by`. Returns the cursor not yet done (None: the walk is over)."""
        next_cursor = cursor
        while next_cursor is not None:
            if remaining() < self._page_seconds + self._finish_seconds:
                summary.stopped_by = "deadline"
                break
            try:
                page = self._fetch(next_cursor, remaining)
                files, beyond = _in_window(page.files, summary.upper)
                tally = check(files)
                if tally.bodies:
                    self._sender.send_all(tally.bodies)
            except CopyFailure as failure:
                summary.stopped_by = str(failure.reason)
                logger.error("GET /files/ failed; the run stops here", extra={"detail": failure.detail})
                break
            except (LedgerUnavailableError, QueueSendError, ClientError, BotoCoreError) as error:
                summary.stopped_by = str(Reason.AWS_UNAVAILABLE)
                logger.error("AWS call failed; the run stops here", extra={"error": str(error)[:300]})
                break
            _add(summary, tally)
            summary.pages += 1
            next_cursor = None if beyond else page.next_url
            if not after_page(next_cursor):
                break
        return next_cursor

    def _lost_deletions(self, files: list[Mapping[str, Any]]) -> _PageTally:
        """A file.deleted request for each removed file of the page whose copies the ledger still has standing."""
        removed = [info for info in files if has_file_identity(info) and info.get("datetime_removed")]
        names = [spec.name for spec in self.settings.specs]
        view = self._ledger.get_all([(str(info["uuid"]), name) for info in removed for name in names])
        tally = _PageTally()
        for info in removed:
            uuid = str(info["uuid"])
            standing = tuple(name for name in names if _still_standing(view.items.get((uuid, name))))
            if standing:
                request = CopyRequest.from_file_info(dict(info), event=FILE_DELETED, origin="reconcile")
                tally.bodies.append(request.for_specs(standing).to_message())
                tally.deletions_queued += 1
                logger.info("A removed file's copies still stand: file.deleted queued", extra={"file_uuid": uuid})
        return tally

    def _start(self, request: RunRequest) -> tuple[Summary, ReconcileState | None, datetime | None, str]:
        """The run's window and first page: a scheduled run goes on with an unfinished run's window and cursor, or
        starts at the watermark (else now) less the overlap; every window ends at now less the grace."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        default_upper = now - timedelta(seconds=self.settings.grace_seconds)
        if request.kind is not RunKind.SCHEDULED:
            lower, upper = request.lower, request.upper or default_upper
            cursor = files_cursor(from_datetime=iso_z(lower) if lower else None, limit=self._page_size)
            return Summary(request.kind, lower, upper), None, None, cursor
        state = self._state.load()
        watermark = parse_when(state.watermark) if state.watermark else None
        if state.cursor is not None and state.run_to is not None:
            logger.info("Going on with the unfinished run", extra={"from": state.run_from, "to": state.run_to})
            lower = parse_when(state.run_from) if state.run_from else None
            return Summary(request.kind, lower, parse_when(state.run_to)), state, watermark, state.cursor
        lower = (watermark or now) - timedelta(seconds=self.settings.overlap_seconds)
        cursor = files_cursor(from_datetime=iso_z(lower), limit=self._page_size)
        return Summary(request.kind, lower, default_upper), state, watermark, cursor

    def _save(self, summary: Summary, state: ReconcileState, cursor: str | None) -> ReconcileState | None:
        """The scheduled run's progress: its window and next page, or (when `cursor` is None) the new watermark.
        None when the save failed (the run then stops; `stopped_by` says so)."""
        if cursor is None:
            updated = ReconcileState(watermark=iso_z(summary.upper))
        else:
            lower = iso_z(summary.lower) if summary.lower else None
            updated = ReconcileState(state.watermark, lower, iso_z(summary.upper), cursor)
        try:
            return self._state.save(updated)
        except LedgerUnavailableError as error:
            summary.stopped_by = str(Reason.AWS_UNAVAILABLE)
            logger.error("The reconciler's state was not saved; the run stops here", extra={"error": str(error)})
            return None

    def _fetch(self, cursor: str, remaining: Callable[[], float]) -> FilesPage:
        """One page; a 429 waits Retry-After and a 5xx or timeout is tried again, while the time left allows."""
        failures = 0
        reserve = self._page_seconds + self._finish_seconds
        while True:
            try:
                return self._listing.list_files_page(cursor)
            except TransientFailure as failure:
                if failure.reason is Reason.THROTTLED:
                    wait = failure.retry_after if failure.retry_after is not None else LISTING_RETRY_DELAYS[-1]
                elif failure.reason is not Reason.AUTH and failures < len(LISTING_RETRY_DELAYS):
                    wait = LISTING_RETRY_DELAYS[failures]
                    failures += 1
                else:
                    raise
                if remaining() - wait < reserve:
                    raise
                logger.warning(
                    "GET /files/ failed for now; asking again",
                    extra={"reason": str(failure.reason), "wait_seconds": wait},
                )
                self._sleep(wait)

    def _check(
        self, files: list[Mapping[str, Any]], watermark: datetime | None, recent: tuple[set[str], set[str]]
    ) -> tuple[_PageTally, tuple[set[str], set[str]]]:
        """The page's files against the ledger. `recent`: UUIDs of the two pages before (a file listed twice at a
        page boundary is on adjacent pages), so a repeat is neither counted nor queued twice."""
        tally = _PageTally()
        previous, current = recent[1], set[str]()
        candidates: list[Mapping[str, Any]] = []
        for info in files:
            uuid = info.get("uuid")
            if isinstance(uuid, str) and (uuid in previous or uuid in current):
                continue
            if not has_file_identity(info):
                logger.warning("A listed file without a valid uuid and size is skipped", extra={"uuid": str(uuid)[:80]})
                tally.skipped += 1
                continue
            current.add(str(uuid))
            if info.get("datetime_removed") or (self.settings.skip_derived and derived_from(info)):
                tally.skipped += 1
                continue
            candidates.append(info)
        wanted = {str(info["uuid"]): self._specs_for(info) for info in candidates}
        view = self._ledger.get_all([(uuid, spec) for uuid, specs in wanted.items() for spec in specs])
        for info in candidates:
            uuid = str(info["uuid"])
            specs = wanted[uuid]
            if not specs:  # no copy spec copies a file of this type (their `mime_types`)
                tally.skipped += 1
                continue
            items = [view.items.get((uuid, spec)) for spec in specs]
            if all(item is not None and item.status in AFTER_SOURCE_CHANGE for item in items):
                tally.skipped += 1  # deleted or flagged infected at the source: nothing (more) to copy
                continue
            missing = tuple(spec for spec, item in zip(specs, items, strict=True) if not _settled(item))
            tally.checked += 1
            if missing:
                request = CopyRequest.from_file_info(dict(info), event=RECONCILE_EVENT, origin="reconcile")
                tally.bodies.append(request.for_specs(missing).to_message())
                tally.queued += 1
                moment = uploaded_at(info)
                if watermark is not None and moment is not None and moment <= watermark:
                    tally.stale += 1
                    logger.warning("Still not verified after an earlier run queued it", extra={"file_uuid": uuid})
            elif all(item is not None and (item.verified or item.status in AFTER_SOURCE_CHANGE) for item in items):
                tally.verified += 1
            else:
                tally.dead_lettered += 1
        return tally, (previous, current)

    def _specs_for(self, info: Mapping[str, Any]) -> tuple[str, ...]:
        mime_type = str(info.get("mime_type") or "")
        return tuple(spec.name for spec in self.settings.specs if spec.applies_to(mime_type))


def _still_standing(item: LedgerItem | None) -> bool:
    """A copy no deletion has been applied to yet (verified, or only tagged infected)."""
    if item is None or not item.has_copy:
        return False
    return item.verified or (item.status is LedgerStatus.OBJECT_TAGGED and not item.removed_at)


def _settled(item: LedgerItem | None) -> bool:
    """A spec needs no copy request once it has any ledger item: its copy is verified, parked in the DLQ (waiting
    for `dlq redrive`), or its source was deleted or flagged infected (every LedgerStatus is one of these)."""
    return item is not None


def _in_window(files: list[dict[str, Any]], upper: datetime) -> tuple[list[Mapping[str, Any]], bool]:
    """The page's files up to `upper`, and whether a later one was reached (upload order: the run is over)."""
    kept: list[Mapping[str, Any]] = []
    for info in files:
        if not isinstance(info, Mapping):
            continue
        moment = uploaded_at(info)
        if moment is not None and moment > upper:
            return kept, True
        kept.append(info)
    return kept, False


def _add(summary: Summary, tally: _PageTally) -> None:
    summary.checked += tally.checked
    summary.verified += tally.verified
    summary.queued += tally.queued
    summary.dead_lettered += tally.dead_lettered
    summary.skipped += tally.skipped
    summary.stale += tally.stale
    summary.deletions_queued += tally.deletions_queued
