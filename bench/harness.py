"""The parent side of `make bench`: functions as fresh processes ("containers"), their events, and the machine.

A container is `python -m bench.lambda_process` with the function's environment (template.yaml's, resolved against
the local stack, as the demo and the tests use it) and a spec of what to invoke. Containers can be started together
and released at one instant ("go"), so concurrent ones are measured from the same start.
"""

from __future__ import annotations

import json
import os
import platform
import select
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devkit.emulator import EmulatedFile
from devkit.flow import LocalFlow
from devkit.make_events import signed_event
from devkit.servers import FAKE_AWS_ENV
from devkit.sqs_poller import queue_arn, to_lambda_record
from uploadcare_s3_copy.webhook.rules import copy_request_from

ROOT = Path(__file__).resolve().parent.parent
PYTHONPATH = os.pathsep.join(
    str(ROOT / part) for part in ("layers/common", "functions/webhook", "functions/copier", "functions/reconciler", ".")
)
READY_TIMEOUT_SECONDS = 120.0
RUN_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class Function:
    """A function under test: its handler, Lambda memory size and timeout, and its environment."""

    label: str
    target: str  # "module:handler"
    memory_mb: int
    timeout_seconds: float
    env: Mapping[str, str] = field(default_factory=dict)

    def with_env(self, **changes: str) -> Function:
        return Function(self.label, self.target, self.memory_mb, self.timeout_seconds, {**self.env, **changes})


def functions(flow: LocalFlow, aws_endpoint: str) -> dict[str, Function]:
    """The three product functions and the baseline, wired to the local stack. Logs at INFO, the template's default."""
    common = {**FAKE_AWS_ENV, "AWS_ENDPOINT_URL": aws_endpoint, "LOG_LEVEL": "INFO", "POWERTOOLS_LOG_LEVEL": "INFO"}
    stack = flow.stack
    baseline_env = {
        name: stack.copier_env()[name]
        for name in ("UPLOADCARE_SECRET_ID", "UPLOADCARE_API_URL", "COPY_TARGET", "TARGET_BUCKET", "COPY_PATTERN")
    }
    return {
        "webhook": Function("webhook", "handle_webhook:lambda_handler", 128, 5, {**stack.webhook_env(), **common}),
        "copier": Function("copier", "handle_copy:lambda_handler", 256, 300, {**stack.copier_env(), **common}),
        "reconciler": Function(
            "reconciler", "handle_reconcile:lambda_handler", 256, 300, {**stack.reconciler_env(), **common}
        ),
        "baseline": Function(
            "baseline",
            "bench.baseline.handle_baseline:lambda_handler",
            # The baseline copies inside the request, so it needs the copier's settings and Uploadcare's keys.
            256,
            30,
            {
                **stack.webhook_env(),
                **baseline_env,
                **common,
                "POWERTOOLS_SERVICE_NAME": "baseline-webhook",
                "POWERTOOLS_TRACE_DISABLED": "true",
            },
        ),
    }


# --- events --------------------------------------------------------------------------------------------------------


def new_files(flow: LocalFlow, count: int, *, size: int = 1024) -> list[EmulatedFile]:
    """Files registered in the emulator; each copy writes `size` bytes to the bucket on the moto server."""
    return [flow.add_file(original_filename=f"bench {n:04d}.jpg", size=size) for n in range(count)]


def webhook_event(flow: LocalFlow, file: EmulatedFile) -> dict[str, Any]:
    """The signed HTTP API event Uploadcare's `file.uploaded` delivery becomes."""
    return signed_event(flow.webhook_body(file), flow.stack.spec.signing_secret)


def copy_message(flow: LocalFlow, file: EmulatedFile) -> str:
    """The copy request the webhook queues for a file (the SQS message body)."""
    return copy_request_from(flow.webhook_body(file)).to_message()


def sqs_event(flow: LocalFlow, files: Sequence[EmulatedFile]) -> dict[str, Any]:
    """A Lambda SQS event with one copy request per file, as the event source mapping would deliver it."""
    arn = queue_arn(flow.stack.queue_url)
    now = str(int(time.time() * 1000))
    records = [
        to_lambda_record(
            {
                "MessageId": str(uuidlib.uuid4()),  # a redelivered webhook is a new message with a new id
                "ReceiptHandle": f"bench-{uuidlib.uuid4().hex}",
                "Body": copy_message(flow, file),
                "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": now},
            },
            arn,
        )
        for file in files
    ]
    return {"Records": records}


