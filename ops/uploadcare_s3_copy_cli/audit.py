"""`audit`: "N of M files verified", from Uploadcare's file list and the copy ledger (docs/design.md, "Audit").

Pages `GET /files/` (not removed files, in upload order) over the window and looks every (file, spec) up in the
ledger, 100 keys a BatchGetItem. A pair is `verified` (a verified ledger item), `dead_lettered` (parked, with its
reason) or `missing` (no item, or one that proves nothing). `--check-objects` also asks S3 for every verified
item's object (head_object, a bounded number at once on one shared client): gone, another size or another ETag make
the pair `mismatched`. `--deep N` streams N sampled verified files from the CDN and from the bucket and compares
their SHA-256: proof of the content, not only of its presence.

Exit codes: 0 every pair in the window verified, 1 any missing, mismatched or dead-lettered, 2 usage error.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import urllib3
from botocore.exceptions import BotoCoreError, ClientError
from rich.table import Table

from uploadcare_s3_copy.copy_request import CopyRequest, has_file_identity
from uploadcare_s3_copy.ledger import DEFAULT_SPEC, Ledger, LedgerItem, LedgerStatus
from uploadcare_s3_copy.moments import iso_z, uploaded_at
from uploadcare_s3_copy.reconciler.settings import DEFAULT_GRACE_SECONDS
from uploadcare_s3_copy.specs import CopySpec
from uploadcare_s3_copy.uploadcare import files_cursor
from uploadcare_s3_copy.webhook.rules import derived_from
from uploadcare_s3_copy_cli.backfill import PageSource, fetch_page
from uploadcare_s3_copy_cli.base import EXIT_OK, EXIT_PROBLEMS, UsageError, plural
from uploadcare_s3_copy_cli.context import Context
from uploadcare_s3_copy_cli.display import on_terminal, show_table, status_display

GRACE_SECONDS = DEFAULT_GRACE_SECONDS  # without --to, younger files are left out (still the webhook's)
PAGE_SIZE = 1000  # Uploadcare's largest page: ten BatchGetItem calls a page
HEAD_CONCURRENCY = 10  # head_object calls in flight (the CLI's S3 client keeps ten connections)
DEEP_CHUNK_BYTES = 1024 * 1024
DEEP_TIMEOUT = urllib3.Timeout(connect=10.0, read=60.0)


class Status:
    VERIFIED = "verified"
    MISSING = "missing"
    MISMATCHED = "mismatched"
    DEAD_LETTERED = "dead_lettered"
    INFECTED = "infected"  # flagged infected at the source: its copy tagged uploadcare-infected, or never made


_SETTLED = (Status.VERIFIED, Status.INFECTED)  # no problem to report


@dataclass
class Row:
    """One (file, spec) of the window and what the ledger (and S3, when asked) say about it."""

    uuid: str
    spec: str
    status: str
    detail: str = ""
    uploaded_at: str = ""
    item: LedgerItem | None = None
    info: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def csv_row(self) -> dict[str, str]:
        item = self.item
        return {
            "uuid": self.uuid,
            "spec": self.spec,
            "status": self.status,
            "detail": self.detail,
            "uploaded_at": self.uploaded_at,
            "bucket": item.bucket if item else "",
            "key": item.key if item else "",
            "size": "" if item is None or item.size is None else str(item.size),
            "etag": item.etag if item else "",
            "verified_at": item.verified_at if item else "",
        }


CSV_FIELDS = ("uuid", "spec", "status", "detail", "uploaded_at", "bucket", "key", "size", "etag", "verified_at")


@dataclass
class AuditResult:
    lower: datetime | None
    upper: datetime
    specs: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)
    skipped: int = 0
    objects_checked: int = 0
    deep_checked: int = 0

    @property
    def files(self) -> int:
        return len({row.uuid for row in self.rows})

    @property
    def verified_files(self) -> int:
        failing = {row.uuid for row in self.rows if row.status != Status.VERIFIED}
        return len({row.uuid for row in self.rows} - failing)

    def with_status(self, status: str) -> list[Row]:
        return [row for row in self.rows if row.status == status]

    @property
    def infected_files(self) -> int:
        return len({row.uuid for row in self.with_status(Status.INFECTED)})

    @property
    def complete(self) -> bool:
        return all(row.status in _SETTLED for row in self.rows)

    def as_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "specs": list(self.specs),
            "verified": self.verified_files,
            "missing": [{"uuid": r.uuid, "spec": r.spec} for r in self.with_status(Status.MISSING)],
            "mismatched": [
                {"uuid": r.uuid, "spec": r.spec, "problem": r.detail} for r in self.with_status(Status.MISMATCHED)
            ],
            "dead_lettered": [
                {"uuid": r.uuid, "spec": r.spec, "reason": r.detail} for r in self.with_status(Status.DEAD_LETTERED)
            ],
            "infected": [{"uuid": r.uuid, "spec": r.spec} for r in self.with_status(Status.INFECTED)],
            "from": iso_z(self.lower) if self.lower else None,
            "to": iso_z(self.upper),
            "skipped": self.skipped,
            "objects_checked": self.objects_checked,
            "deep_checked": self.deep_checked,
        }

    def summary_line(self) -> str:
        infected = self.infected_files
        flagged = f", {infected:,} flagged infected at Uploadcare (tagged, or never copied)" if infected else ""
        return f"{self.verified_files:,} of {plural(self.files, 'file')} verified{flagged}"


@dataclass
class Audit:
    source: PageSource
    ledger: Ledger
    specs: tuple[CopySpec, ...]
    warn: Callable[[str], None]
    sleep: Callable[[float], None]
    skip_derived: bool = False
    tick: Callable[[int], None] = lambda _count: None  # files listed so far, for the progress display

    def run(self, lower: datetime | None, upper: datetime) -> AuditResult:
        result = AuditResult(lower, upper, tuple(spec.name for spec in self.specs))
        cursor: str | None = files_cursor(from_datetime=iso_z(lower) if lower else None, limit=PAGE_SIZE)
        seen: set[str] = set()
        while cursor is not None:
            page = fetch_page(self.source, cursor, warn=self.warn, sleep=self.sleep)
            files: list[Mapping[str, Any]] = []
            beyond = False
            for info in page.files:
                moment = uploaded_at(info)
                if moment is not None and moment > upper:
                    beyond = True
                    break
                uuid = info.get("uuid")
                if not has_file_identity(info):
                    result.skipped += 1
                    continue
                if uuid in seen:  # listed twice at a page boundary
                    continue
                seen.add(str(uuid))
                if info.get("datetime_removed") or (self.skip_derived and derived_from(info)):
                    result.skipped += 1
                    continue
                files.append(info)
            result.rows.extend(self._rows(files))
            self.tick(len(seen))
            cursor = None if beyond else page.next_url
        return result

    def _rows(self, files: list[Mapping[str, Any]]) -> Iterator[Row]:
        """A row per (file, spec) the spec copies: a file of a type a spec skips (its `mime_types`) is no row."""
        wanted = [
            (str(info["uuid"]), spec.name)
            for info in files
            for spec in self.specs
            if spec.applies_to(str(info.get("mime_type") or ""))
        ]
        view = self.ledger.get_all(wanted)
        pairs = set(wanted)
        for info in files:
            uuid = str(info["uuid"])
            uploaded = str(info.get("datetime_uploaded") or "")
            for spec in (spec.name for spec in self.specs if (uuid, spec.name) in pairs):
                item = view.items.get((uuid, spec))
                if item is not None and item.infected:
                    yield Row(uuid, spec, Status.INFECTED, item.why, uploaded, item, info)
                elif item is not None and item.verified:
                    yield Row(uuid, spec, Status.VERIFIED, uploaded_at=uploaded, item=item, info=info)
                elif item is not None and item.status is LedgerStatus.DEAD_LETTERED:
                    yield Row(uuid, spec, Status.DEAD_LETTERED, item.reason, uploaded, item, info)
                else:
                    detail = "no ledger item" if item is None else f"ledger status {item.status}"
                    yield Row(uuid, spec, Status.MISSING, detail, uploaded, item, info)


# --- S3 checks ------------------------------------------------------------------------------------------------


def object_problem(s3: Any, item: LedgerItem) -> str | None:
    """What is wrong with a verified item's object now, or None when it is as the ledger says."""
    where = f"s3://{item.bucket}/{item.key}"
    try:
        head = s3.head_object(Bucket=item.bucket, Key=item.key)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            return f"object missing: {where}"
        return f"head_object {where} failed: {code or error}"
    except BotoCoreError as error:
        return f"head_object {where} failed: {type(error).__name__}"
    size = int(head.get("ContentLength", -1))
    if item.size is not None and size != item.size:
        return f"{where} is {plural(size, 'byte')}, the ledger says {item.size:,}"
    etag = str(head.get("ETag", "")).strip('"')
    if item.etag and etag != item.etag:
        return f"{where} has ETag {etag}, the ledger says {item.etag}"
    return None


