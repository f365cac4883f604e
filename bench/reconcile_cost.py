"""What reconciliation and `audit --check-objects` cost per 1,000 files, against the local servers.

1,000 files uploaded two hours ago are registered in the emulator; 900 of them get a verified ledger item and their
object in the bucket (what the copier leaves), 100 get nothing (their webhooks were lost). Then, in this process:
one reconciler run over their window (`build_reconciler`, the function's own wiring), and one
`uploadcare-s3-copy audit --check-objects --json` over the same window. For each: the wall time, files a second,
and the calls by kind (AWS calls counted by `bench.call_counter`, Uploadcare calls by the emulator).

`python -m bench.reconcile_cost` runs it alone and prints the figures; `make bench` includes it.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from bench import call_counter
from devkit.flow import LocalFlow
from devkit.lambda_context import LambdaContext
from devkit.servers import aws_env, moto_server
from uploadcare_s3_copy.copy_request import now_iso
from uploadcare_s3_copy.ledger import DEFAULT_SPEC, Ledger, LedgerItem, LedgerStatus
from uploadcare_s3_copy.observability import metrics

FILES = 1000
MISSING = 100


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before.get(name, 0) for name in after if after[name] - before.get(name, 0)}


def _uploadcare_delta(before: Counter[str], after: dict[str, int]) -> dict[str, int]:
    return {name: count - before.get(name, 0) for name, count in after.items() if count - before.get(name, 0)}


def measure(flow: LocalFlow, files: int = FILES, missing: int = MISSING) -> dict[str, Any]:
    call_counter.install()
    start = datetime.now(UTC) - timedelta(hours=2)
    registered = [
        flow.add_file(size=1024, datetime_uploaded=start + timedelta(milliseconds=n), original_filename="f.bin")
        for n in range(files)
    ]
    ledger = Ledger(boto3.client("dynamodb"), flow.stack.ledger_table)
    s3 = boto3.client("s3")
    body = b"x" * 1024
    for file in registered[missing:]:
        key = flow.key_of(file)
        etag = str(s3.put_object(Bucket=flow.stack.bucket, Key=key, Body=body)["ETag"]).strip('"')
        now = now_iso()
        ledger.put(
            LedgerItem(
                uuid=file.uuid,
                spec=DEFAULT_SPEC,
                status=LedgerStatus.VERIFIED,
                updated_at=now,
                bucket=flow.stack.bucket,
                key=key,
                size=1024,
                etag=etag,
                verified_at=now,
                origin="bench",
            )
        )
    window = {
        "from": (start - timedelta(seconds=1)).isoformat(),
        "to": (start + timedelta(milliseconds=files)).isoformat(),
    }

    from uploadcare_s3_copy.reconciler import build_reconciler  # noqa: PLC0415 - after the call counter is installed
    from uploadcare_s3_copy_cli.app import main as cli  # noqa: PLC0415

    environ = {**os.environ, **flow.stack.reconciler_env()}
    app = build_reconciler(environ)
    aws_before, uc_before = call_counter.snapshot(), Counter(flow.emulator.request_counts())
    started = time.monotonic()
    summary = app.handle(window, LambdaContext(function_name="ReconcilerFunction", timeout_seconds=300))
    reconcile_seconds = time.monotonic() - started
    reconcile_calls = {
        **_delta(aws_before, call_counter.snapshot()),
        **{f"uploadcare:{k}": v for k, v in _uploadcare_delta(uc_before, flow.emulator.request_counts()).items()},
    }
    metrics.clear_metrics()

    out = io.StringIO()
    audit_env = {**os.environ, **flow.stack.copier_env(), **flow.stack.reconciler_env()}
    aws_before, uc_before = call_counter.snapshot(), Counter(flow.emulator.request_counts())
    started = time.monotonic()
    code = cli(
        ["audit", "--check-objects", "--json", "--from", window["from"], "--to", window["to"]],
        environ=audit_env,
        out=out,
        err=io.StringIO(),
    )
    audit_seconds = time.monotonic() - started
    audit_calls = {
        **_delta(aws_before, call_counter.snapshot()),
        **{f"uploadcare:{k}": v for k, v in _uploadcare_delta(uc_before, flow.emulator.request_counts()).items()},
    }
    audit = json.loads(out.getvalue())
    if summary["queued"] != missing or audit["objects_checked"] != files - missing or code != 1:
        raise RuntimeError(f"unexpected run: reconcile {summary}, audit exit {code}, {audit['objects_checked']} heads")
    return {
        "files": files,
        "missing": missing,
        "reconcile": {"seconds": reconcile_seconds, "summary": summary, "calls": reconcile_calls},
        "audit": {
            "seconds": audit_seconds,
            "objects_checked": audit["objects_checked"],
            "verified": audit["verified"],
            "calls": audit_calls,
        },
    }


def report_lines(result: dict[str, Any]) -> list[str]:
    """The markdown table of `measure`'s result."""
    files, missing = result["files"], result["missing"]
    rows = []
    for name, label in (("reconcile", "reconciler run"), ("audit", "`audit --check-objects`")):
        run = result[name]
        calls = ", ".join(f"{op} {n:,}" for op, n in sorted(run["calls"].items()))
        rows.append(f"| {label} | {run['seconds']:.2f} | {files / run['seconds']:,.0f} | {calls} |")
    head = [
        f"\n### Reconcile and audit: {files:,} files, {missing:,} without a ledger item, in process\n",
        "| run | seconds | files/s | calls by kind (whole run) |",
        "|---|---:|---:|---|",
    ]
    per_1000 = result["audit"]["objects_checked"] / result["audit"]["seconds"]
    tail = [f"\n`audit --check-objects`: {per_1000:,.0f} head_object calls a second (ten at once, one client)."]
    return head + rows + tail


def main() -> int:
    with moto_server() as endpoint:
        os.environ.update(aws_env(endpoint))
        with LocalFlow.start(endpoint, name="bench-reconcile") as flow:
            result = measure(flow)
    print(json.dumps({k: v for k, v in result.items()}, indent=1, default=str))
    print("\n".join(report_lines(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
