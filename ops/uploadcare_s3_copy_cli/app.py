"""The `uploadcare-s3-copy` command line: argument parsing, dispatch, and one error line instead of a traceback."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO

from botocore.exceptions import BotoCoreError, ClientError

from uploadcare_s3_copy import __version__
from uploadcare_s3_copy.copy_request import is_file_uuid
from uploadcare_s3_copy.moments import parse_when
from uploadcare_s3_copy.reasons import CopyFailure
from uploadcare_s3_copy_cli import audit, backfill, copying, dlq, doctor, reconciling, webhooks
from uploadcare_s3_copy_cli.base import (
    EXIT_CODES_HELP,
    EXIT_INTERRUPTED,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    CliError,
)
from uploadcare_s3_copy_cli.context import AwsClients, Context, describe_aws_error, find_region
from uploadcare_s3_copy_cli.resources import SETTINGS, STACK_ENV, add_resource_options, describe_stack, resolve

PROG = "uploadcare-s3-copy"
DESCRIPTION = """Operations for an uploadcare-s3-copy stack: backfill older files, copy chosen files, audit and
reconcile against the copy ledger, check the set-up, register the Uploadcare webhook, read and redrive the
dead-letter queue.

Resources come from --stack NAME (the deployed stack's outputs and parameters, in the region of the usual AWS
configuration) or from the options and environment variables listed under each command's --help. AWS_ENDPOINT_URL
points every AWS call at a local server (the moto server of `make up`)."""

Command = Callable[[Context, argparse.Namespace], int]


def _uuid(text: str) -> str:
    """A file UUID as Uploadcare writes it; an upper-case one (copied from elsewhere) is lower-cased."""
    lowered = text.strip().lower()
    if not is_file_uuid(lowered):
        raise argparse.ArgumentTypeError(f"{text!r} is not a file UUID (8-4-4-4-12 hexadecimal digits)")
    return lowered


def _reason(text: str) -> str:
    if text not in dlq.REASONS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a failure reason; the reasons are {', '.join(dlq.REASONS)}")
    return text


def _start(text: str) -> datetime:
    try:
        return parse_when(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _end(text: str) -> datetime:
    try:
        return parse_when(text, end_of_day=True)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _page_size(text: str) -> int:
    value = _positive(text)
    if value > backfill.MAX_PAGE_SIZE:
        raise argparse.ArgumentTypeError(f"at most {backfill.MAX_PAGE_SIZE} files per page")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 5:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 5")
    return value


def _epilog(notes: str = "") -> str:
    return (notes.strip() + "\n\n" if notes else "") + EXIT_CODES_HELP


SPEC_HELP = "only this copy spec (repeat, or NAME,NAME; default: every spec)"

# The settings each command reads (resources.SETTINGS): its --help lists these and no others.
QUEUEING = ("secret_id", "api_url", "queue_url", "copy_specs")
COPYING = ("storage", "bucket", "prefix", "pattern", "make_public", "ledger_table")
USES: dict[str, tuple[str, ...]] = {
    "backfill": QUEUEING,
    "copy": (*QUEUEING, *COPYING),
    "audit": ("secret_id", "api_url", "ledger_table", "queue_url", "copy_specs", "skip_derived"),
    "reconcile": ("secret_id", "api_url", "ledger_table", "queue_url", "skip_derived"),
    "doctor": tuple(setting.name for setting in SETTINGS if setting.name not in ("ledger_table", "skip_derived")),
    "register": ("secret_id", "api_url", "webhook_url"),
    "list": ("dlq_url",),
    "redrive": ("dlq_url", "queue_url"),
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; an option with a default value says it (a flag's or None default says nothing)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS) and action.option_strings
        if shown and "%(default)" not in text and "default" not in text:
            text += " (default %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - one statement per option reads best
    formatter = HelpFormatter
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=_epilog(), formatter_class=formatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(
        group: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        handler: Command,
        summary: str,
        notes: str,
    ) -> argparse.ArgumentParser:
        sub = group.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=_epilog(notes),
            formatter_class=formatter,
        )
        add_resource_options(sub, USES[name])
        sub.set_defaults(handler=handler)
        return sub

    fill = command(
        commands,
        "backfill",
        backfill.command,
        "queue a copy request for every file uploaded since a date (origin backfill)",
        f"""Pages through GET /files/ in upload order, {backfill.DEFAULT_PAGE_SIZE} files a page, and queues one copy
request per file, ten per SendMessageBatch; removed files and files uploaded after --to are skipped. A progress
line goes to stderr. After every page the next page's cursor is saved in the state file (default
$XDG_CACHE_HOME or ~/.cache, then uploadcare-s3-copy/backfill-<stack, or a hash of the queue URL>.json): after an
interruption (Ctrl-C, a network failure, --max-pages) `backfill --resume` continues from there. A 429 waits
Retry-After and asks for the same page again. Files queued twice (the page in flight when interrupted) cost
nothing: the copier's idempotency skips a finished copy.