def enqueue(flow: LocalFlow, files: Sequence[EmulatedFile]) -> None:
    """Puts the files' copy requests on the copy queue, ten per SendMessageBatch."""
    for start in range(0, len(files), 10):
        chunk = files[start : start + 10]
        flow.sqs.send_message_batch(
            QueueUrl=flow.stack.queue_url,
            Entries=[{"Id": str(n), "MessageBody": copy_message(flow, file)} for n, file in enumerate(chunk)],
        )


# --- containers ----------------------------------------------------------------------------------------------------


class ContainerError(RuntimeError):
    pass


class ContainerProcess:
    """One started child process; `result()` waits for it and returns what it recorded."""

    def __init__(self, function: Function, spec: Mapping[str, Any], *, count_calls: bool, gated: bool) -> None:
        self.function = function
        self._folder = tempfile.TemporaryDirectory(prefix="bench-")
        folder = Path(self._folder.name)
        self._result_path = folder / "result.json"
        self._stderr_path = folder / "stderr.txt"
        self.ready_read: int | None = None
        full_spec = {
            **spec,
            "function_name": function.label,
            "memory_mb": function.memory_mb,
            "timeout_seconds": function.timeout_seconds,
        }
        pass_fds: tuple[int, ...] = ()
        if gated:
            self.ready_read, ready_write = os.pipe()
            full_spec["ready_fd"] = ready_write
            pass_fds = (ready_write,)
        spec_path = folder / "spec.json"
        spec_path.write_text(json.dumps(full_spec), encoding="utf-8")
        command = [
            sys.executable,
            "-m",
            "bench.lambda_process",
            function.target,
            str(spec_path),
            str(self._result_path),
        ]
        if count_calls:
            command.append("--count-calls")
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": PYTHONPATH,
            "PYTHONDONTWRITEBYTECODE": "1",
            **function.env,
        }
        with self._stderr_path.open("wb") as stderr:
            # The function's log lines and EMF go to stdout, as on Lambda; not kept here.
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command,
                env=env,
                cwd=ROOT,
                stdin=subprocess.PIPE if gated else subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                pass_fds=pass_fds,
            )
        if gated:
            os.close(pass_fds[0])

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        if self.ready_read is None:
            return
        readable, _, _ = select.select([self.ready_read], [], [], timeout)
        signal = os.read(self.ready_read, 1) if readable else b""
        os.close(self.ready_read)
        self.ready_read = None
        if signal != b"1":
            self.process.kill()
            self.process.wait()
            raise ContainerError(f"{self.function.label} container did not get ready:\n{self._stderr()}")

    def go(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.write(b"go\n")
            self.process.stdin.close()

    def result(self, timeout: float = RUN_TIMEOUT_SECONDS) -> dict[str, Any]:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise ContainerError(f"{self.function.label} container ran over {timeout} s") from None
        try:
            if code != 0:
                raise ContainerError(f"{self.function.label} container exited {code}:\n{self._stderr()}")
            result: dict[str, Any] = json.loads(self._result_path.read_text(encoding="utf-8"))
            return result
        finally:
            self._folder.cleanup()

    def _stderr(self) -> str:
        return self._stderr_path.read_text(encoding="utf-8", errors="replace")[-4000:]


def run_container(function: Function, spec: Mapping[str, Any], *, count_calls: bool = False) -> dict[str, Any]:
    return ContainerProcess(function, spec, count_calls=count_calls, gated=False).result()


def run_together(jobs: Sequence[tuple[Function, Mapping[str, Any]]]) -> tuple[float, list[dict[str, Any]]]:
    """Starts every container, waits until all are warm and ready, releases them at once; (go time, results)."""
    containers = [ContainerProcess(function, spec, count_calls=False, gated=True) for function, spec in jobs]
    try:
        for container in containers:
            container.wait_ready()
        went = time.monotonic()
        for container in containers:
            container.go()
        return went, [container.result() for container in containers]
    finally:
        for container in containers:
            if container.process.poll() is None:
                container.process.kill()
                container.process.wait()


# --- the machine ---------------------------------------------------------------------------------------------------


def child_cpu_seconds(command_part: str) -> float:
    """CPU time (user + system) so far of this process's children whose command line has `command_part`.

    Reads /proc (Linux); 0.0 elsewhere. Used to see how busy the moto server (every AWS call) was during a run.
    """
    me, total, tick = os.getpid(), 0.0, os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text(encoding="ascii").rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == me and command_part in cmdline:
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime (stat fields 14 and 15)
    return total


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()),
    }
