"""`make bench`: cold start, warm cost, copier throughput, calls per file, memory and package size of the two
functions, side by side with a BASELINE webhook written the obvious way (bench/baseline: it copies inside the
request). A benchmark, not a test: it prints Markdown tables, writes them into docs/performance.md, and writes
bench/results.json and bench/throughput.png.

    .venv/bin/python -m bench.run [--runs 7] [--files N] [--quick]

Everything runs on this machine: AWS is a moto server on loopback, Uploadcare the local emulator, and every function
runs in fresh Python processes started like Lambda containers (bench/lambda_process.py):
  cold start   R fresh processes per function: the handler module's import, then its first event (webhook: a signed
               `file.uploaded`; copier: an SQS batch of one copy request; baseline: the webhook, copy included),
               then 10 warm events. The emulator answers copies at once here (copy_delay 0), so the figures are
               the code's own cost; the baseline would add the copy time to each of its requests.
  warm         bench/webhook_cold_warm.py's processes: the webhook's own time with the secret read and SendMessage
               stubbed, and the full time against the moto server.
  throughput   copy requests on the stack's queue, drained by copier containers, each a poll loop like Lambda's
               SQS event source mapping (batches of 10, DeleteMessageBatch); COPY_CONCURRENCY 1, 2, 5, 10, 20 in one
               container, and 2 containers x 10 (what the template's CopierMaxConcurrency 2 allows). The baseline:
               N containers each answering its share of the webhooks one after another (N concurrent requests).
               The 2 x 10 row's queue is filled through a webhook container, which gives the webhook's memory.
               Containers are warmed with one event, then released together; time runs from release to last batch.
  calls        botocore `before-call` counts in the function's process, the emulator's request counters.
Timings depend on the machine and its load (recorded in the results); on Lambda the init phase gets a full CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import first_request, reconcile_cost, spec_fanout, webhook_cold_warm
from bench.harness import (
    Function,
    child_cpu_seconds,
    enqueue,
    functions,
    machine,
    new_files,
    run_container,
    run_together,
    sqs_event,
    webhook_event,
)
from bench.package_size import package_sizes
from bench.plot import plot_throughput
from bench.stats import Summary, human_bytes, markdown_table, mib, ratio, with_tables
from devkit.emulator import EmulatedFile
from devkit.flow import LocalFlow
from devkit.servers import aws_env, moto_server
from uploadcare_s3_copy.moments import iso_z

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results.json"
PLOT = BENCH / "throughput.png"
BATCH_SIZE = 10
WARM_EVENTS = 10
FUNCTION_LABELS = {
    "webhook": "webhook (this project)",
    "copier": "copier (this project), batch of 1",
    "reconciler": "reconciler (this project), one-minute window",
    "baseline": "BASELINE webhook, copy in the request",
}
SERVICES = (
    ("Uploadcare", "uploadcare"),
    ("S3", "s3"),
    ("DynamoDB", "dynamodb"),
    ("SQS", "sqs"),
    ("Secrets Manager", "secretsmanager"),
)


class BenchError(RuntimeError):
    """A run did not do what it was measured doing (a failed answer, a missing copy): its figures would lie."""


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise BenchError(what)


def _failures(result: Mapping[str, Any]) -> int:
    return sum(int(phase["failures"]) for phase in result["phases"].values())


# --- 1. cold start ---------------------------------------------------------------------------------------------


def _cold_event(flow: LocalFlow, label: str, file: EmulatedFile) -> dict[str, Any]:
    if label == "copier":
        return sqs_event(flow, [file])
    if label == "reconciler":  # a window run over the minute around the file: one page, its ledger lookup
        uploaded = file.datetime_uploaded
        return {"from": iso_z(uploaded - timedelta(seconds=30)), "to": iso_z(uploaded + timedelta(seconds=30))}
    return webhook_event(flow, file)


def cold_starts(flow: LocalFlow, fns: Mapping[str, Function], runs: int) -> dict[str, dict[str, list[float]]]:
    flow.emulator.copy_delay = 0.0
    out: dict[str, dict[str, list[float]]] = {
        label: {"import": [], "first": [], "total": [], "warm": [], "maxrss_kib": []} for label in FUNCTION_LABELS
    }
    for run in range(runs):
        for label in FUNCTION_LABELS:  # interleaved, so a change of load falls on all three alike
            files = new_files(flow, 1 + WARM_EVENTS)
            events = [_cold_event(flow, label, f) for f in files]
            spec = {"phases": [{"name": "first", "events": events[:1]}, {"name": "warm", "events": events[1:]}]}
            result = run_container(fns[label], spec)
            _check(_failures(result) == 0, f"cold start run {run} of {label}: {result['phases']}")
            first = float(result["phases"]["first"]["durations"][0])
            out[label]["import"].append(float(result["import_seconds"]))
            out[label]["first"].append(first)
            out[label]["total"].append(float(result["import_seconds"]) + first)
            out[label]["warm"].append(Summary.of(result["phases"]["warm"]["durations"]).median)
            out[label]["maxrss_kib"].append(float(result["maxrss_kib"]))
        print(f"bench: cold start run {run + 1}/{runs} done", flush=True)
    return out


# --- 2. warm webhook -------------------------------------------------------------------------------------------


def webhook_warm(fns: Mapping[str, Function], runs: int, warm: int) -> dict[str, Any]:
    """bench/webhook_cold_warm.py's own child processes: per process, the median of `warm` requests."""
    stub_env = {"UPLOADCARE_SECRET_ID": "bench-secret", "COPY_QUEUE_URL": "https://sqs.invalid/1/bench"}
    stub_env["LOG_LEVEL"] = "INFO"
    stub = [webhook_cold_warm.run_child("stub", warm, stub_env)["warm"] for _ in range(runs)]
    moto = [webhook_cold_warm.run_child("moto", warm, dict(fns["webhook"].env))["warm"] for _ in range(runs)]
    by_package = webhook_cold_warm.import_cost_by_package(stub_env, top=6)
    return {
        "own_time": [float(x) for x in stub],
        "full_moto": [float(x) for x in moto],
        "import_by_package_ms": [[name, spent] for name, spent in by_package],
    }