needs: --secret-id and --queue-url (or --stack); --dry-run needs only --secret-id""",
    )
    fill.add_argument("--from", dest="from_", metavar="DATE", type=_start, help="first upload time (ISO date/time)")
    fill.add_argument(
        "--to", metavar="DATE", type=_end, help="last upload time; a bare date includes that whole day (UTC)"
    )
    fill.add_argument("--stored-only", action="store_true", help="only files that are stored (not temporary)")
    fill.add_argument("--dry-run", action="store_true", help="count what would be queued; queue nothing, save nothing")
    fill.add_argument("--resume", action="store_true", help="continue the backfill saved in the state file")
    fill.add_argument("--state-file", type=Path, metavar="PATH", help="where the cursor is saved (see below)")
    fill.add_argument(
        "--page-size",
        type=_page_size,
        metavar="N",
        help=f"files per GET /files/ (default {backfill.DEFAULT_PAGE_SIZE}; a resumed backfill keeps its own)",
    )
    fill.add_argument("--max-pages", type=_positive, metavar="N", help="stop after N pages (resume later)")
    fill.add_argument("--spec", action="append", metavar="NAME", help=SPEC_HELP)

    copy = command(
        commands,
        "copy",
        copying.command,
        "copy chosen files now: queue them for the copier, or copy and verify them right here with --direct",
        """Each UUID's file info comes from GET /files/<uuid>/. Without --direct, one copy request per file
(origin manual) goes on the copy queue. With --direct, this machine calls POST /files/remote_copy/ and proves
the copy with head_object exactly as the copier does, printing the key, the size and the outcome, and writes the
proof to the copy ledger (with --ledger-table or --stack); a file the ledger already proves is skipped unless
--force. It does not use the queue or the idempotency table.

With --spec, only those copy specs (queued requests name them in `specs`).

needs: --secret-id and --queue-url; with --direct --secret-id and --copy-specs, or --bucket and --storage
(--prefix, --pattern and --make-public as deployed) — or --stack""",
    )
    copy.add_argument("uuids", nargs="+", type=_uuid, metavar="UUID", help="file UUIDs")
    copy.add_argument("--direct", action="store_true", help="copy and verify here instead of queueing")
    copy.add_argument("--force", action="store_true", help="with --direct: copy even a file the ledger already proves")
    copy.add_argument("--spec", action="append", metavar="NAME", help=SPEC_HELP)
    copy.add_argument(
        "--timeout",
        type=_seconds,
        default=copying.DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="per file, with --direct (default %(default)s)",
    )

    inspect = command(
        commands,
        "audit",
        audit.command,
        'answer "N of M files verified": Uploadcare\'s file list against the copy ledger',
        f"""Pages GET /files/ over the window ({audit.PAGE_SIZE} files a page; removed files are not listed) and looks
