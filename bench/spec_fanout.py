"""Copier throughput with 1, 2 and 5 copy specs per file, against the local servers, in process.

For each spec count: FILES image files are queued (one copy request each, as the webhook queues them), and the
copier's own handler drains the queue in batches of 10 while every remote copy takes `copy_delay` seconds at the
emulator (Uploadcare's latency). The first spec copies the original, the others a processed version each (its own
storage and prefix). The specs of a record run concurrently, so a batch should take about as long with five specs
as with one, not five times as long.

`python -m bench.spec_fanout` runs it alone and prints the figures; `make bench` includes it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from devkit.emulator import Storage
from devkit.flow import LocalFlow
from devkit.servers import aws_env, moto_server

FILES = 100
SPEC_COUNTS = (1, 2, 5)
BATCH_SIZE = 10
COPY_DELAY = 0.3


def specs_for(count: int, bucket: str) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = [{"name": "original", "target": "fan-0", "bucket": bucket, "prefix": "s0/"}]
    specs += [
        {"name": f"v{n}", "target": f"fan-{n}", "bucket": bucket, "prefix": f"s{n}/", "effects": f"-/resize/{n}00x/"}
        for n in range(1, count)
    ]
    return specs


def measure(flow: LocalFlow, *, files: int = FILES, copy_delay: float = COPY_DELAY) -> list[dict[str, Any]]:
    bucket = flow.stack.bucket
    for n in range(max(SPEC_COUNTS)):
        flow.emulator.add_storage(Storage(f"fan-{n}", bucket, f"s{n}/"))
    saved_delay = flow.emulator.copy_delay
    saved_specs = os.environ.get("COPY_SPECS", "")
    rows = []
    _empty_queue(flow)  # what earlier parts of `make bench` left queued (the reconcile figures) is not this run's
    try:
        flow.emulator.copy_delay = copy_delay
        for count in SPEC_COUNTS:
            os.environ["COPY_SPECS"] = json.dumps(specs_for(count, bucket))
            flow.reset_functions()  # a cold start with these specs
            batch = [flow.add_file(size=2048, mime_type="image/jpeg", original_filename="p.jpg") for _ in range(files)]
            calls_before = flow.emulator.request_counts().get("POST /files/remote_copy/", 0)
            for start in range(0, files, 10):
                flow.sqs.send_message_batch(
                    QueueUrl=flow.stack.queue_url,
                    Entries=[
                        {"Id": str(n), "MessageBody": _message(flow, file)}
                        for n, file in enumerate(batch[start : start + 10])
                    ],
                )
            started = time.monotonic()
            stats = flow.run_copier(batch_size=BATCH_SIZE)
            seconds = time.monotonic() - started
            calls = flow.emulator.request_counts().get("POST /files/remote_copy/", 0) - calls_before
            rows.append(
                {
                    "specs": count,
                    "files": files,
                    "copies": files * count,
                    "seconds": seconds,
                    "files_per_second": files / seconds,
                    "copies_per_second": files * count / seconds,
                    "seconds_per_batch": seconds / max(1, stats.batches),
                    "invocations": stats.batches,
                    "remote_copy_calls": calls,
                    "given_back": stats.given_back,
                }
            )
    finally:
        flow.emulator.copy_delay = saved_delay
        os.environ["COPY_SPECS"] = saved_specs
        flow.reset_functions()
    return rows


def _empty_queue(flow: LocalFlow) -> int:
    removed = 0
    while batch := flow.sqs.receive_message(QueueUrl=flow.stack.queue_url, MaxNumberOfMessages=10).get("Messages"):
        entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)]
        flow.sqs.delete_message_batch(QueueUrl=flow.stack.queue_url, Entries=entries)
        removed += len(batch)
    return removed


def _message(flow: LocalFlow, file: Any) -> str:
    from uploadcare_s3_copy.copy_request import CopyRequest  # noqa: PLC0415

    info = flow.emulator.file_info(file.uuid)
    return CopyRequest.from_file_info(info, event="file.uploaded", origin="webhook").to_message()


def report_lines(rows: list[dict[str, Any]], copy_delay: float = COPY_DELAY) -> list[str]:
    one = next((row for row in rows if row["specs"] == 1), None)
    lines = [
        f"\n### Copy specs: copier throughput with 1, 2 and 5 specs per file (each copy {copy_delay} s, in process)\n",
        "| specs | files | copies | seconds | files/s | copies/s | s per batch of 10 | vs 1 spec | remote_copy calls |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        slower = row["seconds_per_batch"] / one["seconds_per_batch"] if one else float("nan")
        lines.append(
            f"| {row['specs']} | {row['files']} | {row['copies']} | {row['seconds']:.2f} | "
            f"{row['files_per_second']:.1f} | {row['copies_per_second']:.1f} | {row['seconds_per_batch']:.2f} | "
            f"{slower:.2f}x | {row['remote_copy_calls']} |"
        )
    return lines


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's target: with 5 specs a batch takes well under 5 times as long as with 1, and no copy is repeated."""
    by_count = {row["specs"]: row for row in rows}
    if 1 not in by_count or 5 not in by_count:
        return []
    slower = by_count[5]["seconds_per_batch"] / by_count[1]["seconds_per_batch"]
    repeated = [row["specs"] for row in rows if row["remote_copy_calls"] != row["copies"]]
    return [
        {
            "target": "copier batch with 5 specs per file < 5x as long as with 1 (a file's specs run concurrently)",
            "measured": f"{slower:.2f}x ({by_count[5]['seconds_per_batch']:.2f} s vs "
            f"{by_count[1]['seconds_per_batch']:.2f} s per batch of {BATCH_SIZE})",
            "met": slower < 5,
        },
        {
            "target": "exactly one remote_copy per (file, spec)",
            "measured": ", ".join(
                f"{row['specs']} spec{'' if row['specs'] == 1 else 's'}: {row['remote_copy_calls']} for {row['copies']}"
                for row in rows
            ),
            "met": not repeated,
        },
    ]


def main() -> int:
    with moto_server() as endpoint:
        os.environ.update(aws_env(endpoint))
        with LocalFlow.start(endpoint, name="bench-specs") as flow:
            rows = measure(flow)
    print(json.dumps(rows, indent=1))
    print("\n".join(report_lines(rows)))
    for target in targets(rows):
        print(f"- {target['target']}: {target['measured']} ({'met' if target['met'] else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
