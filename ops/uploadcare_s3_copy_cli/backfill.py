"""`backfill`: one copy request per file uploaded before the webhook existed, resumable after an interruption.

Pages through `GET /files/` in upload order (`from`, `ordering=datetime_uploaded`, `removed=false`, optionally
`stored=true`) following Uploadcare's `next` links, and queues a copy request (`origin: "backfill"`) per file,
ten per SendMessageBatch. After each page is queued, the `next` link is written to a state file: an interrupted
backfill continues from there with `--resume`. At worst the page in flight is queued again, which the copier's
idempotency makes harmless. A 429 waits `Retry-After` and asks for the same page again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from rich.progress import Progress as RichProgress
from rich.progress import TaskID

from uploadcare_s3_copy.copy_request import CopyRequest, has_file_identity, now_iso
from uploadcare_s3_copy.moments import iso_z, parse_when, uploaded_at
from uploadcare_s3_copy.reasons import CopyFailure, Reason, TransientFailure
from uploadcare_s3_copy.uploadcare import FilesPage, files_cursor
from uploadcare_s3_copy_cli.base import EXIT_INTERRUPTED, EXIT_OK, CliError, UsageError, plural
from uploadcare_s3_copy_cli.context import Context
from uploadcare_s3_copy_cli.display import on_terminal, status_display

STATE_VERSION = 1
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000  # Uploadcare's largest `limit`
MAX_THROTTLE_WAITS = 20  # 429s in a row for one page before giving up (the state keeps the cursor)
MAX_WAIT_SECONDS = 300.0
RETRY_DELAYS = (2.0, 5.0, 15.0)  # after a 5xx, timeout or connection error on a page
PROGRESS_INTERVAL_SECONDS = 10.0  # between progress lines when stderr is not a terminal
BACKFILL_EVENT = "file.uploaded"


# --- state ----------------------------------------------------------------------------------------------------


@dataclass
class BackfillState:
    """What a later `--resume` needs: the settings of the backfill, the next page to ask for, and the counts."""

    queue_url: str
    from_datetime: str
    to_datetime: str | None
    stored_only: bool
    page_size: int
    cursor: str | None  # the next page of GET /files/ (a path with query or Uploadcare's `next` URL)
    done: bool = False
    pages: int = 0
    seen: int = 0
    queued: int = 0
    skipped: int = 0
    last_uploaded: str | None = None  # datetime_uploaded of the last file seen
    started_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    version: int = STATE_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BackfillState:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError(f"not a version {STATE_VERSION} backfill state")
        names = {item.name for item in fields(cls)}
        missing = {"queue_url", "from_datetime", "cursor"} - set(data)
        if missing:
            raise ValueError(f"lacks {', '.join(sorted(missing))}")
        return cls(**{name: value for name, value in data.items() if name in names})


def default_state_path(environ: Mapping[str, str], stack: str | None, queue_url: str) -> Path:
    """`$XDG_CACHE_HOME/uploadcare-s3-copy/backfill-<stack name or hash of the queue URL>.json`."""
    cache = Path(environ.get("XDG_CACHE_HOME") or Path(environ.get("HOME") or Path.home()) / ".cache")
    if stack and re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,127}", stack):
        key = stack
    else:
        key = hashlib.sha256(queue_url.encode()).hexdigest()[:12]
    return cache / "uploadcare-s3-copy" / f"backfill-{key}.json"


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> BackfillState | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return BackfillState.from_json(text)
        except (ValueError, TypeError) as error:
            raise CliError(f"state file {self.path} is unusable ({error}); remove it or give --state-file") from error

    def save(self, state: BackfillState) -> None:
        """Written to a temporary file and renamed over the old one: a crash never leaves half a state."""
        state.updated_at = now_iso()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(state.to_json())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


# --- progress -------------------------------------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def eta_seconds(
    lower: datetime, upper: datetime | None, at_start: datetime | None, now_at: datetime | None, elapsed: float
) -> float | None:
    """Time left, from how far through the `[lower, upper]` upload-time range this run got in `elapsed` seconds."""
    if upper is None or now_at is None or elapsed <= 0 or upper <= lower:
        return None
    span = (upper - lower).total_seconds()
    done_before = max(0.0, ((at_start or lower) - lower).total_seconds()) / span
    done_now = min(1.0, max(0.0, (now_at - lower).total_seconds() / span))
    if done_now <= done_before:
        return None
    return elapsed * (1.0 - done_now) / (done_now - done_before)


def status_line(state: BackfillState, *, rate: float, eta: float | None, dry_run: bool) -> str:
    queued = "would queue" if dry_run else "queued"
    parts = [f"{state.seen:,} seen", f"{state.queued:,} {queued}", f"{state.skipped:,} skipped", f"{rate:,.0f}/s"]
    if state.last_uploaded:
        parts.append(f"up to {state.last_uploaded[:19]}Z")
    if eta is not None:
        parts.append(f"ETA {format_duration(eta)}")
    return "backfill: " + " · ".join(parts)


class Progress:
    """The status line on stderr: rich's live progress display on a terminal (spinner, status, elapsed time); else a
    plain line every few seconds and at the end."""

    def __init__(self, stream: TextIO, clock: Callable[[], float], *, interval: float = PROGRESS_INTERVAL_SECONDS):
        self._stream = stream
        self._clock = clock
        self._tty = on_terminal(stream)
        self._interval = interval
        self._last_shown: float | None = None
        self._pending: str | None = None
        self._live: RichProgress | None = None
        self._task: TaskID | None = None

    def show(self, line: str) -> None:
        if self._tty:
            if self._live is None:
                self._live = status_display(self._stream, transient=False)
                self._live.start()
                self._task = self._live.add_task(line, total=None)
            assert self._task is not None
            self._live.update(self._task, description=line)
            return
        now = self._clock()
        if self._last_shown is None or now - self._last_shown >= self._interval:
            self._stream.write(line + "\n")
            self._last_shown, self._pending = now, None
        else:
            self._pending = line

    def finish(self) -> None:
        """Ends the status display (a terminal keeps the last status line); elsewhere the latest status is written."""
        if self._live is not None:
            self._live.stop()
            self._live, self._task = None, None
        elif self._pending is not None:
            self._stream.write(self._pending + "\n")
        self._pending = None
        self._stream.flush()


# --- the run --------------------------------------------------------------------------------------------------


class PageSource(Protocol):
    def list_files_page(self, cursor: str) -> FilesPage: ...


class Sender(Protocol):
    def send_all(self, bodies: list[str]) -> int: ...


@dataclass
class Backfill:
    """Pages through the files from `state.cursor`, queueing a request per file and saving the state per page."""

    source: PageSource
    sender: Sender | None  # None: a dry run, nothing is queued and no state is written
    state: BackfillState
    store: StateFile | None
    progress: Progress
    warn: Callable[[str], None]
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    max_pages: int | None = None
    specs: tuple[str, ...] | None = None  # the copy specs the requests are for (None: every spec)
    # UUIDs queued from this page and the one before: a file listed twice (uploads at the same moment around a
    # page boundary) is on adjacent pages, so two pages are enough, whatever the size of the backfill.
    _recent: tuple[set[str], set[str]] = field(default_factory=lambda: (set(), set()))

    def run(self) -> bool:
        """True when the last page was reached, False when `max_pages` stopped it first."""
        lower = parse_when(self.state.from_datetime)
        upper = parse_when(self.state.to_datetime) if self.state.to_datetime else None
        started, seen_before = self.clock(), self.state.seen
        at_start = parse_when(self.state.last_uploaded) if self.state.last_uploaded else None
        pages = 0
        while self.state.cursor is not None:
            if self.max_pages is not None and pages >= self.max_pages:
                return False
            page = self._fetch(self.state.cursor)
            beyond = self._queue_page(page, upper)
            pages += 1
            self.state.pages += 1
            self.state.cursor = None if beyond else page.next_url
            self.state.done = self.state.cursor is None
            if self.store is not None:
                self.store.save(self.state)
            elapsed = self.clock() - started
            rate = (self.state.seen - seen_before) / elapsed if elapsed > 0 else 0.0
            now_at = parse_when(self.state.last_uploaded) if self.state.last_uploaded else None
            eta = None if self.state.done else eta_seconds(lower, upper, at_start, now_at, elapsed)
            self.progress.show(status_line(self.state, rate=rate, eta=eta, dry_run=self.sender is None))
        return True

    def _queue_page(self, page: FilesPage, upper: datetime | None) -> bool:
        """Queues the page's files; True when a file uploaded after `upper` was reached (the backfill is over)."""
        bodies: list[str] = []
        beyond = False
        previous, current = self._recent[1], set[str]()
        for info in page.files:
            moment = uploaded_at(info)
            if upper is not None and moment is not None and moment > upper:
                beyond = True  # upload order: every later file is after `upper` too
                break
            self.state.seen += 1
            if moment is not None:
                self.state.last_uploaded = iso_z(moment)
            uuid = info.get("uuid")
            if info.get("datetime_removed"):
                self.state.skipped += 1
                continue
            if not has_file_identity(info):
                self.warn(f"skipped a file without a valid uuid and size: {str(uuid)[:80]!r}")
                self.state.skipped += 1
                continue
            if uuid in previous or uuid in current:  # listed twice by Uploadcare
                self.state.skipped += 1
                continue
            current.add(str(uuid))
            request = CopyRequest.from_file_info(info, event=BACKFILL_EVENT, origin="backfill")
            bodies.append(request.for_specs(self.specs).to_message())
        if self.sender is not None and bodies:
            self.sender.send_all(bodies)
        self.state.queued += len(bodies)
        self._recent = (previous, current)
        return beyond

    def _fetch(self, cursor: str) -> FilesPage:
        return fetch_page(self.source, cursor, warn=self.warn, sleep=self.sleep)