# --- 4. calls per file -----------------------------------------------------------------------------------------


def by_service(aws_calls: Mapping[str, int], uploadcare_calls: Mapping[str, int], per: int) -> dict[str, float]:
    totals = {key: 0.0 for _, key in SERVICES}
    for name, count in aws_calls.items():
        service = name.split(":", 1)[0]
        totals[service] = totals.get(service, 0.0) + count / per
    totals["uploadcare"] = sum(uploadcare_calls.values()) / per
    return totals


def calls_per_file(flow: LocalFlow, fns: Mapping[str, Function]) -> list[dict[str, Any]]:
    flow.emulator.copy_delay = 0.0
    rows: list[dict[str, Any]] = []
    emulator_url = flow.emulator.url

    def record(function: str, case: str, phase: Mapping[str, Any], per: int) -> None:
        rows.append(
            {
                "function": function,
                "case": case,
                "per": per,
                "calls": by_service(phase["aws_calls"], phase["uploadcare_calls"], per),
                "invocation_seconds": phase["durations"],
                "operations": {
                    **phase["aws_calls"],
                    **{f"uploadcare:{k}": v for k, v in phase["uploadcare_calls"].items()},
                },
            }
        )

    files = new_files(flow, 1 + WARM_EVENTS)
    events = [webhook_event(flow, f) for f in files]
    spec = {
        "emulator_url": emulator_url,
        "phases": [{"name": "first", "events": events[:1]}, {"name": "warm", "events": events[1:]}],
    }
    result = run_container(fns["webhook"], spec, count_calls=True)
    _check(_failures(result) == 0, f"webhook calls run: {result['phases']}")
    record("webhook", "first request (cold)", result["phases"]["first"], 1)
    record("webhook", "warm request", result["phases"]["warm"], WARM_EVENTS)

    files = new_files(flow, 1 + WARM_EVENTS)
    spec = {
        "emulator_url": emulator_url,
        "phases": [
            {"name": "first", "events": [sqs_event(flow, files[:1])]},
            {"name": "warm", "events": [sqs_event(flow, files[1:])]},
            {"name": "duplicate", "events": [sqs_event(flow, files[1:])]},
        ],
    }
    result = run_container(fns["copier"], spec, count_calls=True)
    _check(_failures(result) == 0, f"copier calls run: {result['phases']}")
    _check(all(flow.emulator.copies(f.uuid) == 1 for f in files), "copier calls run: a file was not copied once")
    record("copier", "first file (cold)", result["phases"]["first"], 1)
    record("copier", f"warm, batch of {WARM_EVENTS} new files", result["phases"]["warm"], WARM_EVENTS)
    record("copier", "duplicate delivery of those files", result["phases"]["duplicate"], WARM_EVENTS)

    files = new_files(flow, 1 + WARM_EVENTS)
    events = [webhook_event(flow, f) for f in files]
    spec = {
        "emulator_url": emulator_url,
        "phases": [
            {"name": "first", "events": events[:1]},
            {"name": "warm", "events": events[1:]},
            {"name": "duplicate", "events": events[1:]},
        ],
    }
    result = run_container(fns["baseline"], spec, count_calls=True)
    _check(_failures(result) == 0, f"baseline calls run: {result['phases']}")
    record("baseline", "first request (cold)", result["phases"]["first"], 1)
    record("baseline", "warm request (new file)", result["phases"]["warm"], WARM_EVENTS)
    record("baseline", "duplicate delivery", result["phases"]["duplicate"], WARM_EVENTS)
    return rows


