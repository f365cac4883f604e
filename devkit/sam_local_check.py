"""`make test-sam-local`: the built functions, run by real `sam local invoke` in a Lambda-like container.

Started by scripts/sam-local/run.sh, which provides a Docker engine (DOCKER_HOST), the runtime image and a `sam build`
of template.yaml for the host's architecture. This driver then:

* starts a moto server (AWS) and the Uploadcare emulator bound to the Docker bridge's gateway address, the only
  address the function containers can reach, and only for the length of this check;
* creates the stack's queues, table, secret and bucket on moto from template.yaml (`devkit.local_resources`), with the
  emulator's keys and the samples' signing secret, and registers the sample file of events/sqs-copy-request.json in
  the emulator;
* runs `sam local invoke` for every sample event, pointing the functions at those servers through the template's own
  parameters (`LocalAwsEndpointUrl`, `UploadcareApiUrl`) and giving the variables SAM cannot resolve (the `!Ref`s of
  queues and tables) with `--env-vars`;
* checks what sam printed and what the servers hold afterwards, and prints one line per check and the timings.

Exits 1 when a check fails, naming the function's own error (an import error of a broken package, a timeout, ...).
Every server it started is stopped, on success, failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import boto3

from devkit import ROOT
from devkit.cfn_template import load_template
from devkit.local_resources import DEMO_PUBLIC_KEY, DEMO_SECRET_KEY, LocalStack, StackSpec, create_stack, read_queue
from devkit.servers import FAKE_AWS_ENV, _die_with_parent, stop_process, wait_until_ready

EVENTS = ROOT / "events"
TEMPLATE = ROOT / "template.yaml"
STORAGE = "sam-local-storage"
WEBHOOK = "WebhookFunction"
COPIER = "CopierFunction"
RECONCILER = "ReconcilerFunction"
# The copier's timeout in these runs: a hang shows up in a minute, not in the template's five.
COPIER_TIMEOUT_SECONDS = "60"
INVOKE_TIMEOUT_SECONDS = 240  # a whole `sam local invoke`: image build, container start, the function's own timeout


# ---------------------------------------------------------------------------------------------------------------
# What the template says and what sam prints (plain functions, unit-tested)


def variables_sam_cannot_resolve(template: Mapping[str, Any], function: str) -> set[str]:
    """The function's environment variables whose value `sam local invoke` cannot compute from the parameters.

    sam resolves a parameter's `!Ref` itself (with `--parameter-overrides`), but gives a resource's `!Ref` its logical
    id (`COPY_DLQ_URL=DeadLetterQueue`) and leaves an empty string for what it cannot evaluate (`!If` with
    `AWS::NoValue`, `!GetAtt`). The check passes those with `--env-vars` (which overrides only variables the template
    declares), with the values the template gives them for the local stack's resources and parameters.
    """
    known = set(template.get("Parameters", {})) | {"AWS::StackName", "AWS::Region", "AWS::AccountId", "AWS::Partition"}
    shared = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    own = template["Resources"][function].get("Properties", {}).get("Environment", {}).get("Variables", {})
    return {
        name
        for name, value in {**shared, **own}.items()
        if isinstance(value, dict) and not (set(value) == {"Ref"} and value["Ref"] in known)
    }


def parameter_overrides(parameters: Mapping[str, str]) -> str:
    """`--parameter-overrides` in sam's `Key=Value Key=Value` form; values must not contain spaces."""
    for name, value in parameters.items():
        if not value or any(character.isspace() for character in value):
            raise ValueError(f"parameter {name}={value!r}: sam cannot take an empty value or one with spaces here")
    return " ".join(f"{name}={value}" for name, value in parameters.items())


class InvokeFailed(Exception):
    """The function did not answer: an error it raised (import errors included), a timeout, or no answer at all."""