def fetch_page(
    source: PageSource, cursor: str, *, warn: Callable[[str], None], sleep: Callable[[float], None]
) -> FilesPage:
    """One page of GET /files/: a 429 waits Retry-After (up to MAX_THROTTLE_WAITS times), a 5xx, timeout or
    connection error is tried again after RETRY_DELAYS; what still fails is raised."""
    throttled = 0
    failures = 0
    while True:
        try:
            return source.list_files_page(cursor)
        except TransientFailure as failure:
            if failure.reason is Reason.THROTTLED and throttled < MAX_THROTTLE_WAITS:
                throttled += 1
                wait = min(MAX_WAIT_SECONDS, failure.retry_after or RETRY_DELAYS[0])
                warn(f"Uploadcare throttled the listing (429): waiting {wait:g} s, then asking again")
            elif failure.reason not in (Reason.THROTTLED, Reason.AUTH) and failures < len(RETRY_DELAYS):
                wait = RETRY_DELAYS[failures]
                failures += 1
                warn(f"GET /files/ failed ({failure.reason}: {failure.detail}): trying again in {wait:g} s")
            else:
                raise
            sleep(wait)


def check_resume(state: BackfillState, queue_url: str, given: Mapping[str, Any]) -> None:
    """A resumed backfill keeps its own settings: a different queue or range given now is a usage error."""
    if state.queue_url != queue_url:
        raise UsageError(f"the saved backfill queues to {state.queue_url}, not {queue_url}; give its --state-file")
    saved = {"--from": state.from_datetime, "--to": state.to_datetime, "--stored-only": state.stored_only}
    for option, value in given.items():
        if value is not None and value is not False and value != saved[option]:
            raise UsageError(
                f"--resume continues the saved backfill, whose {option} is {saved[option]!r}, not {value!r}"
            )