# --- 3. throughput ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    system: str  # "this project" | "baseline"
    containers: int
    per_container: int  # COPY_CONCURRENCY (this project) or 1 request at a time (baseline)
    x: float  # where the plot puts it: the concurrency setting
    series: str

    @property
    def in_flight(self) -> int:
        """How many copies can be waited on at once."""
        if self.system == "baseline":
            return self.containers
        return self.containers * min(self.per_container, BATCH_SIZE)

    @property
    def label(self) -> str:
        if self.system == "baseline":
            return f"{self.containers} concurrent request{'s' if self.containers > 1 else ''}"
        invocations = f"{self.containers} invocation{'s' if self.containers > 1 else ''}"
        return f"{invocations} x COPY_CONCURRENCY {self.per_container}"


# Interleaved, so that a change in the machine's load falls on both systems alike.
SETUPS = (
    *(
        setup
        for c in (1, 2, 5, 10)
        for setup in (
            Setup("this project", 1, c, c, "this project, 1 invocation"),
            Setup("baseline", c, 1, c, "baseline"),
        )
    ),
    Setup("this project", 1, 20, 20, "this project, 1 invocation"),  # capped by the batch of 10
    Setup("this project", 2, 10, 20, "this project, 2 invocations x 10"),
    Setup("baseline", 20, 1, 20, "baseline"),
)


def files_for(setup: Setup, files: int | None) -> int:
    """Default: 1,000 files where that takes about 15 s, fewer where concurrency is low (the rate is the same)."""
    return files or min(1000, 50 * setup.in_flight)


def _queue_count(flow: LocalFlow, url: str) -> int:
    attributes = flow.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def ours_row(flow: LocalFlow, fns: Mapping[str, Function], setup: Setup, count: int) -> dict[str, Any]:
    files = new_files(flow, count)
    warm_files = new_files(flow, setup.containers)
    feed: dict[str, Any] | None = None
    if setup.containers > 1:
        # Filled the real way: every file's webhook through one webhook container, one request after another.
        webhook = fns["webhook"].with_env(COPY_QUEUE_URL=flow.stack.queue_url)
        events = [webhook_event(flow, f) for f in files]
        phases = [{"name": "first", "events": events[:1]}, {"name": "deliver", "events": events[1:]}]
        fed = run_container(webhook, {"phases": phases})
        _check(_failures(fed) == 0, f"webhook feed: {fed['phases']}")
        phase = fed["phases"]["deliver"]
        feed = {
            "requests": len(events) - 1,  # warm ones; the first (cold) request is left out of the figures
            "seconds": phase["ended"] - phase["started"],
            "request_ms": Summary.of(phase["durations"]).scaled(1000).to_json(),
            "maxrss_kib": fed["maxrss_kib"],
        }
    else:
        enqueue(flow, files)
    _check(_queue_count(flow, flow.stack.queue_url) == count, "the copy queue does not hold exactly this run's files")
    copier = fns["copier"].with_env(COPY_CONCURRENCY=str(setup.per_container))
    jobs = [
        (
            copier,
            {
                "phases": [{"name": "warmup", "events": [sqs_event(flow, [warm])]}],
                "poll": {"queue_url": flow.stack.queue_url, "batch_size": BATCH_SIZE, "gate": True},
            },
        )
        for warm in warm_files
    ]
    moto_cpu = child_cpu_seconds("moto.server")
    went, results = run_together(jobs)
    moto_cpu = child_cpu_seconds("moto.server") - moto_cpu
    seconds = max(float(r["poll"]["ended"]) for r in results) - went
    copied = sum(flow.emulator.copies(f.uuid) for f in files)
    _check(copied == count, f"{setup.label}: {copied} of {count} files copied")
    _check(_queue_count(flow, flow.stack.queue_url) == 0, f"{setup.label}: requests left on the queue")
    _check(_queue_count(flow, flow.stack.dlq_url) == 0, f"{setup.label}: requests in the DLQ")
    batches = [b["seconds"] for r in results for b in r["poll"]["batches"] if b["records"] == BATCH_SIZE]
    return {
        "system": setup.system,
        "series": setup.series,
        "setup": setup.label,
        "containers": setup.containers,
        "per_container": setup.per_container,
        "x": setup.x,
        "in_flight": setup.in_flight,
        "files": count,
        "seconds": seconds,
        "files_per_second": count / seconds,
        "batch_seconds": Summary.of(batches).to_json() if batches else None,
        "batches": sum(len(r["poll"]["batches"]) for r in results),
        "cpu_ms_per_file": 1000 * sum(float(r["poll"]["cpu_seconds"]) for r in results) / count,
        "moto_cpu_ms_per_file": 1000 * moto_cpu / count,
        "given_back": sum(int(r["poll"]["given_back"]) for r in results),
        "maxrss_kib": max(float(r["maxrss_kib"]) for r in results),
        "webhook_feed": feed,
    }


