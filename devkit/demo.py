"""`make demo`: the whole flow on this machine, on loopback only, with no AWS account.

A moto server stands in for AWS (S3, SQS, DynamoDB, Secrets Manager) and the local emulator for Uploadcare. The
stack's queues, table and the functions' environment come from template.yaml itself. Sample files are registered in
the emulator; each one's signed `file.uploaded` webhook goes through the webhook handler exactly as API Gateway
would pass it; the copier runs over the queue exactly as the SQS event source would (deleting what succeeded,
redelivering what failed). One file's webhook is never delivered: the reconciler's run finds it in Uploadcare's
file list, misses it in the copy ledger and queues it, and the copier copies it. Then every file is checked in S3
and in the DLQ, a summary is printed, and `uploadcare-s3-copy audit` gives its "N of M files verified" line. Exits 1
when anything did not end as expected. Servers are always stopped, on success, failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from devkit import ROOT
from devkit.emulator import EmulatedFile, Fault, Storage
from devkit.flow import LocalFlow
from devkit.local_resources import LocalStack
from devkit.make_events import WRONG_SIGNING_SECRET
from devkit.servers import aws_env, moto_server

STORAGE = "demo-storage"
PREFIX = "uploadcare/"
# The second copy spec: a web-sized WebP of every image, through its own storage into its own bucket.
WEB_STORAGE = Storage("demo-web", "demo-web-copies", "web/")
WEB_EFFECTS = "-/resize/1200x/-/format/webp/"


def copy_specs(bucket: str) -> list[dict[str, Any]]:
    """The demo's COPY_SPECS: each file's original, and a processed version of each image (`mime_types` image/*
    by default for a spec with effects: the other files are skipped for it)."""
    return [
        {"name": "original", "target": STORAGE, "bucket": bucket, "prefix": PREFIX},
        {
            "name": "web",
            "target": WEB_STORAGE.name,
            "bucket": WEB_STORAGE.bucket,
            "prefix": WEB_STORAGE.prefix,
            "effects": WEB_EFFECTS,
        },
    ]


@dataclass
class Sample:
    """One demo file and what must become of it."""

    label: str
    filename: str
    size: int
    expect: str  # "verified" or a DLQ reason
    faults: tuple[Fault, ...] = ()
    file: EmulatedFile | None = None
    webhook_status: int = 0
    sent_at: float = 0.0
    outcome: str = "lost"
    key: str = ""
    found_size: int | None = None
    seconds: float = 0.0
    calls: int = 0
    lost: bool = False  # its webhook never arrives: the reconciler must find it
    mime_type: str | None = None
    web_key: str = ""  # the processed version's proof in the ledger (images only)
    web_size: int | None = None
    web_calls: int = 0


@dataclass
class Run:
    samples: list[Sample]
    reconcile: dict[str, Any] = field(default_factory=dict)
    audit_code: int = -1
    audit_lines: list[str] = field(default_factory=list)
    extra_deliveries: list[tuple[str, int, str]] = field(default_factory=list)  # (what, status, expected)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    leftover: int = 0
    seconds: float = 0.0


def samples() -> list[Sample]:
    return [
        Sample("plain photo", "harbour-at-dusk.jpg", 482_113, "verified", mime_type="image/jpeg"),
        Sample("unicode name", "Fjällräven \u2013 sommar 2024 (1).png", 91_337, "verified", mime_type="image/png"),
        Sample("throttled once (429)", "quarterly report.pdf", 250_000, "verified", (Fault.throttled(retry_after=1),)),
        Sample("server error once (502)", "voice-memo.m4a", 64_000, "verified", (Fault.server_error(502),)),
        Sample("over 5 GB", "raw-footage.mov", 6 * 1024**3, "too_large"),
        Sample("webhook lost", "board-minutes.docx", 33_000, "verified", lost=True),
    ]


def _stop_on_sigterm() -> None:
    def raise_interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, raise_interrupt)


def run_flow(flow: LocalFlow) -> Run:
    run = Run(samples())
    started = time.monotonic()
    for sample in run.samples:
        sample.file = flow.add_file(original_filename=sample.filename, size=sample.size, mime_type=sample.mime_type)
        if sample.faults:
            flow.emulator.script(sample.file.uuid, *sample.faults)

    for sample in run.samples:
        assert sample.file is not None
        sample.sent_at = time.monotonic()
        if not sample.lost:
            sample.webhook_status = flow.deliver(flow.webhook_body(sample.file))

    first = run.samples[0].file
    assert first is not None
    body = flow.webhook_body(first)
    run.extra_deliveries.append(("the same webhook delivered again", flow.deliver(body), "202, no second copy"))
    forged = flow.deliver(body, WRONG_SIGNING_SECRET)
    run.extra_deliveries.append(("a forged signature", forged, "401, nothing queued"))
    stored = flow.deliver(flow.webhook_body(first, event="file.stored"))
    run.extra_deliveries.append(("a file.stored event", stored, "200 ignored"))

    flow.run_copier()
    run.reconcile = flow.reconcile()  # what the schedule does every hour
    flow.run_copier()
    finished = time.monotonic()

    run.dead_letters = flow.dead_letters()
    files = [sample.file for sample in run.samples if sample.file is not None]
    outcomes = flow.outcomes(files, run.dead_letters)
    for sample in run.samples:
        assert sample.file is not None
        outcome = outcomes[sample.file.uuid]
        sample.calls = flow.emulator.copy_calls(sample.file.uuid, STORAGE)
        sample.web_calls = flow.emulator.copy_calls(sample.file.uuid, WEB_STORAGE.name)
        sample.seconds = finished - sample.sent_at
        sample.outcome = outcome.reason if outcome.state == "dead_lettered" else outcome.state
        sample.key = outcome.key
        sample.found_size = outcome.size
        web = flow.ledger_item(sample.file.uuid, "web")
        if web is not None and web.verified:
            sample.web_key, sample.web_size = web.key, flow.size_in(web.bucket, web.key)
    run.leftover = flow.queue_depth()
    run.audit_code, run.audit_lines = audit(flow)
    run.seconds = time.monotonic() - started
    return run


def audit(flow: LocalFlow) -> tuple[int, list[str]]:
    """`uploadcare-s3-copy audit --to now`, with the functions' environment as its settings (the CLI reads the
    same variables); returns its exit code and output lines."""
    from uploadcare_s3_copy_cli.app import main as cli  # noqa: PLC0415 - the CLI is the demo's last step only

    out = io.StringIO()
    environ = {**os.environ, **flow.stack.copier_env(), **flow.stack.reconciler_env()}
    now = datetime.now(UTC).isoformat()
    code = cli(["audit", "--to", now], environ=environ, out=out, err=out)
    return code, out.getvalue().rstrip().splitlines()


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)


def _report_healing(run: Run, out: TextIO) -> list[str]:
    """The reconcile run and the audit: the lost webhook's file found and queued, the audit's closing line."""
    problems: list[str] = []
    summary = run.reconcile
    lost = sum(s.lost for s in run.samples)
    print("\nReconcile run (what the schedule does every hour):", file=out)
    print(
        f"  checked {summary.get('checked')}, verified {summary.get('verified')}, queued {summary.get('queued')} "
        f"(the lost webhook's file), dead-lettered {summary.get('dead_lettered')}, complete {summary.get('complete')}",
        file=out,
    )
    if summary.get("queued") != lost or summary.get("complete") is not True:
        problems.append(f"the reconcile run queued {summary.get('queued')}, expected the {lost} lost file(s)")
    print("\n$ uploadcare-s3-copy audit --to <now>", file=out)
    for line in run.audit_lines:
        print(f"  {line}", file=out)
    return problems


def _report_processed(run: Run, out: TextIO) -> list[str]:
    """The second copy spec: each image's processed version, proved in its own bucket; the other files skipped."""
    problems: list[str] = []
    print(
        f"\nCopy spec 'web' ({WEB_EFFECTS} of each image -> s3://{WEB_STORAGE.bucket}/{WEB_STORAGE.prefix}):", file=out
    )
    for s in run.samples:
        name = s.filename if len(s.filename) <= 33 else s.filename[:30] + "..."
        image = (s.mime_type or "").startswith("image/")
        if image and s.web_key and s.web_size:
            print(f"  ✓ {name:<34} {_size(s.web_size):>9}  {s.web_calls} call  verified  {s.web_key}", file=out)
        elif image:
            print(f"  ✗ {name:<34} no verified processed version", file=out)
            problems.append(f"{s.label}: the web copy spec has no verified processed version")
        elif s.web_calls:
            problems.append(f"{s.label}: not an image, yet the web copy spec called Uploadcare {s.web_calls} times")
        else:
            print(f"  - {name:<34} not an image: skipped by this spec (no call)", file=out)
    return problems


def report(run: Run, stack: LocalStack, out: TextIO) -> list[str]:
    """Prints the summary; returns what did not end as expected (empty: all good)."""
    problems: list[str] = []
    print(
        f"\nCopy spec 'original': s3://{stack.bucket}/{PREFIX}  (storage {STORAGE!r}, pattern ${{default}})\n",
        file=out,
    )
    print(f"{'file':<34} {'size':>9}  {'webhook':>7}  {'UC calls':>8}  {'outcome':<18} {'e2e s':>5}  S3 key", file=out)
    for s in run.samples:
        name = s.filename if len(s.filename) <= 33 else s.filename[:30] + "..."
        mark = "✓" if s.outcome == s.expect else "✗"
        print(
            f"{name:<34} {_size(s.size):>9}  {s.webhook_status or 'lost':>7}  {s.calls:>8}  {mark} {s.outcome:<16} "
            f"{s.seconds:5.2f}  {s.key or '-'}",
            file=out,
        )
        if s.outcome != s.expect:
            problems.append(f"{s.label}: expected {s.expect}, got {s.outcome}")
        if s.webhook_status != (0 if s.lost else 202):
            problems.append(f"{s.label}: webhook answered {s.webhook_status}, expected 202")
    print("\nOther deliveries:", file=out)
    expected_status = {"the same webhook delivered again": 202, "a forged signature": 401, "a file.stored event": 200}
    for what, status, expected in run.extra_deliveries:
        ok = status == expected_status[what]
        print(f"  {'✓' if ok else '✗'} {what:<34} -> {status}   (expected {expected})", file=out)
        if not ok:
            problems.append(f"{what}: answered {status}")
    print("\nDead-letter queue:", file=out)
    for message in run.dead_letters:
        attributes = message["MessageAttributes"]
        body = json.loads(message["Body"])
        print(
            f"  {body.get('original_filename', '?')}: reason={attributes['reason']['StringValue']}  "
            f"detail={attributes['detail']['StringValue']}",
            file=out,
        )
    problems.extend(_report_healing(run, out))
    verified = sum(s.outcome == "verified" for s in run.samples)
    dead = len(run.dead_letters)
    expected_line = f"{verified} of {len(run.samples)} files verified"
    if not run.audit_lines or run.audit_lines[-1] != expected_line:
        problems.append(f"audit did not end with {expected_line!r}")
    if run.audit_code != (1 if dead else 0):
        problems.append(f"audit exited {run.audit_code}")
    first = run.samples[0]
    if (first.calls, first.web_calls) != (1, 1):
        problems.append(
            f"the redelivered webhook's file had {first.calls} + {first.web_calls} Uploadcare calls, expected one per "
            "copy spec"
        )
    problems.extend(_report_processed(run, out))
    if verified + dead != len(run.samples):
        problems.append(f"{verified} verified + {dead} dead-lettered != {len(run.samples)} files")
    if run.leftover:
        problems.append(f"{run.leftover} messages left on the copy queue")
    print(
        f"\nTotals: {len(run.samples)} files, {verified} verified in S3, {dead} in the DLQ with a reason, "
        f"{run.leftover} left on the queue; {verified} + {dead} = {verified + dead} "
        f"({'adds up' if verified + dead == len(run.samples) else 'DOES NOT add up'}). {run.seconds:.1f} s.",
        file=out,
    )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the whole flow on loopback (moto server + Uploadcare emulator).")
    parser.add_argument("--log", type=Path, default=ROOT / ".demo" / "handlers.log", help="the handlers' JSON logs")
    args = parser.parse_args(argv)
    _stop_on_sigterm()
    args.log.parent.mkdir(parents=True, exist_ok=True)
    out = sys.stdout
    started = time.monotonic()
    print("Starting a moto server (AWS) and the Uploadcare emulator on 127.0.0.1 ...", file=out)
    with (
        moto_server(args.log.parent / "moto.log") as endpoint,
        open(args.log, "w", encoding="utf-8") as log,
    ):
        os.environ.update(aws_env(endpoint))
        # Grace 0: the reconciler looks at files of any age, so the demo's just-uploaded ones are checked too.
        # Two copy specs: the stack's bucket is "<name>-copies" (devkit/local_resources.py).
        parameters = {
            "ReconcileGraceSeconds": "0",
            "CopySpecs": json.dumps(copy_specs("demo-copies")),
            "ExtraTargetBuckets": WEB_STORAGE.bucket,
        }
        with LocalFlow.start(
            endpoint,
            name="demo",
            storage=STORAGE,
            prefix=PREFIX,
            log=log,
            parameters=parameters,
            extra_storages=(WEB_STORAGE,),
        ) as flow:
            print(f"  AWS: {endpoint}   Uploadcare: {flow.emulator.url}   (stack built from template.yaml)", file=out)
            run = run_flow(flow)
            problems = report(run, flow.stack, out)
    print(f"\nHandler logs: {args.log}.  All servers stopped.  Wall time {time.monotonic() - started:.1f} s.", file=out)
    if problems:
        print("\nDEMO FAILED:\n  " + "\n  ".join(problems), file=out)
        return 1
    print(
        "Demo OK: every file ended verified in S3 or in the DLQ with its reason, the lost webhook's file included.",
        file=out,
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nInterrupted: servers stopped.", file=sys.stderr)
        sys.exit(130)
