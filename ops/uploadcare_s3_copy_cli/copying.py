"""`copy`: copy chosen files now. Queued for the copier (`origin: "manual"`), or with `--direct` copied and proved
right here by the copier's own `CopyService.copy_and_verify` (remote_copy, then head_object), the proof then written
to the copy ledger as the copier writes it. A file the ledger already proves is not copied again (the copier would
not either) unless `--direct --force` asks for it."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from uploadcare_s3_copy.copier.outcomes import Verified
from uploadcare_s3_copy.copier.rules import Deadline
from uploadcare_s3_copy.copier.service import CopyService
from uploadcare_s3_copy.copy_request import CopyRequest, now_iso
from uploadcare_s3_copy.ledger import Ledger, LedgerItem, LedgerStatus, LedgerUnavailableError
from uploadcare_s3_copy.observability import logger
from uploadcare_s3_copy.reasons import CopyFailure
from uploadcare_s3_copy.secrets import KeyStore, UploadcareKeys
from uploadcare_s3_copy.specs import CopySpec
from uploadcare_s3_copy.uploadcare import Credentials, UploadcareClient
from uploadcare_s3_copy_cli.base import EXIT_OK, EXIT_PROBLEMS, MARK_FAIL, MARK_OK, MARK_SKIPPED, UsageError, plural
from uploadcare_s3_copy_cli.context import API_KEY_FIELDS, Context

MANUAL_EVENT = "file.uploaded"
DEFAULT_TIMEOUT_SECONDS = 300.0  # per file, like the copier's default function timeout


def copy_service(ctx: Context) -> CopyService:
    """The copier's own CopyService, on the CLI's clients."""
    api_url = ctx.resources.api_url

    def client_factory(keys: UploadcareKeys) -> UploadcareClient:
        return UploadcareClient(Credentials(keys.public_key, keys.secret_key), api_url)

    key_store = KeyStore(
        str(ctx.resources.secret_id),
        required=API_KEY_FIELDS,
        fetch=lambda _secret_id, force: ctx.secret_value(fresh=force),
    )
    return CopyService(s3=ctx.aws("s3"), key_store=key_store, client_factory=client_factory, sleep=ctx.sleep)


@contextlib.contextmanager
def logs_to(ctx: Context) -> Iterator[None]:
    """The copy service's Powertools log lines (a throttle wait, a re-read secret) go to stderr, not stdout."""
    handler = logger.registered_handler
    previous = handler.setStream(ctx.err)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]


def describe(verified: Verified) -> str:
    return f"s3://{verified.bucket}/{verified.key}  {plural(verified.size, 'byte')}  {verified.status}, verified"


def command(ctx: Context, args: argparse.Namespace) -> int:
    resources = ctx.resources
    if args.force and not args.direct:
        raise UsageError(
            "--force needs --direct: a queued request for a file the ledger proves is settled by the copier without "
            "a copy (and a recent one by its idempotency record); --direct --force copies it again here"
        )
    if args.direct:
        resources.require("copy --direct", "secret_id")
        resources.require_spec_targets("copy --direct")
    else:
        resources.require("copy", "secret_id", "queue_url")
    specs = resources.select_specs(args.spec)
    client = ctx.uploadcare()
    # Each file once, reported in the order given: a file Uploadcare cannot describe keeps its place in the output.
    found: list[CopyRequest | str] = []  # a request, or the line that says why there is none
    for uuid in dict.fromkeys(args.uuids):
        try:
            info = client.get_file(uuid)
        except CopyFailure as failure:
            found.append(f"{MARK_FAIL} {uuid}  {ctx.uploadcare_problem(failure)}")
            continue
        if info.get("datetime_removed"):
            found.append(f"{MARK_FAIL} {uuid}  removed from Uploadcare at {info['datetime_removed']}; nothing to copy")
            continue
        request = CopyRequest.from_file_info(info, event=MANUAL_EVENT, origin="manual")
        found.append(request.for_specs(tuple(spec.name for spec in specs)) if args.spec else request)
    failed = sum(isinstance(entry, str) for entry in found)
    if args.direct:
        failed += _copy_directly(ctx, found, specs, args.timeout, force=args.force)
        return EXIT_PROBLEMS if failed else EXIT_OK
    requests = [entry for entry in found if isinstance(entry, CopyRequest)]
    if requests:
        ctx.copy_queue().send_all([request.to_message() for request in requests])
    for entry in found:
        if isinstance(entry, str):
            ctx.say(entry)
            continue
        which = f", copy specs {', '.join(entry.specs)}" if entry.specs else ""
        size = plural(entry.size, "byte")
        ctx.say(f"{MARK_OK} {entry.uuid}  queued ({entry.original_filename}, {size}{which})")
    return EXIT_PROBLEMS if failed else EXIT_OK


