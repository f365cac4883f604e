"""`make demo`: the whole flow on this machine, on loopback only, with no AWS account.

A moto server stands in for AWS (S3, SQS, DynamoDB, Secrets Manager) and the local emulator for Uploadcare. The
stack's queues, table and the functions' environment come from template.yaml itself. Sample files are registered in
the emulator; each one's signed `file.uploaded` webhook goes through the webhook handler exactly as API Gateway
would pass it; the copier runs over the queue exactly as the SQS event source would (deleting what succeeded,
redelivering what failed); then every file is checked in S3 and in the DLQ and a summary is printed. Exits 1 when
anything did not end as expected. Servers are always stopped, on success, failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import boto3
from botocore.exceptions import ClientError

from devkit import ROOT
from devkit.emulator import EmulatedFile, Fault, Storage, UploadcareEmulator
from devkit.lambda_context import LambdaContext
from devkit.local_resources import LocalStack, StackSpec, create_stack, read_queue
from devkit.make_events import WRONG_SIGNING_SECRET, signed_event
from devkit.servers import aws_env, moto_server
from devkit.sqs_poller import drain
from uploadcare_s3_copy.observability import metrics
from uploadcare_s3_copy.patterns import predict_key

STORAGE = "demo-storage"
PREFIX = "uploadcare/"
WEBHOOK_URL = "https://demo.execute-api.localhost/webhooks/uploadcare"


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


@dataclass
class Run:
    samples: list[Sample]
    extra_deliveries: list[tuple[str, int, str]] = field(default_factory=list)  # (what, status, expected)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    leftover: int = 0
    seconds: float = 0.0


def samples() -> list[Sample]:
    return [
        Sample("plain photo", "harbour-at-dusk.jpg", 482_113, "verified"),
        Sample("unicode name", "Fjällräven \u2013 sommar 2024 (1).png", 91_337, "verified"),
        Sample("throttled once (429)", "quarterly report.pdf", 250_000, "verified", (Fault.throttled(retry_after=1),)),
        Sample("server error once (502)", "voice-memo.m4a", 64_000, "verified", (Fault.server_error(502),)),
        Sample("over 5 GB", "raw-footage.mov", 6 * 1024**3, "too_large"),
    ]


def _stop_on_sigterm() -> None:
    def raise_interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, raise_interrupt)


@contextlib.contextmanager
def handler_output(log: TextIO) -> Iterator[None]:
    """The handlers' JSON logs and EMF metrics go to the log file, keeping the terminal for the summary."""
    from uploadcare_s3_copy.observability import logger  # noqa: PLC0415 - after the environment is set

    handler = logger.registered_handler
    previous = handler.setStream(log)  # type: ignore[attr-defined]
    try:
        with contextlib.redirect_stdout(log):
            yield
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]