def function_answer(stdout: str, stderr: str) -> dict[str, Any]:
    """The function's answer from `sam local invoke`'s output: the JSON object on its last stdout line.

    sam exits 0 even when the function failed or timed out, so the answer itself says whether it worked.
    """
    if "Task timed out" in stderr or "Task timed out" in stdout:
        raise InvokeFailed("the function timed out: " + _last_line_with(stderr + stdout, "Task timed out"))
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise InvokeFailed("sam printed no answer; its last lines:\n" + _tail(stderr))
    try:
        answer = json.loads(lines[-1])
    except ValueError:
        raise InvokeFailed(f"the answer is not JSON: {lines[-1][:300]!r}; sam's last lines:\n{_tail(stderr)}") from None
    if not isinstance(answer, dict):
        raise InvokeFailed(f"the answer is not a JSON object: {lines[-1][:300]!r}")
    if "errorType" in answer or "errorMessage" in answer:
        raise InvokeFailed(f"{answer.get('errorType', 'error')}: {answer.get('errorMessage', '')}")
    return answer


def _last_line_with(text: str, needle: str) -> str:
    return next((line.strip() for line in reversed(text.splitlines()) if needle in line), needle)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def http_answer(answer: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """(statusCode, parsed JSON body) of an HTTP API answer."""
    body = answer.get("body") or "{}"
    parsed = json.loads(body)
    return int(answer["statusCode"]), parsed if isinstance(parsed, dict) else {"body": parsed}


# ---------------------------------------------------------------------------------------------------------------
# Servers on the bridge address


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _start(command: Sequence[str], ready_url: str, log: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "ab") as output:
        process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509 - only prctl, no locks
        )
    try:
        wait_until_ready(ready_url, process)
    except BaseException:
        stop_process(process)
        raise
    return process


@contextmanager
def moto_on(host: str, log: Path) -> Iterator[str]:
    port = free_port(host)
    command = [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)]
    process = _start(command, f"http://{host}:{port}/moto-api/", log, {**FAKE_AWS_ENV, "MOTO_PORT": str(port)})
    try:
        yield f"http://{host}:{port}"
    finally:
        stop_process(process)


@contextmanager
def emulator_on(host: str, aws_endpoint: str, storage: str, log: Path) -> Iterator[str]:
    port = free_port(host)
    command = [
        sys.executable,
        "-m",
        "devkit.emulator",
        "--host",
        host,
        "--port",
        str(port),
        "--public-key",
        DEMO_PUBLIC_KEY,
        "--storage",
        storage,
        "--aws-endpoint",
        aws_endpoint,
    ]
    url = f"http://{host}:{port}/"
    # The secret key through the environment rather than the command line, where `ps` would show it.
    process = _start(command, url + "__emulator__/", log, {**FAKE_AWS_ENV, "EMULATOR_SECRET_KEY": DEMO_SECRET_KEY})
    try:
        yield url
    finally:
        stop_process(process)


def emulator_admin(url: str, method: str, path: str, payload: Any = None) -> Any:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(  # noqa: S310 - the emulator we started, on the bridge address
        url + "__emulator__/" + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


# ---------------------------------------------------------------------------------------------------------------
# sam local invoke


@dataclass(frozen=True)
class Invoker:
    sam: Path
    template: Path
    architecture: str
    aws_endpoint: str
    logs: Path
    skip_pull_image: bool

    def environment(self) -> dict[str, str]:
        """sam's own environment, built from scratch: sam copies any shell variable the template declares into the
        function (LOG_LEVEL, AWS_ENDPOINT_URL, ...), so nothing of the caller's environment may leak in."""
        keep = ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "TMPDIR")
        env = {name: os.environ[name] for name in keep if name in os.environ}
        env.update(FAKE_AWS_ENV)
        env.update(
            {
                "SAM_CLI_TELEMETRY": "0",
                "AWS_MAX_ATTEMPTS": "1",  # sam's own AWS calls fail at once instead of retrying for seconds
                "AWS_ENDPOINT_URL_STS": self.aws_endpoint,  # sam asks STS who it is: let moto answer
                "LANG": "C.UTF-8",
            }
        )
        return env

    def invoke(
        self, label: str, function: str, event: Path, parameters: Mapping[str, str], env_vars: Mapping[str, Any]
    ) -> Invocation:
        env_file = self.logs / f"{label}.env-vars.json"  # kept with the log: the command can be run again by hand
        env_file.write_text(json.dumps(env_vars, indent=2))
        command = [
            str(self.sam),
            "local",
            "invoke",
            function,
            "--template",
            str(self.template),
            "--event",
            str(event),
            "--env-vars",
            str(env_file),
            "--parameter-overrides",
            parameter_overrides({"Architecture": self.architecture, **parameters}),
        ]
        if self.skip_pull_image:
            command.append("--skip-pull-image")
        started = time.monotonic()
        returncode, stdout, stderr = run_sam(command, self.environment())
        seconds = time.monotonic() - started
        log = self.logs / f"{label}.log"
        log.write_text(f"$ {' '.join(command)}\n--- stdout\n{stdout}\n--- stderr\n{stderr}")
        if returncode != 0:
            raise InvokeFailed(f"sam local invoke exited with {returncode}; its last lines:\n{_tail(stderr)}")
        return Invocation(label, function_answer(stdout, stderr), seconds, log)