def check_objects(
    s3: Any, rows: Sequence[Row], *, concurrency: int = HEAD_CONCURRENCY, tick: Callable[[], None] = lambda: None
) -> int:
    """head_object for every verified row, `concurrency` at once on the one client; a problem marks the row
    mismatched. Returns how many objects were asked for."""
    verified = [row for row in rows if row.status == Status.VERIFIED and row.item is not None]

    def check(row: Row) -> tuple[Row, str | None]:
        assert row.item is not None
        return row, object_problem(s3, row.item)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for row, problem in pool.map(check, verified):
            tick()
            if problem is not None:
                row.status, row.detail = Status.MISMATCHED, problem
    return len(verified)


def _sha256_of(chunks: Iterator[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def content_problem(s3: Any, http: urllib3.PoolManager, row: Row) -> str | None:
    """Streams the original from the CDN and the copy from S3 and compares their SHA-256 (the spec `original`)."""
    assert row.item is not None
    url = str(row.info.get("original_file_url") or "")
    if not url:
        return "the file has no original_file_url to compare with"
    try:
        response = http.request("GET", url, preload_content=False, timeout=DEEP_TIMEOUT, retries=False)
    except urllib3.exceptions.HTTPError as error:
        return f"GET {url} failed: {type(error).__name__}"
    try:
        if response.status != 200:
            return f"GET {url} answered HTTP {response.status}"
        source, source_size = _sha256_of(response.stream(DEEP_CHUNK_BYTES))
    finally:
        response.release_conn()
    try:
        body = s3.get_object(Bucket=row.item.bucket, Key=row.item.key)["Body"]
        copy, copy_size = _sha256_of(iter(lambda: body.read(DEEP_CHUNK_BYTES), b""))
    except (ClientError, BotoCoreError) as error:
        return f"get_object s3://{row.item.bucket}/{row.item.key} failed: {error}"
    if copy != source:
        return (
            f"content differs: the CDN's {source_size:,} bytes have SHA-256 {source[:16]}…, "
            f"the copy's {copy_size:,} bytes {copy[:16]}…"
        )
    return None


def check_content(
    s3: Any, rows: Sequence[Row], sample: int, rng: random.Random, originals: Collection[str] = (DEFAULT_SPEC,)
) -> int:
    """SHA-256 of `sample` randomly chosen verified originals (rows of the `originals` specs, which copy the file
    unprocessed), CDN against bucket; a difference marks the row."""
    candidates = [row for row in rows if row.status == Status.VERIFIED and row.spec in originals and row.item]
    chosen = rng.sample(candidates, min(sample, len(candidates)))
    http = urllib3.PoolManager(maxsize=4)
    for row in chosen:
        problem = content_problem(s3, http, row)
        if problem is not None:
            row.status, row.detail = Status.MISMATCHED, problem
    return len(chosen)


# --- output ---------------------------------------------------------------------------------------------------


def write_report(path: Path, rows: Sequence[Row]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row.csv_row())


def summary_table(result: AuditResult) -> Table:
    window = f"{iso_z(result.lower) if result.lower else 'the first'} to {iso_z(result.upper)}"
    table = Table(title=f"Uploads from {window}", title_justify="left")
    table.add_column("spec")
    statuses = _STATUSES if result.infected_files else _STATUSES[:-1]  # the infected column only when there are
    for name in ("files", *(status.replace("_", "-") for status in statuses)):
        table.add_column(name, justify="right")
    for spec in result.specs:
        rows = [row for row in result.rows if row.spec == spec]
        counts = [sum(1 for row in rows if row.status == status) for status in statuses]
        table.add_row(spec, f"{len(rows):,}", *(f"{count:,}" for count in counts))
    return table


_STATUSES = (Status.VERIFIED, Status.MISSING, Status.MISMATCHED, Status.DEAD_LETTERED, Status.INFECTED)
MAX_LISTED = 20  # problem rows printed under the table (all of them are in --json and --report)


@contextmanager
def progress_display(ctx: Context, enabled: bool) -> Iterator[Callable[[str, int | None], None]]:
    """A progress line on stderr when it is a terminal: `update(label, count)`. Elsewhere nothing is drawn."""
    if not enabled or not on_terminal(ctx.err):
        yield lambda _label, _count: None
        return
    with status_display(ctx.err, transient=True) as progress:
        task = progress.add_task("listing files", total=None)

        def update(label: str, count: int | None) -> None:
            text = label if count is None else f"{label}: {count:,}"
            progress.update(task, description=text)

        yield update


# --- the command ----------------------------------------------------------------------------------------------


def command(ctx: Context, args: argparse.Namespace) -> int:
    needed = ["secret_id", "ledger_table", *(["queue_url"] if args.requeue else [])]
    ctx.resources.require("audit", *needed)
    specs = ctx.resources.select_specs(args.spec)
    upper: datetime = args.to or datetime.now(UTC) - timedelta(seconds=GRACE_SECONDS)
    if args.from_ is not None and upper < args.from_:
        raise UsageError("--to is before --from")
    if args.deep is not None and args.deep < 1:
        raise UsageError("--deep takes a number of files of at least 1")
    ledger = Ledger(ctx.aws("dynamodb"), str(ctx.resources.ledger_table))
    with progress_display(ctx, not args.json) as update:
        audit = Audit(
            source=ctx.uploadcare(),
            ledger=ledger,
            specs=specs,
            warn=ctx.note,
            sleep=ctx.sleep,
            skip_derived=ctx.resources.skip_derived,
            tick=lambda count: update("files listed", count),
        )
        result = audit.run(args.from_, upper)
        if args.check_objects:
            done = [0]

            def ticked() -> None:
                done[0] += 1
                update("objects checked", done[0])

            result.objects_checked = check_objects(ctx.aws("s3"), result.rows, tick=ticked)
        if args.deep:
            update("comparing content", None)
            originals = {spec.name for spec in specs if not spec.processed}
            rng = random.Random()  # noqa: S311 - a sample to check, not a secret
            result.deep_checked = check_content(ctx.aws("s3"), result.rows, args.deep, rng, originals)
    requeued = _requeue(ctx, result) if args.requeue else 0
    if args.report is not None:
        write_report(args.report, result.rows)
    if args.json:
        ctx.say(json.dumps({**result.as_json(), **({"requeued": requeued} if args.requeue else {})}, indent=2))
    else:
        _print(ctx, result, args.report, requeued if args.requeue else None)
    return EXIT_OK if result.complete else EXIT_PROBLEMS


def _requeue(ctx: Context, result: AuditResult) -> int:
    """A copy request (origin reconcile) per file with missing specs, for those specs only."""
    missing: dict[str, list[Row]] = {}
    for row in result.with_status(Status.MISSING):
        missing.setdefault(row.uuid, []).append(row)
    bodies = []
    for rows in missing.values():
        request = CopyRequest.from_file_info(dict(rows[0].info), event="file.uploaded", origin="reconcile")
        bodies.append(request.for_specs(tuple(row.spec for row in rows)).to_message())
    return ctx.copy_queue().send_all(bodies) if bodies else 0


def _print(ctx: Context, result: AuditResult, report: Path | None, requeued: int | None) -> None:
    show_table(ctx.out, summary_table(result))
    problems = [row for row in result.rows if row.status not in _SETTLED]
    for row in problems[:MAX_LISTED]:
        ctx.say(f"  {row.status:<13} {row.uuid} {row.spec}: {row.detail}")
    if len(problems) > MAX_LISTED:
        ctx.say(f"  … and {len(problems) - MAX_LISTED:,} more (see --json or --report)")
    extras = []
    if result.objects_checked:
        extras.append(f"{plural(result.objects_checked, 'object')} checked with head_object")
    if result.deep_checked:
        extras.append(f"{result.deep_checked:,} compared by SHA-256")
    if result.skipped:
        extras.append(f"{result.skipped:,} skipped (removed, derived or malformed)")
    if extras:
        ctx.say("  " + "; ".join(extras))
    if requeued is not None:
        ctx.say(f"  {plural(requeued, 'copy request')} queued for what is missing")
    if report is not None:
        ctx.say(f"  rows written to {report}")
    ctx.say(result.summary_line())