def baseline_row(flow: LocalFlow, fns: Mapping[str, Function], setup: Setup, count: int) -> dict[str, Any]:
    files = new_files(flow, count)
    warm_files = new_files(flow, setup.containers)
    jobs = [
        (
            fns["baseline"],
            {
                "phases": [
                    {"name": "warmup", "events": [webhook_event(flow, warm)]},
                    {
                        "name": "requests",
                        "events": [webhook_event(flow, f) for f in files[n :: setup.containers]],
                        "gate": True,
                    },
                ]
            },
        )
        for n, warm in enumerate(warm_files)
    ]
    moto_cpu = child_cpu_seconds("moto.server")
    went, results = run_together(jobs)
    moto_cpu = child_cpu_seconds("moto.server") - moto_cpu
    seconds = max(float(r["phases"]["requests"]["ended"]) for r in results) - went
    failures = sum(_failures(r) for r in results)
    _check(failures == 0, f"baseline {setup.label}: {failures} requests failed")
    copied = sum(flow.emulator.copies(f.uuid) for f in files)
    _check(copied == count, f"baseline {setup.label}: {copied} of {count} files copied")
    requests = [d for r in results for d in r["phases"]["requests"]["durations"]]
    return {
        "system": setup.system,
        "series": setup.series,
        "setup": setup.label,
        "containers": setup.containers,
        "per_container": 1,
        "x": setup.x,
        "in_flight": setup.in_flight,
        "files": count,
        "seconds": seconds,
        "files_per_second": count / seconds,
        "request_seconds": Summary.of(requests).to_json(),
        "cpu_ms_per_file": 1000 * sum(float(r["phases"]["requests"]["cpu_seconds"]) for r in results) / count,
        "moto_cpu_ms_per_file": 1000 * moto_cpu / count,
        "maxrss_kib": max(float(r["maxrss_kib"]) for r in results),
    }


def throughput(
    flow: LocalFlow, fns: Mapping[str, Function], copy_delay: float, files: int | None, setups: Sequence[Setup]
) -> list[dict[str, Any]]:
    flow.emulator.copy_delay = copy_delay
    rows = []
    for setup in setups:
        count = files_for(setup, files)
        row = (
            ours_row(flow, fns, setup, count)
            if setup.system == "this project"
            else baseline_row(flow, fns, setup, count)
        )
        print(f"bench: throughput {setup.system}, {setup.label}: {row['files_per_second']:.1f} files/s", flush=True)
        rows.append(row)
    return rows


# --- report ----------------------------------------------------------------------------------------------------


def _ms(values: Sequence[float]) -> str:
    return Summary.of(values).scaled(1000).cell(1)


def targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    cold = results["cold_start"]
    ours = Summary.of(cold["webhook"]["total"]).median
    base = Summary.of(cold["baseline"]["total"]).median
    cold_ratio = ratio(ours, base) or 0.0
    own = Summary.of(results["webhook_warm"]["own_time"]).median * 1000
    ten = next(
        r
        for r in results["throughput"]
        if r["system"] == "this project" and r["containers"] == 1 and r["per_container"] == 10
    )
    batch = ten["batch_seconds"]["median"] if ten["batch_seconds"] else float("inf")
    delay = float(results["config"]["copy_delay"])
    calls = {(row["function"], row["case"].split(",")[0].split(" ")[0]): row["calls"] for row in results["calls"]}
    warm = calls[("copier", "warm")]
    duplicate = calls[("copier", "duplicate")]
    memory = results["memory"]
    fanout = spec_fanout.targets(results["specs"]) if "specs" in results else []
    return [
        {
            "target": "webhook cold start (import + first request) <= 1/3 of the baseline's",
            "measured": f"{ours * 1000:.0f} ms vs {base * 1000:.0f} ms: ratio {cold_ratio:.2f}",
            "met": cold_ratio <= 1 / 3,
        },
        {"target": "webhook warm own time < 1 ms per request", "measured": f"{own:.3f} ms", "met": own < 1.0},
        {
            "target": f"batch of 10 at {delay * 1000:.0f} ms per copy < {2 * delay:.1f} s",
            "measured": f"{batch:.3f} s median (max {ten['batch_seconds']['max']:.3f} s)"
            if ten["batch_seconds"]
            else "no full batch",
            "met": batch < 2 * delay,
        },
        {
            "target": "warm: 1 Uploadcare call and 1 head_object per copied file, 0 Secrets Manager calls",
            "measured": (
                f"{warm['uploadcare']:g} Uploadcare, {warm['s3']:g} S3, {warm['secretsmanager']:g} Secrets Manager"
            ),
            "met": warm["uploadcare"] == 1 and warm["s3"] == 1 and warm["secretsmanager"] == 0,
        },
        {
            "target": "a duplicate delivery makes 0 Uploadcare calls",
            "measured": f"{duplicate['uploadcare']:g}",
            "met": duplicate["uploadcare"] == 0,
        },
        {
            "target": "webhook fits a 128 MB function",
            "measured": f"{mib(memory['webhook']):.0f} MiB peak RSS",
            "met": mib(memory["webhook"]) * 1.048576 <= 128,
        },
        {
            "target": "copier fits a 256 MB function",
            "measured": f"{mib(memory['copier']):.0f} MiB peak RSS",
            "met": mib(memory["copier"]) * 1.048576 <= 256,
        },
        *fanout,
    ]


def _webhook_breakdown(results: Mapping[str, Any]) -> list[str]:
    """Where the webhook's cold start goes: its import by package, its first request by step."""
    packages = ", ".join(f"{name} {spent:.0f}" for name, spent in results["webhook_warm"]["import_by_package_ms"])
    lines = [f"\nWebhook import by package (self ms, one `python -X importtime` run): {packages}"]
    if "first_request" in results:
        lines.append(first_request.report_line(results["first_request"]))
    return lines