# --- the command ----------------------------------------------------------------------------------------------


def command(ctx: Context, args: argparse.Namespace) -> int:
    dry_run: bool = args.dry_run
    ctx.resources.require("backfill", "secret_id", *(() if dry_run else ("queue_url",)))
    if args.from_ is not None and args.to is not None and args.to < args.from_:
        raise UsageError("--to is before --from")
    if dry_run and args.resume:
        raise UsageError("--dry-run lists from --from; it does not resume a saved backfill")
    if args.resume and args.page_size is not None:
        raise UsageError("--page-size cannot apply on --resume: the saved cursor already names its page size")
    specs = tuple(spec.name for spec in ctx.resources.select_specs(args.spec)) if args.spec else None
    queue_url = ctx.resources.queue_url or ""
    store = (
        None
        if dry_run
        else StateFile(args.state_file or default_state_path(ctx.environ, ctx.resources.stack, queue_url))
    )
    state = _resumed(ctx, args, store, queue_url) if args.resume else _started(ctx, args, store, queue_url)
    if state is None:
        return EXIT_OK

    progress = Progress(ctx.err, ctx.clock)
    backfill = Backfill(
        source=ctx.uploadcare(),
        sender=None if dry_run else ctx.copy_queue(),
        state=state,
        store=store,
        progress=progress,
        warn=ctx.note,
        sleep=ctx.sleep,
        clock=ctx.clock,
        max_pages=args.max_pages,
        specs=specs,
    )
    started, queued_before = ctx.clock(), state.queued
    hint = _resume_hint(ctx.resources.stack, args.state_file)

    def where() -> str:
        """Where the saved backfill stands and how to continue it (nothing for a dry run, which saves nothing)."""
        return f"Next page: {state.cursor}\nState: {store.path}\nContinue with: {hint}" if store is not None else ""

    try:
        finished = backfill.run()
    except KeyboardInterrupt:
        progress.finish()
        ctx.note(f"Interrupted after {_totals(state)}.\n" + where())
        return EXIT_INTERRUPTED
    except CopyFailure as failure:
        progress.finish()
        raise CliError(f"GET /files/ failed ({ctx.uploadcare_problem(failure)})\n" + where()) from failure
    except CliError as error:  # SQS refused some of a page's copy requests (BatchSender.send_all)
        progress.finish()
        raise CliError(f"{error}\nThe page is queued again on resume.\n" + where()) from error
    except (ClientError, BotoCoreError) as error:  # SQS unreachable or refusing the whole call
        progress.finish()
        raise CliError(f"queueing to SQS failed ({error})\nThe page is queued again on resume.\n" + where()) from error
    progress.finish()
    seconds = ctx.clock() - started
    if store is None:
        ctx.say(f"Dry run: {_totals(state, dry_run=True)} in {seconds:.1f} s; nothing was queued.")
    elif finished:
        this_run = f"{state.queued - queued_before:,} queued by this run"
        ctx.say(f"Backfill finished: {_totals(state)} ({this_run}) in {seconds:.1f} s.\nState: {store.path}")
    else:
        this_run = f"{state.queued - queued_before:,} queued by this run"
        ctx.say(f"Stopped after {plural(args.max_pages, 'page')} (--max-pages): {_totals(state)} so far ({this_run}).")
        ctx.say(where())
    return EXIT_OK


