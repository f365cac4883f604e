"""`python -m devkit.invoke FUNCTION -e EVENT`: `sam local invoke` for machines without Docker.

Reads the function's handler (CodeUri + Handler) and environment from template.yaml, starts a moto server and the
local Uploadcare emulator on 127.0.0.1 (or uses `--aws-endpoint` if one is already running), builds the stack's
resources there from the same template, points the AWS clients at them, and invokes the handler in this process
with a Lambda-like context. The handler's answer is printed on stdout as JSON (like `sam local invoke`), its logs
go to stderr, and a line about what happened on the local servers follows (queued messages, copied objects).

An SQS event's copy requests name files: those are registered in the emulator first (UUID, name and size from the
request), so `-e events/sqs-copy-request.json` really copies the sample file.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import urllib.error
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devkit import up
from devkit.emulator import Storage, UploadcareEmulator
from devkit.lambda_context import LambdaContext
from devkit.local_resources import LocalStack, StackSpec, create_stack, read_queue
from devkit.servers import aws_env, moto_server
from uploadcare_s3_copy.copy_request import CopyRequest, InvalidCopyRequest
from uploadcare_s3_copy.observability import logger, metrics
from uploadcare_s3_copy_cli.base import plural

STORAGE = "local-storage"
PREFIX = "uploadcare/"


def load_handler(stack: LocalStack, function: str) -> Callable[[dict[str, Any], Any], Any]:
    """The handler the template names, imported from its CodeUri as Lambda would from the task root."""
    code_uri, _, handler = stack.handlers[function].partition(":")
    module_name, _, attribute = handler.rpartition(".")
    path = str(Path(__file__).resolve().parent.parent / code_uri)
    if path not in sys.path:
        sys.path.insert(0, path)
    handler_function: Callable[[dict[str, Any], Any], Any] = getattr(importlib.import_module(module_name), attribute)
    return handler_function


def event_shape_problem(function: str, event: Any) -> str | None:
    """Why `event` is not the kind of event `function` takes (a webhook given to the copier...), or None."""
    if not isinstance(event, dict):
        return f"the event is a JSON {type(event).__name__}, not an object"
    records = event.get("Records")
    is_sqs = isinstance(records, list) and all(
        isinstance(record, dict) and record.get("eventSource") == "aws:sqs" for record in records
    )
    is_http = isinstance(event.get("requestContext"), dict) and "http" in event["requestContext"]
    kind = "an SQS event" if is_sqs else "an API Gateway HTTP API event" if is_http else "another event"
    if function == "CopierFunction" and not is_sqs:
        return (
            f"CopierFunction takes an SQS event of copy requests "
            f'({{"Records": [{{"eventSource": "aws:sqs", "body": "<copy request JSON>", ...}}]}}, as in '
            f"events/sqs-copy-request.json); this is {kind}"
        )
    if function == "WebhookFunction" and not is_http:
        return (
            "WebhookFunction takes an API Gateway HTTP API (payload 2.0) event "
            '({"requestContext": {"http": {"method": "POST", ...}}, "headers": {...}, "body": "..."}, as in '
            f"events/webhook-file-uploaded.json); this is {kind}"
        )
    if function == "ReconcilerFunction" and (is_sqs or is_http or "Records" in event):
        return (
            'ReconcilerFunction takes its schedule\'s event ({} or {"full": true}, as in '
            f"events/reconcile-scheduled.json); this is {kind}"
        )
    return None


def register_event_files(event: dict[str, Any], add_file: Callable[..., Any]) -> list[CopyRequest]:
    """For an SQS event of copy requests: make the emulator know each file (as Uploadcare would)."""
    requests = []
    for record in event.get("Records", []):
        try:
            request = CopyRequest.from_message(record.get("body", ""))
        except InvalidCopyRequest:
            continue  # the copier will dead-letter it; nothing to register
        with contextlib.suppress(ValueError, urllib.error.HTTPError):  # already registered
            add_file(uuid=request.uuid, original_filename=request.original_filename, size=request.size)
        requests.append(request)
    return requests


@contextlib.contextmanager
def local_servers(aws_endpoint: str | None) -> Iterator[str]:
    if aws_endpoint:
        yield aws_endpoint
        return
    with moto_server() as endpoint:
        yield endpoint


@dataclass
class Target:
    """Where the function runs: its stack, how to register a file and count its copies."""

    stack: LocalStack
    endpoint: str  # the moto server's
    add_file: Callable[..., Any]
    copies: Callable[[str], int]


@contextlib.contextmanager
def new_stack(aws_endpoint: str | None) -> Iterator[Target]:
    """A moto server (or `aws_endpoint`), an emulator and a stack made for this one invocation."""
    with local_servers(aws_endpoint) as endpoint:
        os.environ.update(aws_env(endpoint))
        with UploadcareEmulator(aws_endpoint=endpoint) as emulator:
            stack = create_stack(
                StackSpec(
                    public_key=emulator.public_key,
                    secret_key=emulator.secret_key,
                    storage=STORAGE,
                    prefix=PREFIX,
                    api_url=emulator.url,
                    log_level="INFO",
                )
            )
            emulator.add_storage(Storage(STORAGE, stack.bucket, PREFIX))
            yield Target(stack, endpoint, emulator.add_file, emulator.copies)


@contextlib.contextmanager
def running_stack() -> Iterator[Target]:
    """The stack `make up` keeps running (devkit/up.py): its servers, resources and emulator, over HTTP."""
    state = up.require_up(up.state_dir())
    os.environ.update(aws_env(state.aws_endpoint))

    def add_file(**fields: Any) -> Any:
        return up.admin(state.emulator_url, "POST", "files", fields)

    def copies(uuid: str) -> int:
        files = up.admin(state.emulator_url, "GET", "counters")["files"]
        return int(files.get(uuid, {}).get("copies", 0))

    yield Target(state.local_stack(), state.aws_endpoint, add_file, copies)


def run(
    function: str, event: dict[str, Any], aws_endpoint: str | None, timeout: float | None, *, running: bool = False
) -> int:
    problem = event_shape_problem(function, event)
    if problem:
        print(f"invoke: {problem}", file=sys.stderr)
        return 2
    try:
        target_context = running_stack() if running else new_stack(aws_endpoint)
        with target_context as target:
            return _invoke(function, event, target, timeout)
    except up.UpError as error:
        print(f"invoke: {error}", file=sys.stderr)
        return 1


def _invoke(function: str, event: dict[str, Any], target: Target, timeout: float | None) -> int:
    stack = target.stack
    if function not in stack.handlers:
        print(f"invoke: no function {function!r} in template.yaml ({', '.join(stack.handlers)})", file=sys.stderr)
        return 2
    os.environ.update(stack.env_for(function))
    os.environ.update(aws_env(target.endpoint))  # whatever the template's environment says, AWS is the moto server
    metrics.namespace = os.environ["POWERTOOLS_METRICS_NAMESPACE"]
    requests = register_event_files(event, target.add_file) if function == "CopierFunction" else []
    handler = load_handler(stack, function)
    logger.registered_handler.setStream(sys.stderr)  # type: ignore[attr-defined]
    seconds = timeout if timeout is not None else stack.timeouts.get(function, 30.0)
    context = LambdaContext(function_name=function, timeout_seconds=seconds)
    with contextlib.redirect_stdout(sys.stderr):  # EMF metrics and logs to stderr, the answer to stdout
        response = handler(event, context)
    print(json.dumps(response, indent=2, ensure_ascii=False))
    queued = len(read_queue(stack.queue_url, release=True))
    dead = len(read_queue(stack.dlq_url, release=True))
    copied = sum(target.copies(request.uuid) for request in requests)
    print(
        f"local servers: {plural(queued, 'message')} on the copy queue, {dead} in the DLQ, "
        f"{plural(copied, 'object')} copied to s3://{stack.bucket}/{PREFIX}",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.invoke",
        description="Invoke a function of template.yaml in-process against local servers (no Docker needed).",
    )
    parser.add_argument("function", help="logical id in template.yaml: WebhookFunction or CopierFunction")
    parser.add_argument("-e", "--event", type=Path, required=True, help="event file, e.g. events/<name>.json")
    parser.add_argument("--aws-endpoint", help="use this running moto server instead of starting one")
    parser.add_argument(
        "--running", action="store_true", help="invoke against the stack `make up` keeps running (its queues, table)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        help="the context's time budget in seconds (default: the function's Timeout in template.yaml)",
    )
    args = parser.parse_args(argv)
    try:
        event = json.loads(args.event.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"invoke: cannot read the event {args.event}: {error}", file=sys.stderr)
        return 2
    if args.running and args.aws_endpoint:
        parser.error("--running uses the running stack's own moto server: give --running or --aws-endpoint")
    return run(args.function, event, args.aws_endpoint, args.timeout, running=args.running)


if __name__ == "__main__":
    sys.exit(main())