def report(results: Mapping[str, Any]) -> str:
    out: list[str] = []
    m = results["machine"]
    load_before, load_after = results["machine"]["load_average"], results["load_after"]
    out.append(
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; load average (1/5/15 min) "
        f"{' '.join(f'{x:.2f}' for x in load_before)} before, {' '.join(f'{x:.2f}' for x in load_after)} after. "
        f"Run took {results['seconds']:.0f} s."
    )
    cold = results["cold_start"]
    runs = results["config"]["runs"]
    out.append(f"\n### Cold start: fresh process, ms, median (min-max) of {runs} runs; copies answered at once\n")
    rows = [
        [
            FUNCTION_LABELS[label],
            _ms(cold[label]["import"]),
            _ms(cold[label]["first"]),
            _ms(cold[label]["total"]),
            _ms(cold[label]["warm"]),
        ]
        for label in FUNCTION_LABELS
    ]
    out.append(markdown_table(["function", "import", "first request", "import + first", "warm request (full)"], rows))
    ours = Summary.of(cold["webhook"]["total"]).median
    base = Summary.of(cold["baseline"]["total"]).median
    out.append(
        f"\nWebhook cold start, this project / baseline: {ours * 1000:.0f} / {base * 1000:.0f} ms = {ours / base:.2f}"
    )
    out.extend(_webhook_breakdown(results))

    warm = results["webhook_warm"]
    out.append(f"\n### Warm webhook request, ms (per process the median of {results['config']['warm']} requests)\n")
    out.append(
        markdown_table(
            ["webhook, warm", "median", "min", "max", "processes"],
            [
                [label, *(f"{x:.3f}" for x in (s.median, s.min, s.max)), s.n]
                for label, s in (
                    ("own time (secret read and SendMessage stubbed)", Summary.of(warm["own_time"]).scaled(1000)),
                    ("full, SendMessage to the moto server", Summary.of(warm["full_moto"]).scaled(1000)),
                )
            ],
        )
    )

    delay = float(results["config"]["copy_delay"])
    out.append(f"\n### Copier throughput, {delay * 1000:.0f} ms per remote copy\n")
    rows = []
    for row in sorted(results["throughput"], key=lambda r: (r["system"] == "baseline", r["x"], r["containers"])):
        batch = Summary(**row["batch_seconds"]).cell(2) if row.get("batch_seconds") else "-"
        if row["system"] == "baseline":
            batch = "(1 file per request: " + Summary(**row["request_seconds"]).cell(2) + ")"
        rows.append(
            [
                row["system"],
                row["setup"],
                row["files"],
                f"{row['seconds']:.1f}",
                f"{row['files_per_second']:.1f}",
                f"{row['in_flight'] / delay:.1f}",
                f"{row['cpu_ms_per_file']:.1f}",
                f"{row['moto_cpu_ms_per_file']:.1f}",
                batch,
            ]
        )
    out.append(
        markdown_table(
            [
                "system",
                "concurrency",
                "files",
                "wall s",
                "files/s",
                "ideal files/s",
                "function CPU ms/file",
                "moto CPU ms/file",
                "batch of 10, s",
            ],
            rows,
            "llrrrrrrr",
        )
    )
    ten = next(
        r
        for r in results["throughput"]
        if r["system"] == "this project" and r["containers"] == 1 and r["per_container"] == 10
    )
    if ten["batch_seconds"]:
        b = Summary(**ten["batch_seconds"])
        out.append(
            f"\nA batch of 10 at COPY_CONCURRENCY 10: {b.median:.3f} s median ({b.min:.3f}-{b.max:.3f}, {b.n} batches);"
            f" ideal {delay:.2f} s (one copy time), sequential {BATCH_SIZE * delay:.2f} s. With the event source's"
            f" receive and delete around it, one batch every {ten['seconds'] / ten['batches']:.3f} s."
        )
    instant = next(r for r in results["calls"] if r["function"] == "copier" and r["case"].startswith("warm"))
    out.append(
        f"The same batch with copies answered at once (the calls run): {instant['invocation_seconds'][0]:.3f} s, "
        "the cost of the idempotency writes and head_object calls against the moto server."
    )
    feed = next((r["webhook_feed"] for r in results["throughput"] if r.get("webhook_feed")), None)
    if feed:
        out.append(
            f"The 2-invocation run's copy requests were queued through one webhook container: "
            f"{feed['requests'] / feed['seconds']:.0f} warm requests/s one after another, "
            f"{Summary(**feed['request_ms']).cell(1)} ms each."
        )

    out.append("\n### Calls per file (per request for the webhook)\n")
    call_rows = [
        [row["function"], row["case"], *(f"{row['calls'][key]:g}" for _, key in SERVICES)] for row in results["calls"]
    ]
    out.append(markdown_table(["function", "case", *(name for name, _ in SERVICES)], call_rows, "llrrrrr"))

    memory = results["memory"]
    out.append("\n### Memory: peak RSS of each handler process during the throughput run\n")
    out.append(
        markdown_table(
            ["function", "peak RSS MiB", "Lambda memory MB", "fits"],
            [
                [name, f"{mib(memory[key]):.0f}", limit, "yes" if mib(memory[key]) * 1.048576 <= limit else "NO"]
                for name, key, limit in (
                    ("webhook", "webhook", 128),
                    ("copier", "copier", 256),
                    ("baseline webhook", "baseline", 256),
                )
            ],
        )
    )

    package = results["package"]
    out.append(f"\n### Package size (`sam build`, {package['build_dir']})\n")
    out.append(
        markdown_table(
            ["artifact", "files", "unzipped", "zipped"],
            [
                [name, sizes["files"], human_bytes(sizes["bytes"]), human_bytes(sizes["zipped"])]
                for name, sizes in package["artifacts"].items()
            ],
        )
    )

    if "reconcile" in results:
        out.extend(reconcile_cost.report_lines(results["reconcile"]))
    if "specs" in results:
        out.extend(spec_fanout.report_lines(results["specs"], spec_fanout.COPY_DELAY))

    out.append("\n### Targets\n")
    out.append(
        markdown_table(
            ["target", "measured", "met"],
            [[t["target"], t["measured"], "yes" if t["met"] else "MISSED"] for t in results["targets"]],
            "llr",
        )
    )
    return "\n".join(out)