def _own_session_with_default_sigint() -> None:
    """sam runs in a session of its own (a terminal's Ctrl-C reaches this driver, which then stops sam), and with the
    default SIGINT disposition even when this driver was started with SIGINT ignored (a background job of run.sh)."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_sam(command: Sequence[str], env: Mapping[str, str]) -> tuple[int, str, str]:
    """Runs sam to the end; interrupted, sam gets SIGINT first, so it removes its container as on Ctrl-C."""
    process = subprocess.Popen(
        list(command),
        cwd=ROOT,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_own_session_with_default_sigint,  # noqa: PLW1509 - setsid and a signal disposition only
    )
    try:
        stdout, stderr = process.communicate(timeout=INVOKE_TIMEOUT_SECONDS)
    except BaseException as stopped:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        if isinstance(stopped, subprocess.TimeoutExpired):
            raise InvokeFailed(f"sam local invoke did not finish within {INVOKE_TIMEOUT_SECONDS} s") from stopped
        raise
    return process.returncode, stdout, stderr


@dataclass(frozen=True)
class Invocation:
    label: str
    answer: dict[str, Any]
    seconds: float
    log: Path


# ---------------------------------------------------------------------------------------------------------------
# The check


@dataclass
class Report:
    out: Any = sys.stdout
    failures: list[str] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)

    def check(self, ok: bool, what: str, detail: str = "") -> None:
        print(f"  {'✓' if ok else '✗'} {what}" + ("" if ok or not detail else f": {detail}"), file=self.out, flush=True)
        if not ok:
            self.failures.append(what + (f": {detail}" if detail else ""))


@dataclass(frozen=True)
class SampleFile:
    message_id: str
    uuid: str
    original_filename: str
    size: int
    mime_type: str

    @classmethod
    def from_sqs_event(cls, path: Path) -> SampleFile:
        (record,) = json.loads(path.read_text())["Records"]
        body = json.loads(record["body"])
        return cls(record["messageId"], body["uuid"], body["original_filename"], int(body["size"]), body["mime_type"])


def local_spec(name: str, aws_endpoint: str) -> StackSpec:
    """A stack whose functions send their AWS calls to the local endpoint, as `LocalAwsEndpointUrl` makes them."""
    return StackSpec(name=name, storage=STORAGE, log_level="INFO", parameters={"LocalAwsEndpointUrl": aws_endpoint})


def stack_parameters(stack: LocalStack, aws_endpoint: str, api_url: str) -> dict[str, str]:
    return {
        "UploadcareSecretId": stack.secret_id,
        "UploadcareStorageName": stack.spec.storage,
        "TargetBucketName": stack.bucket,
        "UploadcareApiUrl": api_url,
        "LocalAwsEndpointUrl": aws_endpoint,
        "CopierTimeoutSeconds": COPIER_TIMEOUT_SECONDS,
        "LogLevel": "INFO",
    }


def env_vars_for(stack: LocalStack, template: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """`--env-vars`: what sam cannot resolve, as the template resolves it for the local stack (resources and
    parameters, `LocalAwsEndpointUrl` included). A variable the template leaves out here is left out there too."""
    return {
        function: {
            name: environment[name]
            for name in sorted(variables_sam_cannot_resolve(template, function))
            if name in environment
        }
        for function, environment in stack.environments.items()
    }


def queue_depth(queue_url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def bucket_objects(bucket: str) -> dict[str, int]:
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])
    return {item["Key"]: int(item["Size"]) for item in listed}


def run_checks(invoker: Invoker, stack: LocalStack, host: str, aws_endpoint: str, api_url: str, report: Report) -> None:
    template = load_template(TEMPLATE)
    sample = SampleFile.from_sqs_event(EVENTS / "sqs-copy-request.json")
    emulator_admin(
        api_url,
        "POST",
        "files",
        {
            "uuid": sample.uuid,
            "original_filename": sample.original_filename,
            "size": sample.size,
            "mime_type": sample.mime_type,
        },
    )
    parameters = stack_parameters(stack, aws_endpoint, api_url)

    def invoke(label: str, function: str, event: str, on: LocalStack = stack, **changes: str) -> dict[str, Any] | None:
        env_vars = env_vars_for(on, template)
        try:
            invocation = invoker.invoke(label, function, EVENTS / event, {**parameters, **changes}, env_vars)
        except InvokeFailed as failure:
            report.check(False, f"{function} answered {event}", str(failure))
            return None
        report.timings.append((f"sam local invoke {function} -e events/{event}", invocation.seconds))
        return invocation.answer

    print(f"\nWebhookFunction (queue {stack.queue_url})", file=report.out)
    answer = invoke("webhook-file-uploaded", WEBHOOK, "webhook-file-uploaded.json")
    if answer is not None:
        status, body = http_answer(answer)
        report.check(
            status == 202 and body.get("status") == "queued", "signed file.uploaded -> 202 queued", str(answer)
        )
        report.check(queue_depth(stack.queue_url) == 1, "exactly one copy request on the queue")
    answer = invoke("webhook-bad-signature", WEBHOOK, "webhook-bad-signature.json")
    if answer is not None:
        status, _ = http_answer(answer)
        report.check(status == 401, "badly signed -> 401", str(answer))
        report.check(queue_depth(stack.queue_url) == 1, "nothing more queued")
    answer = invoke("webhook-other-event", WEBHOOK, "webhook-other-event.json")
    if answer is not None:
        status, body = http_answer(answer)
        report.check(status == 200 and body.get("status") == "ignored", "file.stored -> 200 ignored", str(answer))
        report.check(queue_depth(stack.queue_url) == 1, "nothing more queued")
    uuids = [json.loads(message["Body"]).get("uuid") for message in read_queue(stack.queue_url, release=True)]
    report.check(uuids == [sample.uuid], f"the queued copy request is for {sample.uuid}", f"queued: {uuids}")

    print(f"\nCopierFunction (bucket {stack.bucket}, Uploadcare emulator {api_url})", file=report.out)
    answer = invoke("copier-copies", COPIER, "sqs-copy-request.json")
    if answer is not None:
        report.check(answer == {"batchItemFailures": []}, "batchItemFailures is empty", str(answer))
        objects = bucket_objects(stack.bucket)
        report.check(len(objects) == 1, "one object in the bucket", str(objects))
        for key in objects:
            size = int(boto3.client("s3").head_object(Bucket=stack.bucket, Key=key)["ContentLength"])
            report.check(size == sample.size, f"head_object {key!r}: {size} bytes, expected {sample.size}")
        copies = emulator_admin(api_url, "GET", "counters")["files"].get(sample.uuid, {}).get("copies", 0)
        report.check(copies == 1, "Uploadcare made exactly one copy", f"copies: {copies}")
        report.check(queue_depth(stack.dlq_url) == 0, "nothing in the dead-letter queue")

    check_reconciler(invoke, stack, api_url, report)

    # A stack of its own, so the copy just recorded as done (idempotency) does not answer for Uploadcare.
    offline = create_stack(local_spec(f"samlocal-{os.getpid()}-offline", aws_endpoint))
    closed = f"http://{host}:{free_port(host)}/"  # nothing listens there: connections are refused at once
    print(f"\nCopierFunction with Uploadcare unreachable ({closed})", file=report.out)
    answer = invoke(
        "copier-uploadcare-unreachable",
        COPIER,
        "sqs-copy-request.json",
        on=offline,
        **stack_parameters(offline, aws_endpoint, closed),
    )
    if answer is not None:
        expected = {"batchItemFailures": [{"itemIdentifier": sample.message_id}]}
        report.check(answer == expected, "the record is reported in batchItemFailures (SQS redelivers it)", str(answer))
        report.check(queue_depth(offline.dlq_url) == 0, "not in the dead-letter queue")
        report.check(bucket_objects(offline.bucket) == {}, "not copied")


def check_reconciler(
    invoke: Callable[..., dict[str, Any] | None], stack: LocalStack, api_url: str, report: Report
) -> None:
    """The reconciler's scheduled run queues a file no webhook announced; a full run finds the copied sample."""
    # A file whose webhook never came, uploaded an hour ago: older than the grace, inside the overlap.
    missed = "5b1c0d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    emulator_admin(
        api_url,
        "POST",
        "files",
        {"uuid": missed, "original_filename": "missed.txt", "size": 4096, "datetime_uploaded": hour_ago},
    )
    print(f"\nReconcilerFunction (ledger {stack.ledger_table})", file=report.out)
    before = queue_depth(stack.queue_url)
    answer = invoke("reconcile-scheduled", RECONCILER, "reconcile-scheduled.json")
    if answer is not None:
        found = {key: answer.get(key) for key in ("checked", "verified", "queued", "complete")}
        expected_found = {"checked": 1, "verified": 0, "queued": 1, "complete": True}
        report.check(found == expected_found, "the scheduled run queued the file no webhook announced", str(answer))
        report.check(queue_depth(stack.queue_url) == before + 1, "exactly one copy request more on the queue")
    answer = invoke("reconcile-full", RECONCILER, "reconcile-full.json", ReconcileGraceSeconds="0")
    if answer is not None:
        found = {key: answer.get(key) for key in ("checked", "verified", "queued", "complete")}
        expected_found = {"checked": 2, "verified": 1, "queued": 1, "complete": True}
        report.check(found == expected_found, "a full run finds the copied file in the ledger", str(answer))