def _copy_directly(
    ctx: Context, found: list[CopyRequest | str], specs: tuple[CopySpec, ...], timeout: float, *, force: bool
) -> int:
    """Each (file, spec), in the order given (a file without a request: its line); a spec's line names it when the
    deployment has several. Returns how many copies failed."""
    service = copy_service(ctx)
    keys = ctx.keys()
    named = len(ctx.resources.specs) > 1
    ledger = Ledger(ctx.aws("dynamodb"), ctx.resources.ledger_table) if ctx.resources.ledger_table else None
    if ledger is None:
        ctx.note("No --ledger-table (or --stack): the copies are proved here but not recorded in the copy ledger.")
    failed = 0
    with logs_to(ctx):
        for request in found:
            if isinstance(request, str):
                ctx.say(request)
                continue
            for spec in specs:
                label = f"{request.uuid} {spec.name}" if named else request.uuid
                if not spec.applies_to(request.mime_type):
                    ctx.say(f"{MARK_SKIPPED} {label}  {request.mime_type} is not a type copy spec {spec.name} copies")
                    continue
                proven = _proof(ledger, request.uuid, spec.name) if not force else None
                if proven is not None and not proven.verified:
                    ctx.say(f"{MARK_SKIPPED} {label}  not copied: the ledger says {proven.why}; --force copies anyway")
                    continue
                if proven is not None:
                    where = f"s3://{proven.bucket}/{proven.key} ({proven.verified_at})"
                    ctx.say(f"{MARK_SKIPPED} {label}  already verified at {where}; --force copies again")
                    continue
                try:
                    verified = service.copy_and_verify(request, spec, keys, Deadline(timeout))
                except CopyFailure as failure:
                    ctx.say(f"{MARK_FAIL} {label}  {ctx.uploadcare_problem(failure)}")
                    failed += 1
                    continue
                recorded = _record(ctx, ledger, request, spec.name, verified)
                ctx.say(f"{MARK_OK} {label}  {describe(verified)}{recorded}")
                failed += recorded.endswith("NOT recorded")
    return failed


def _proof(ledger: Ledger | None, uuid: str, spec: str) -> LedgerItem | None:
    if ledger is None:
        return None
    try:
        item = ledger.get(uuid, spec)
    except LedgerUnavailableError:
        return None  # then the copy is made; its write will say whether the ledger works
    # a proof, or a flag that the source was deleted or found infected (the copier would not copy it either)
    return item if item is not None and item.settled else None


def _record(ctx: Context, ledger: Ledger | None, request: CopyRequest, spec: str, verified: Verified) -> str:
    """The proof into the ledger, as the copier writes it; what to add to the line."""
    if ledger is None:
        return ""
    now = now_iso()
    item = LedgerItem(
        uuid=request.uuid,
        spec=spec,
        status=LedgerStatus.VERIFIED,
        updated_at=now,
        bucket=verified.bucket,
        key=verified.key,
        size=verified.size,
        etag=verified.etag,
        checksum=verified.checksum,
        verified_at=now,
        origin=request.origin,
        uploaded_at=request.uploaded_at,
    )
    try:
        ledger.put(item)
    except LedgerUnavailableError as error:
        ctx.note(f"{request.uuid}: the ledger write failed ({error})")
        return ", proof NOT recorded"
    return ", in the ledger"
