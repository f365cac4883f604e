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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from devkit.emulator import Storage, UploadcareEmulator
from devkit.lambda_context import LambdaContext
from devkit.local_resources import LocalStack, StackSpec, create_stack, read_queue
from devkit.servers import aws_env, moto_server
from uploadcare_s3_copy.copy_request import CopyRequest, InvalidCopyRequest
from uploadcare_s3_copy.observability import logger, metrics

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


def register_event_files(event: dict[str, Any], emulator: UploadcareEmulator) -> list[CopyRequest]:
    """For an SQS event of copy requests: make the emulator know each file (as Uploadcare would)."""
    requests = []
    for record in event.get("Records", []):
        try:
            request = CopyRequest.from_message(record.get("body", ""))
        except InvalidCopyRequest:
            continue  # the copier will dead-letter it; nothing to register
        with contextlib.suppress(ValueError):  # already registered
            emulator.add_file(uuid=request.uuid, original_filename=request.original_filename, size=request.size)
        requests.append(request)
    return requests


@contextlib.contextmanager
def local_servers(aws_endpoint: str | None) -> Iterator[str]:
    if aws_endpoint:
        yield aws_endpoint
        return
    with moto_server() as endpoint:
        yield endpoint


def run(function: str, event: dict[str, Any], aws_endpoint: str | None, timeout: float | None) -> int:
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
            if function not in stack.handlers:
                print(
                    f"invoke: no function {function!r} in template.yaml ({', '.join(stack.handlers)})", file=sys.stderr
                )
                return 2
            os.environ.update(stack.env_for(function))
            metrics.namespace = os.environ["POWERTOOLS_METRICS_NAMESPACE"]
            requests = register_event_files(event, emulator) if function == "CopierFunction" else []
            handler = load_handler(stack, function)
            logger.registered_handler.setStream(sys.stderr)  # type: ignore[attr-defined]
            seconds = timeout if timeout is not None else stack.timeouts.get(function, 30.0)
            context = LambdaContext(function_name=function, timeout_seconds=seconds)
            with contextlib.redirect_stdout(sys.stderr):  # EMF metrics and logs to stderr, the answer to stdout
                response = handler(event, context)
            print(json.dumps(response, indent=2, ensure_ascii=False))
            queued = len(read_queue(stack.queue_url))
            dead = len(read_queue(stack.dlq_url))
            copied = sum(emulator.copies(request.uuid) for request in requests)
            print(
                f"local servers: {queued} message(s) on the copy queue, {dead} in the DLQ, {copied} object(s) copied "
                f"to s3://{stack.bucket}/{PREFIX}",
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
    return run(args.function, event, args.aws_endpoint, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