every (file, copy spec) up in the ledger. A pair is verified, missing (no proof in the ledger) or dead-lettered
(with its reason). --check-objects also asks S3 for every verified object (head_object, {audit.HEAD_CONCURRENCY}
at once): gone, another size or another ETag is mismatched. --deep N streams N sampled originals from the CDN and
the bucket and compares their SHA-256. Without --to, files of the last
{audit.GRACE_SECONDS // 60} minutes are left out (still the webhook's). Exits 0 when every pair is
verified, 1 when any is missing, mismatched or dead-lettered.

needs: --secret-id and --ledger-table (and --queue-url for --requeue), or --stack""",
    )
    inspect.add_argument("--from", dest="from_", metavar="DATE", type=_start, help="first upload time (ISO date/time)")
    inspect.add_argument("--to", metavar="DATE", type=_end, help="last upload time (default: 15 minutes ago)")
    inspect.add_argument("--spec", action="append", metavar="NAME", help=SPEC_HELP)
    inspect.add_argument("--check-objects", action="store_true", help="head_object every verified copy")
    inspect.add_argument("--deep", type=_positive, metavar="N", help="compare the SHA-256 of N sampled files")
    inspect.add_argument("--requeue", action="store_true", help="queue copy requests for what is missing")
    inspect.add_argument("--json", action="store_true", help="print the result as JSON (no table, no progress)")
    inspect.add_argument("--report", type=Path, metavar="PATH", help="write every (file, spec) row as CSV")

    heal = command(
        commands,
        "reconcile",
        reconciling.command,
        "run the reconciler here: queue a copy request for every file the ledger does not prove",
        """Without options: the scheduled run, from the stack's saved watermark (or unfinished cursor), moving it
on as the reconciler function does. --from/--to check that window and --full every file; they save nothing.
Verified and dead-lettered files are not queued. Exits 0 when the run covered its whole window.

needs: --secret-id, --ledger-table and --queue-url (or --stack)""",
    )
    heal.add_argument("--from", dest="from_", metavar="DATE", type=_start, help="first upload time (ISO date/time)")
    heal.add_argument("--to", metavar="DATE", type=_end, help="last upload time (default: 15 minutes ago)")
    heal.add_argument("--full", action="store_true", help="every file, whenever it was uploaded")
    heal.add_argument("--json", action="store_true", help="print the summary as JSON")

    check = command(
        commands,
        "doctor",
        doctor.command,
        "check that the stack can copy: secret, keys, webhook, bucket, queues, table",
        """Each check prints ✓ or ✗ (· when it could not run because an earlier one failed); each ✗ is followed by
a one-line fix. A dead-letter queue that is not empty is a ✗. --test-copy copies one file for real and proves it
with head_object.""",
    )
    check.add_argument("--test-copy", type=_uuid, metavar="UUID", help="also copy this file and verify it")

    hook = commands.add_parser(
        "webhook", help="the Uploadcare webhook of this stack", description="The Uploadcare webhook of this stack."
    )
    hook_commands = hook.add_subparsers(dest="webhook_command", metavar="ACTION", required=True)
    register = command(
        hook_commands,
        "register",
        webhooks.command,
        "subscribe the stack's WebhookUrl to file.uploaded (and --events) in Uploadcare (version 0.7, active, signed)",
        f"""When the secret has no {webhooks.SIGNING_SECRET_FIELD}, a random one of {webhooks.MAX_SIGNING_SECRET_CHARS}
characters is generated and stored in Secrets Manager first, then given to Uploadcare, so the webhook function can
check every signature it will receive. An existing webhook for the URL and event is reported, never duplicated; one
that is inactive, of another version or signed with another secret is a ✗ with the fix. The secret is never
printed. OnSourceDelete tag or delete needs file.deleted too: --events file.uploaded,file.deleted.

needs: --secret-id and --webhook-url (or --stack)""",
    )
    register.add_argument(
        "--events",
        type=webhooks.parse_events,
        default=(webhooks.EVENT,),
        metavar="EVENT,EVENT",
        help=f"the events to subscribe to, of {', '.join(webhooks.EVENTS)} (default {webhooks.EVENT})",
    )

    queue = commands.add_parser(
        "dlq", help="read or redrive the dead-letter queue", description="Read or redrive the dead-letter queue."
    )
    queue_commands = queue.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)
    peek = command(
        queue_commands,
        "list",
        dlq.list_command,
        "show the dead-letter queue grouped by failure reason, with examples, without consuming it",
        f"""Messages are received with a {dlq.PEEK_VISIBILITY_SECONDS} s visibility timeout and made visible again
at once. Reasons are the copier's (docs/design.md, Failure reasons); `{dlq.NO_REASON}` means SQS moved the message after
maxReceiveCount transient failures. Exits 1 when the queue holds messages.

needs: --dlq-url (or --stack)""",
    )
    peek.add_argument(
        "--max", type=_positive, default=dlq.DEFAULT_LIST_MAX, metavar="N", help="read at most N messages"
    )
    peek.add_argument(
        "--examples", type=_positive, default=dlq.DEFAULT_EXAMPLES, metavar="N", help="examples per reason"
    )
    move = command(
        queue_commands,
        "redrive",
        dlq.redrive_command,
        "move dead-lettered copy requests back to the copy queue, with their original body",
        """Each message is sent to the copy queue first and deleted from the dead-letter queue only after that
send succeeded. Others are made visible again. Fix the cause first (e.g. redeploy with the right storage name),
else the copier dead-letters them again.

needs: --dlq-url and --queue-url (or --stack)""",
    )
    move.add_argument(
        "--reason",
        action="append",
        type=_reason,
        metavar="REASON",
        help=f"only this reason (repeatable; `{dlq.NO_REASON}`: moved by SQS itself)",
    )
    move.add_argument("--max", type=_positive, metavar="N", help="move at most N messages")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    aws: AwsClients | None = None,
) -> int:
    """Runs one command; returns its exit code (0 ok, 1 problems found or a failure, 2 usage, 130 interrupted)."""
    environ = os.environ if environ is None else environ
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exited:  # --help, --version, or a usage error argparse has already explained
        return exited.code if isinstance(exited.code, int) else EXIT_USAGE
    if aws is None:
        try:
            region, region_source = find_region(environ)
        except CliError as error:
            print(f"error: {error}", file=err)
            return error.exit_code
        aws = AwsClients(region=region, region_source=region_source)
    ctx: Context | None = None
    try:
        options = {setting.name: getattr(args, setting.name, None) for setting in SETTINGS}
        options["stack"] = args.stack
        resources = resolve(options, environ, lambda name: describe_stack(aws("cloudformation"), name))
        handler: Command = args.handler
        ctx = Context(resources, aws, environ, out, err, sleep, clock)
        return handler(ctx, args)
    except CliError as error:
        print(f"error: {error}", file=err)
        return error.exit_code
    except CopyFailure as failure:
        problem = ctx.uploadcare_problem(failure) if ctx else f"{failure.reason}: {failure.detail}"
        print(f"error: Uploadcare: {problem}", file=err)
        return EXIT_PROBLEMS
    except (ClientError, BotoCoreError) as error:
        problem = describe_aws_error(error, environ, aws)
        print(f"error: AWS: {problem}", file=err)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return EXIT_INTERRUPTED


__all__ = ["STACK_ENV", "build_parser", "main"]