def _resumed(ctx: Context, args: argparse.Namespace, store: StateFile | None, queue_url: str) -> BackfillState | None:
    """The saved backfill to continue, or None (after saying so) when it had already finished."""
    assert store is not None  # a dry run does not resume
    state = store.load()
    if state is None:
        raise CliError(f"no backfill to resume: {store.path} does not exist")
    given = {
        "--from": iso_z(args.from_) if args.from_ else None,
        "--to": iso_z(args.to) if args.to else None,
        "--stored-only": args.stored_only,
    }
    check_resume(state, queue_url, given)
    if state.done:
        ctx.say(f"Nothing to resume: the backfill in {store.path} finished at {state.updated_at} ({_totals(state)}).")
        return None
    ctx.note(f"Resuming the backfill from {state.from_datetime} at {state.cursor}")
    return state


def _started(ctx: Context, args: argparse.Namespace, store: StateFile | None, queue_url: str) -> BackfillState:
    if args.from_ is None:
        raise UsageError("backfill needs --from DATE (or --resume to continue a saved one)")
    lower = iso_z(args.from_)
    stored = True if args.stored_only else None
    page_size: int = args.page_size if args.page_size is not None else DEFAULT_PAGE_SIZE
    if store is not None:
        _warn_if_replacing(ctx, store)
    return BackfillState(
        queue_url=queue_url,
        from_datetime=lower,
        to_datetime=iso_z(args.to) if args.to else None,
        stored_only=args.stored_only,
        page_size=page_size,
        cursor=files_cursor(from_datetime=lower, stored=stored, limit=page_size),
    )


def _totals(state: BackfillState, *, dry_run: bool = False) -> str:
    queued = "would be queued" if dry_run else "queued"
    return (
        f"{plural(state.seen, 'file')} seen, {state.queued:,} {queued}, {state.skipped:,} skipped, "
        f"{plural(state.pages, 'page')}"
    )


def _resume_hint(stack: str | None, state_file: Path | None) -> str:
    hint = "uploadcare-s3-copy backfill --resume"
    hint += f" --stack {stack}" if stack else " <the same resource options>"
    return hint + (f" --state-file {state_file}" if state_file else "")


def _warn_if_replacing(ctx: Context, store: StateFile) -> None:
    try:
        existing = store.load()
    except CliError:
        existing = None
    if existing is not None and not existing.done:
        ctx.note(f"Replacing the unfinished backfill saved in {store.path} (it was at {existing.cursor}).")
