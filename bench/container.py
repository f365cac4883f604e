"""What one benchmark container does once its handler is imported (`bench.lambda_process` times that import).

The spec (JSON, written by the parent) says:
  function_name, memory_mb, timeout_seconds   the Lambda context each invocation gets
  phases: [{name, events, gate?}]            events invoked one after another; `gate` waits for the parent's "go"
  poll: {queue_url, batch_size, gate?}        then the SQS event source mapping: receive up to batch_size, invoke,
                                              delete what succeeded (one DeleteMessageBatch), give failures back
  stub: "webhook"                             the secret read and SendMessage stubbed out (the handler's own time)
  signing_secret                              what the stubbed secret holds
  emulator_url                                read the emulator's request counters around each phase
  ready_fd                                    written to when ready for "go" (a line on stdin)
The result (JSON) has the import time, per phase the durations of each invocation, their answers, the AWS calls
(when counted) and Uploadcare calls made, monotonic start/end times (comparable across processes on Linux), and
the process's peak RSS
(`peak_rss_kib`).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from devkit.lambda_context import LambdaContext
from devkit.sqs_poller import queue_arn, to_lambda_record

Handler = Callable[[dict[str, Any], Any], Any]


def _stub_webhook_aws(signing_secret: str) -> None:
    """As bench/webhook_cold_warm.py does: no Secrets Manager read, no SendMessage; everything else runs."""
    from uploadcare_s3_copy import secrets  # noqa: PLC0415
    from uploadcare_s3_copy.webhook import adapters  # noqa: PLC0415

    def get_secret(_secret_id: str, _force: bool) -> dict[str, str]:
        return {"webhook_signing_secret": signing_secret}

    def send(_self: Any, _message: str) -> None:
        return None

    secrets.secrets_manager_fetcher = lambda config=None: get_secret
    adapters.SqsCopyQueue.send = send  # type: ignore[method-assign,assignment]


def _uploadcare_counts(emulator_url: str | None) -> dict[str, int]:
    if not emulator_url:
        return {}
    with urllib.request.urlopen(f"{emulator_url}__emulator__/counters", timeout=10) as answer:  # noqa: S310 - loopback
        counters: dict[str, Any] = json.load(answer)
    return {str(name): int(count) for name, count in counters["requests"].items()}


def _aws_counts(count_calls: bool) -> dict[str, int]:
    if not count_calls:
        return {}
    from bench import call_counter  # noqa: PLC0415

    return call_counter.snapshot()


def _delta(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    return {name: count - before.get(name, 0) for name, count in after.items() if count != before.get(name, 0)}


def _answer_ok(response: Any) -> tuple[bool, str]:
    """An HTTP answer is fine when 2xx; an SQS batch answer when it lists no item failures."""
    if isinstance(response, Mapping) and "statusCode" in response:
        status = int(response["statusCode"])
        return 200 <= status < 300, str(status)
    failures = (response or {}).get("batchItemFailures", []) if isinstance(response, Mapping) else []
    return not failures, "batch-ok" if not failures else f"batch-{len(failures)}-failed"


def _wait_for_go(ready_fd: int | None) -> float:
    if ready_fd is not None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)
    sys.stdin.readline()
    return time.monotonic()


class Container:
    def __init__(self, handler: Handler, spec: Mapping[str, Any], count_calls: bool) -> None:
        self.handler = handler
        self.spec = spec
        self.count_calls = count_calls
        self.ready_fd: int | None = spec.get("ready_fd")

    def context(self) -> LambdaContext:
        return LambdaContext(
            function_name=str(self.spec.get("function_name", "bench")),
            memory_limit_in_mb=int(self.spec.get("memory_mb", 128)),
            timeout_seconds=float(self.spec.get("timeout_seconds", 30)),
        )

    def _gate(self, wanted: bool) -> float | None:
        if not wanted:
            return None
        went = _wait_for_go(self.ready_fd)
        self.ready_fd = None
        return went

    def invoke_all(self, phase: Mapping[str, Any]) -> dict[str, Any]:
        went = self._gate(bool(phase.get("gate")))
        aws_before = _aws_counts(self.count_calls)
        uc_before = _uploadcare_counts(self.spec.get("emulator_url"))
        durations: list[float] = []
        answers: Counter[str] = Counter()
        failures = 0
        cpu = 0.0
        started = time.monotonic()
        for event in phase["events"]:
            began, began_cpu = time.perf_counter(), time.process_time()
            response = self.handler(event, self.context())
            durations.append(time.perf_counter() - began)
            cpu += time.process_time() - began_cpu
            ok, answer = _answer_ok(response)
            answers[answer] += 1
            failures += 0 if ok else 1
        ended = time.monotonic()
        return {
            "durations": durations,
            "cpu_seconds": cpu,  # the handler's own CPU time, all its threads
            "answers": dict(answers),
            "failures": failures,
            "went": went,
            "started": started,
            "ended": ended,
            "aws_calls": _delta(_aws_counts(self.count_calls), aws_before),
            "uploadcare_calls": _delta(_uploadcare_counts(self.spec.get("emulator_url")), uc_before),
        }

    def poll(self, poll: Mapping[str, Any]) -> dict[str, Any]:
        """Lambda's SQS event source mapping, one poller for this container, until the queue answers empty twice."""
        import boto3  # noqa: PLC0415 - its own session: the event source's calls are not the function's

        sqs = boto3.session.Session().client("sqs")
        queue_url = str(poll["queue_url"])
        arn = queue_arn(queue_url)
        went = self._gate(bool(poll.get("gate")))
        batches: list[dict[str, float]] = []
        deleted = given_back = empty = 0
        cpu = 0.0
        started = ended = time.monotonic()
        while empty < 2:
            messages = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=int(poll.get("batch_size", 10)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not messages:
                empty += 1
                time.sleep(0.05)  # records another container gave back become visible again
                continue
            empty = 0
            event = {"Records": [to_lambda_record(message, arn) for message in messages]}
            began, began_cpu = time.perf_counter(), time.process_time()
            response = self.handler(event, self.context())
            took = time.perf_counter() - began
            cpu += time.process_time() - began_cpu  # only the invocation: the poller's own work is not the function's
            failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)],
                )
            for message in messages:
                if message["MessageId"] in failed:
                    sqs.change_message_visibility(
                        QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
            deleted += len(done)
            given_back += len(failed)
            batches.append({"records": len(messages), "seconds": took, "failed": len(failed)})
            ended = time.monotonic()
        return {
            "batches": batches,
            "cpu_seconds": cpu,
            "deleted": deleted,
            "given_back": given_back,
            "went": went,
            "started": started,
            "ended": ended,
        }


def peak_rss_kib() -> int:
    """This process's peak resident set size, KiB: `VmHWM` of /proc/self/status on Linux.

    Not `getrusage(RUSAGE_SELF).ru_maxrss` on its own: Linux carries the parent's peak RSS into a child across
    fork/vfork + exec (the old address space's high-water mark is folded into ru_maxrss at exec), so a container
    started by a big parent would report the parent's size. VmHWM belongs to the address space exec created.
    """
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run(handler: Handler, import_seconds: float, spec_path: str, result_path: str, *, count_calls: bool) -> int:
    spec: dict[str, Any] = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    if spec.get("stub") == "webhook":
        _stub_webhook_aws(str(spec["signing_secret"]))
    container = Container(handler, spec, count_calls)
    phases = {str(phase["name"]): container.invoke_all(phase) for phase in spec.get("phases", [])}
    polled = container.poll(spec["poll"]) if spec.get("poll") else None
    result = {
        "import_seconds": import_seconds,
        "phases": phases,
        "poll": polled,
        "maxrss_kib": peak_rss_kib(),
        "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,  # includes the parent's: see above
    }
    Path(result_path).write_text(json.dumps(result), encoding="utf-8")
    return 0