def _stop_on_sigterm() -> None:
    def raise_interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, raise_interrupt)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.sam_local_check", description=__doc__.split("\n")[0])
    parser.add_argument("--sam", type=Path, required=True, help="the sam executable")
    parser.add_argument("--template", type=Path, required=True, help="the built template (sam build's output)")
    parser.add_argument("--host", required=True, help="the Docker bridge's gateway address (the host's end)")
    parser.add_argument("--architecture", required=True, choices=["x86_64", "arm64"])
    parser.add_argument("--logs", type=Path, required=True, help="folder for each invocation's output")
    parser.add_argument("--pull", action="store_true", help="let sam pull the runtime image (a user's engine)")
    args = parser.parse_args(argv)
    _stop_on_sigterm()
    args.logs.mkdir(parents=True, exist_ok=True)
    report = Report()
    started = time.monotonic()
    with ExitStack() as servers:
        aws_endpoint = servers.enter_context(moto_on(args.host, args.logs / "moto.log"))
        os.environ.update({**FAKE_AWS_ENV, "AWS_ENDPOINT_URL": aws_endpoint})
        stack = create_stack(local_spec(f"samlocal-{os.getpid()}", aws_endpoint))
        storage = f"{STORAGE}={stack.bucket}"
        api_url = servers.enter_context(emulator_on(args.host, aws_endpoint, storage, args.logs / "emulator.log"))
        print(f"AWS (moto): {aws_endpoint}   Uploadcare emulator: {api_url}   (bridge {args.host})", file=report.out)
        report.timings.append(("servers and stack ready", time.monotonic() - started))
        invoker = Invoker(args.sam, args.template, args.architecture, aws_endpoint, args.logs, not args.pull)
        run_checks(invoker, stack, args.host, aws_endpoint, api_url, report)
    print("\nTimings:", file=report.out)
    for what, seconds in report.timings:
        print(f"  {seconds:6.1f} s  {what}", file=report.out)
    print(f"  {time.monotonic() - started:6.1f} s  servers, stack and all invocations", file=report.out)
    if report.failures:
        print(f"\nsam local check FAILED ({len(report.failures)}); each invocation's output is in {args.logs}:")
        for failure in report.failures:
            print(f"  {failure}")
        return 1
    print(f"\nsam local check OK: both functions work as built, in a Lambda-like container. Logs: {args.logs}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nInterrupted: servers stopped.", file=sys.stderr)
        sys.exit(130)