DOCS = BENCH.parent / "docs" / "performance.md"


def memory_of(cold: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Peak RSS (KiB) of each function's processes during the throughput run (the cold runs' too, if higher)."""
    feed = [float(r["webhook_feed"]["maxrss_kib"]) for r in rows if r.get("webhook_feed")]
    return {
        "webhook": max([*feed, *cold["webhook"]["maxrss_kib"]]),
        "copier": max(
            [float(r["maxrss_kib"]) for r in rows if r["system"] == "this project"] + cold["copier"]["maxrss_kib"]
        ),
        "baseline": max(
            [float(r["maxrss_kib"]) for r in rows if r["system"] == "baseline"] + cold["baseline"]["maxrss_kib"]
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per function for cold starts (7)")
    parser.add_argument("--warm", type=int, default=200, help="warm webhook requests per process (200)")
    parser.add_argument("--warm-runs", type=int, default=5, help="processes for the warm webhook figures (5)")
    parser.add_argument("--files", type=int, default=None, help="files per throughput run (default: up to 1,000)")
    parser.add_argument("--copy-delay", type=float, default=0.3, help="seconds each remote copy takes (0.3)")
    parser.add_argument("--quick", action="store_true", help="a short run to try the benchmark out (not for figures)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--plot", type=Path, default=PLOT)
    parser.add_argument(
        "--docs", type=Path, default=DOCS, help="the document whose bench markers get the tables (not with --quick)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.warm, args.warm_runs, args.files = 2, 50, 2, args.files or 40

    started = time.monotonic()
    results: dict[str, Any] = {
        "machine": machine(),
        "config": {
            "runs": args.runs,
            "warm": args.warm,
            "warm_runs": args.warm_runs,
            "files": args.files,
            "copy_delay": args.copy_delay,
            "batch_size": BATCH_SIZE,
            "quick": args.quick,
        },
    }
    results["package"] = package_sizes()
    with moto_server() as endpoint:
        os.environ.update(aws_env(endpoint))
        with LocalFlow.start(endpoint, name="bench") as flow:
            flow.emulator.already_exists_with_result = True  # the baseline reads `result`; the product takes both
            scratch = flow.sqs.create_queue(QueueName="bench-scratch")["QueueUrl"]
            # Webhook runs other than the throughput feed send to a scratch queue, leaving the copy queue alone.
            fns = {label: fn for label, fn in functions(flow, endpoint).items()}
            fns["webhook"] = fns["webhook"].with_env(COPY_QUEUE_URL=scratch)
            fns["reconciler"] = fns["reconciler"].with_env(COPY_QUEUE_URL=scratch)  # what its window finds
            results["cold_start"] = cold_starts(flow, fns, args.runs)
            results["first_request"] = first_request.measure(
                fns["webhook"].env, flow.stack.secret_id, scratch, args.runs
            )
            results["webhook_warm"] = webhook_warm(fns, args.warm_runs, args.warm)
            results["calls"] = calls_per_file(flow, fns)
            results["throughput"] = throughput(flow, fns, args.copy_delay, args.files, SETUPS)
            results["reconcile"] = reconcile_cost.measure(flow)
            results["specs"] = spec_fanout.measure(flow, files=min(args.files or spec_fanout.FILES, spec_fanout.FILES))
    results["memory"] = memory_of(results["cold_start"], results["throughput"])
    results["load_after"] = list(os.getloadavg())
    results["seconds"] = time.monotonic() - started
    results["targets"] = targets(results)
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    m = results["machine"]
    plot_throughput(
        results["throughput"],
        args.copy_delay,
        args.plot,
        f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, load {m['load_average'][0]:.2f}",
    )
    tables = report(results)
    print()
    print(tables)
    written = [args.out, args.plot]
    if not args.quick:  # a quick run's figures are not worth keeping
        args.docs.write_text(with_tables(args.docs.read_text(encoding="utf-8"), tables), encoding="utf-8")
        written.append(args.docs)
    print(f"\nWrote {', '.join(str(path) for path in written)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
