"""`reconcile`: the reconciler function's run, from this machine (uploadcare_s3_copy/reconciler/).

Without options it is the scheduled run: from the saved watermark (or cursor) of the stack's reconciler, moving it
on as the function would. `--from`/`--to` check one window and `--full` every file; those save nothing. It prints
the run's summary (`--json`: as the function returns it) and exits 0 when the run covered its whole window.
"""

from __future__ import annotations

import argparse
import json
import math

from rich.table import Table

from uploadcare_s3_copy.ledger import Ledger
from uploadcare_s3_copy.queueing import BatchSender
from uploadcare_s3_copy.reconciler import Reconciler, ReconcilerSettings, RunKind, RunRequest, Summary
from uploadcare_s3_copy.reconciler.state import StateStore
from uploadcare_s3_copy_cli.base import EXIT_OK, EXIT_PROBLEMS, UsageError, plural
from uploadcare_s3_copy_cli.context import Context
from uploadcare_s3_copy_cli.display import show_table

COLUMNS = ("checked", "verified", "queued", "dead_lettered", "skipped", "stale")


def run_request(args: argparse.Namespace) -> RunRequest:
    if args.full and args.from_ is not None:
        raise UsageError("--full checks every file: it takes no --from")
    if args.from_ is not None and args.to is not None and args.to < args.from_:
        raise UsageError("--to is before --from")
    if args.full:
        return RunRequest(RunKind.FULL, upper=args.to)
    if args.from_ is not None:
        return RunRequest(RunKind.WINDOW, lower=args.from_, upper=args.to)
    if args.to is not None:
        raise UsageError("--to needs --from (or --full)")
    return RunRequest(RunKind.SCHEDULED)


def command(ctx: Context, args: argparse.Namespace) -> int:
    ctx.resources.require("reconcile", "secret_id", "ledger_table", "queue_url")
    request = run_request(args)
    resources = ctx.resources
    settings = ReconcilerSettings(
        secret_id=str(resources.secret_id),
        copy_queue_url=str(resources.queue_url),
        ledger_table=str(resources.ledger_table),
        api_url=resources.api_url,
        skip_derived=resources.skip_derived,
    )
    dynamodb = ctx.aws("dynamodb")
    reconciler = Reconciler(
        settings,
        listing=ctx.uploadcare(),
        ledger=Ledger(dynamodb, settings.ledger_table),
        sender=BatchSender(ctx.aws("sqs"), settings.copy_queue_url, sleep=ctx.sleep),
        state=StateStore(dynamodb, settings.ledger_table),
        sleep=ctx.sleep,
    )
    summary = reconciler.run(request, lambda: math.inf)
    if args.json:
        ctx.say(json.dumps(summary.as_dict(), indent=2))
    else:
        show_table(ctx.out, summary_table(summary))
        ctx.say(_line(summary))
    return EXIT_OK if summary.complete else EXIT_PROBLEMS


def summary_table(summary: Summary) -> Table:
    result = summary.as_dict()
    table = Table(title=f"Reconcile run ({summary.kind}) from {result['from'] or 'the first upload'} to {result['to']}")
    for name in ("checked", "verified", "queued", "dead_lettered", "skipped", "stale"):
        table.add_column(name.replace("_", "-"), justify="right")
    table.add_row(
        *(f"{result[name]:,}" for name in ("checked", "verified", "queued", "dead_lettered", "skipped", "stale"))
    )
    return table


def _line(summary: Summary) -> str:
    if summary.complete:
        checked = plural(summary.checked, "file")
        return f"{summary.verified:,} of {checked} verified; {summary.queued:,} queued for a copy"
    pages = plural(summary.pages, "page")
    return f"Stopped ({summary.stopped_by}) after {pages}; a scheduled run goes on from its cursor"
