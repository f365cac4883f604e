"""A recorded session of the `uploadcare-s3-copy` operations CLI against the local servers (docs/operations.md).

`python -m devkit.cli_session` starts a moto server and the Uploadcare emulator, builds a stack from template.yaml
(devkit.local_resources), publishes it as a CloudFormation stack on moto (so `--stack demo` reads outputs and
parameters exactly as against AWS), registers sample files, and runs the CLI's commands in-process, printing each
as a shell line followed by its real stdout and stderr. Between commands the copier runs over the queue the way
Lambda's event source would (devkit.sqs_poller). Exits 1 if a command's exit code is not the one expected.
"""

from __future__ import annotations

import io
import os
import shlex
import sys
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import boto3

from devkit.emulator import Storage, UploadcareEmulator
from devkit.flow import functions_output_to
from devkit.local_resources import LocalStack, StackSpec, create_stack, publish_stack
from devkit.servers import aws_env, moto_server
from devkit.sqs_poller import PollStats, drain
from uploadcare_s3_copy.observability import metrics
from uploadcare_s3_copy_cli.app import main as cli

STACK = "demo"
STORAGE = "demo-storage"
PREFIX = "uploadcare/"
WEBHOOK_URL = "https://demo.execute-api.localhost/webhooks/uploadcare"


class Session:
    def __init__(self, stack: LocalStack, emulator: UploadcareEmulator, environ: Mapping[str, str]) -> None:
        self.stack = stack
        self.emulator = emulator
        self.environ = environ
        self.home = environ["HOME"]  # a temporary one, shown as ~
        self.problems: list[str] = []

    def run(self, line: str, expect: int = 0) -> str:
        """Prints `$ line`, then what the command wrote (stdout and stderr, in order)."""
        argv = shlex.split(line)
        buffer = io.StringIO()
        code = cli(argv[1:], environ=self.environ, out=buffer, err=buffer)
        output = buffer.getvalue().replace(self.home, "~")
        print(f"$ {line}")
        print(output, end="" if output.endswith("\n") or not output else "\n")
        if code != expect:
            print(f"[exit {code}]")
            self.problems.append(f"{line}: exit {code}, expected {expect}")
        elif code:
            print(f"[exit {code}]")
        print()
        return output

    def comment(self, text: str) -> None:
        print(f"# {text}")

    def copier_runs(self) -> PollStats:
        import handle_copy  # noqa: PLC0415 - imported once the environment points at the local servers

        with open(os.devnull, "w", encoding="utf-8") as sink, functions_output_to(sink):
            handle_copy.app.cache_clear()
            return drain(boto3.client("sqs"), self.stack.queue_url, handle_copy.lambda_handler, function_timeout=60)


def script(session: Session) -> None:
    emulator = session.emulator
    start = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    files = [
        emulator.add_file(
            original_filename=f"invoice-{n:04d}.pdf", size=1000 + n, datetime_uploaded=start + timedelta(hours=n)
        )
        for n in range(240)
    ]
    late = emulator.add_file(original_filename="after-the-range.jpg", size=5000, datetime_uploaded=datetime.now(UTC))
    session.comment("A fresh stack: the secret has the API keys but no webhook signing secret, no webhook exists.")
    session.run(f"uploadcare-s3-copy doctor --stack {STACK}", expect=1)
    session.run(f"uploadcare-s3-copy webhook register --stack {STACK}")
    session.run(f"uploadcare-s3-copy webhook register --stack {STACK}")
    session.comment("Copy what was uploaded in 2024, before the webhook existed; stopped after 2 pages, then resumed.")
    session.run(f"uploadcare-s3-copy backfill --stack {STACK} --from 2024-01-01 --to 2024-12-31 --max-pages 2")
    session.run(f"uploadcare-s3-copy backfill --stack {STACK} --resume")
    session.comment("The copier runs, but the storage was never connected in Uploadcare: every copy is refused.")
    session.copier_runs()
    session.run(f"uploadcare-s3-copy dlq list --stack {STACK}", expect=1)
    session.comment("Connect the storage in Uploadcare, then move the requests back.")
    emulator.add_storage(Storage(STORAGE, session.stack.bucket, PREFIX))
    session.run(f"uploadcare-s3-copy dlq redrive --stack {STACK} --reason storage_not_found")
    stats = session.copier_runs()
    session.comment(f"The copier ran: {stats.deleted} requests done, {stats.given_back} given back.")
    session.run(f"uploadcare-s3-copy dlq list --stack {STACK}")
    session.run(f"uploadcare-s3-copy copy --stack {STACK} {late.uuid}")
    session.run(f"uploadcare-s3-copy copy --stack {STACK} --direct {files[0].uuid} {late.uuid}")
    session.run(f"uploadcare-s3-copy doctor --stack {STACK} --test-copy {files[1].uuid}")


def main() -> int:
    with moto_server() as endpoint, tempfile.TemporaryDirectory() as home:
        os.environ.update(aws_env(endpoint))
        with UploadcareEmulator(aws_endpoint=endpoint) as emulator:
            spec = StackSpec(
                name=STACK,
                public_key=emulator.public_key,
                secret_key=emulator._secret_key,
                signing_secret="",
                storage=STORAGE,
                prefix=PREFIX,
                api_url=emulator.url,
            )
            stack = create_stack(spec)
            publish_stack(stack, api_url=emulator.url, webhook_url=WEBHOOK_URL)
            os.environ.update(stack.copier_env(emulator.url))
            metrics.namespace = os.environ["POWERTOOLS_METRICS_NAMESPACE"]
            environ = {**aws_env(endpoint), "HOME": home}  # the state file goes to ~/.cache/uploadcare-s3-copy/
            session = Session(stack, emulator, environ)
            script(session)
    if session.problems:
        print("SESSION FAILED:\n  " + "\n  ".join(session.problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
