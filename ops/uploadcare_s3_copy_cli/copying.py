"""`copy`: copy chosen files now. Queued for the copier (`origin: "manual"`), or with `--direct` copied and proved
right here by the copier's own `CopyService.copy_and_verify` (remote_copy, then head_object)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from uploadcare_s3_copy.copier.outcomes import Verified
from uploadcare_s3_copy.copier.rules import Deadline
from uploadcare_s3_copy.copier.service import CopyService
from uploadcare_s3_copy.copier.settings import CopierSettings
from uploadcare_s3_copy.copy_request import CopyRequest
from uploadcare_s3_copy.observability import logger
from uploadcare_s3_copy.reasons import CopyFailure
from uploadcare_s3_copy.secrets import KeyStore, UploadcareKeys
from uploadcare_s3_copy.uploadcare import Credentials, UploadcareClient
from uploadcare_s3_copy_cli.base import EXIT_OK, EXIT_PROBLEMS, MARK_FAIL, MARK_OK
from uploadcare_s3_copy_cli.context import API_KEY_FIELDS, Context

MANUAL_EVENT = "file.uploaded"
DEFAULT_TIMEOUT_SECONDS = 300.0  # per file, like the copier's default function timeout


def copier_settings(ctx: Context) -> CopierSettings:
    """The copier's settings from the stack's resources (the queue and table are not used by a direct copy)."""
    r = ctx.resources
    return CopierSettings(
        secret_id=str(r.secret_id),
        dlq_url=r.dlq_url or "",
        idempotency_table=r.table or "",
        copy_target=str(r.storage),
        target_bucket=str(r.bucket),
        api_url=r.api_url,
        target_prefix=r.prefix,
        copy_pattern=r.pattern,
        make_public=r.make_public,
    )


def copy_service(ctx: Context, settings: CopierSettings) -> CopyService:
    def client_factory(keys: UploadcareKeys) -> UploadcareClient:
        return UploadcareClient(Credentials(keys.public_key, keys.secret_key), settings.api_url)

    key_store = KeyStore(
        settings.secret_id,
        required=API_KEY_FIELDS,
        fetch=lambda _secret_id, force: ctx.secret_value(fresh=force),
    )
    return CopyService(settings, s3=ctx.aws("s3"), key_store=key_store, client_factory=client_factory, sleep=ctx.sleep)


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
    return f"s3://{verified.bucket}/{verified.key}  {verified.size:,} bytes  {verified.status}, verified"


def command(ctx: Context, args: argparse.Namespace) -> int:
    resources = ctx.resources
    if args.direct:
        resources.require("copy --direct", "secret_id", "bucket", "storage")
    else:
        resources.require("copy", "secret_id", "queue_url")
    client = ctx.uploadcare()
    requests: list[CopyRequest] = []
    failed = 0
    for uuid in dict.fromkeys(args.uuids):  # each file once, in the order given
        try:
            info = client.get_file(uuid)
        except CopyFailure as failure:
            ctx.say(f"{MARK_FAIL} {uuid}  {failure.reason}: {failure.detail}")
            failed += 1
            continue
        if info.get("datetime_removed"):
            ctx.say(f"{MARK_FAIL} {uuid}  removed from Uploadcare at {info['datetime_removed']}; nothing to copy")
            failed += 1
            continue
        requests.append(CopyRequest.from_file_info(info, event=MANUAL_EVENT, origin="manual"))

    if args.direct:
        failed += _copy_directly(ctx, requests, args.timeout)
    elif requests:
        ctx.copy_queue().send_all([request.to_message() for request in requests])
        for request in requests:
            ctx.say(f"{MARK_OK} {request.uuid}  queued ({request.original_filename}, {request.size:,} bytes)")
    return EXIT_PROBLEMS if failed else EXIT_OK


def _copy_directly(ctx: Context, requests: list[CopyRequest], timeout: float) -> int:
    settings = copier_settings(ctx)
    service = copy_service(ctx, settings)
    keys = ctx.keys()
    failed = 0
    with logs_to(ctx):
        for request in requests:
            try:
                verified = service.copy_and_verify(request, keys, Deadline(timeout))
            except CopyFailure as failure:
                ctx.say(f"{MARK_FAIL} {request.uuid}  {failure.reason}: {failure.detail}")
                failed += 1
                continue
            ctx.say(f"{MARK_OK} {request.uuid}  {describe(verified)}")
    return failed