def run_flow(stack: LocalStack, emulator: UploadcareEmulator, log: TextIO) -> Run:
    import handle_copy  # noqa: PLC0415 - imported once the environment points at the local servers
    import handle_webhook  # noqa: PLC0415

    run = Run(samples())
    started = time.monotonic()
    for sample in run.samples:
        sample.file = emulator.add_file(original_filename=sample.filename, size=sample.size)
        if sample.faults:
            emulator.script(sample.file.uuid, *sample.faults)

    def deliver(payload: dict[str, Any], secret: str = stack.spec.signing_secret) -> int:
        event = signed_event(payload, secret)
        with handler_output(log):
            response = handle_webhook.lambda_handler(event, LambdaContext(function_name="WebhookFunction"))
        return int(response["statusCode"])

    for sample in run.samples:
        assert sample.file is not None
        sample.sent_at = time.monotonic()
        sample.webhook_status = deliver(emulator.file_uploaded_body(sample.file.uuid, target_url=WEBHOOK_URL))

    first = run.samples[0].file
    assert first is not None
    body = emulator.file_uploaded_body(first.uuid, target_url=WEBHOOK_URL)
    run.extra_deliveries.append(("the same webhook delivered again", deliver(body), "202, no second copy"))
    run.extra_deliveries.append(("a forged signature", deliver(body, WRONG_SIGNING_SECRET), "401, nothing queued"))
    stored = emulator.file_uploaded_body(first.uuid, target_url=WEBHOOK_URL, event="file.stored")
    run.extra_deliveries.append(("a file.stored event", deliver(stored), "200 ignored"))

    sqs = boto3.client("sqs")
    with handler_output(log):
        drain(sqs, stack.queue_url, handle_copy.lambda_handler, function_timeout=60)
    finished = time.monotonic()

    s3 = boto3.client("s3")
    run.dead_letters = read_queue(stack.dlq_url)
    dead = {m["MessageAttributes"].get("uuid", {}).get("StringValue"): m for m in run.dead_letters}
    for sample in run.samples:
        assert sample.file is not None
        sample.calls = emulator.copy_calls(sample.file.uuid)
        sample.key = predict_key(PREFIX, "${default}", sample.file.uuid, sample.filename)
        sample.seconds = finished - sample.sent_at
        if sample.file.uuid in dead:
            sample.outcome = dead[sample.file.uuid]["MessageAttributes"]["reason"]["StringValue"]
            sample.key = ""
            continue
        with contextlib.suppress(ClientError):
            sample.found_size = int(s3.head_object(Bucket=stack.bucket, Key=sample.key)["ContentLength"])
            sample.outcome = "verified" if sample.found_size == sample.size else "wrong size"
    attributes = sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    run.leftover = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
    run.seconds = time.monotonic() - started
    return run


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)


def report(run: Run, stack: LocalStack, out: TextIO) -> list[str]:
    """Prints the summary; returns what did not end as expected (empty: all good)."""
    problems: list[str] = []
    print(f"\nTarget: s3://{stack.bucket}/{PREFIX}  (storage {STORAGE!r}, pattern ${{default}})\n", file=out)
    print(f"{'file':<34} {'size':>9}  {'webhook':>7}  {'UC calls':>8}  {'outcome':<18} {'s':>5}  S3 key", file=out)
    for s in run.samples:
        name = s.filename if len(s.filename) <= 33 else s.filename[:30] + "..."
        mark = "✓" if s.outcome == s.expect else "✗"
        print(
            f"{name:<34} {_size(s.size):>9}  {s.webhook_status:>7}  {s.calls:>8}  {mark} {s.outcome:<16} "
            f"{s.seconds:5.2f}  {s.key or '-'}",
            file=out,
        )
        if s.outcome != s.expect:
            problems.append(f"{s.label}: expected {s.expect}, got {s.outcome}")
        if s.webhook_status != 202:
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
    verified = sum(s.outcome == "verified" for s in run.samples)
    dead = len(run.dead_letters)
    duplicate_calls = run.samples[0].calls
    if duplicate_calls != 1:
        problems.append(f"the redelivered webhook made {duplicate_calls} Uploadcare calls for one file, expected 1")
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
        with UploadcareEmulator(aws_endpoint=endpoint) as emulator:
            stack = create_stack(
                StackSpec(
                    name="demo",
                    public_key=emulator.public_key,
                    secret_key=emulator._secret_key,
                    storage=STORAGE,
                    prefix=PREFIX,
                    api_url=emulator.url,
                )
            )
            emulator.add_storage(Storage(STORAGE, stack.bucket, PREFIX))
            os.environ.update({**stack.webhook_env(), **stack.copier_env()})
            # The shared Metrics object read its namespace when first imported, before this environment existed.
            metrics.namespace = os.environ["POWERTOOLS_METRICS_NAMESPACE"]
            print(f"  AWS: {endpoint}   Uploadcare: {emulator.url}   (stack built from template.yaml)", file=out)
            run = run_flow(stack, emulator, log)
            problems = report(run, stack, out)
    print(f"\nHandler logs: {args.log}.  All servers stopped.  Wall time {time.monotonic() - started:.1f} s.", file=out)
    if problems:
        print("\nDEMO FAILED:\n  " + "\n  ".join(problems), file=out)
        return 1
    print("Demo OK: every file ended verified in S3 or in the DLQ with its reason.", file=out)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nInterrupted: servers stopped.", file=sys.stderr)
        sys.exit(130)
