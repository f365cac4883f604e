"""Cold and warm timings of the webhook function, each cold figure from a fresh Python process.

    .venv/bin/python -m bench.webhook_cold_warm [--runs 10] [--warm 200]

Per run, a new interpreter imports `handle_webhook` (timed), answers the signed sample `file.uploaded` once (the
first request: settings, boto3 client, secret read, SendMessage) and then `--warm` more times (per-request median).
Two back ends:
  stub  the secret read and SQS SendMessage are stubbed in the child: the handler's own time (the boto3 client is
        still created, the Powertools decorators, logging and EMF output all run)
  moto  Secrets Manager and SQS on a moto server on loopback: adds real HTTP round trips to a local server
One more child runs `-X importtime` to attribute the import time to packages. Output is a table of medians with min/max.
Figures depend on the machine; on Lambda the init phase runs at full CPU, so compare them relative to each other.
Not a test: nothing is asserted beyond each request being answered 202.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3

from devkit.make_events import SAMPLE_SIGNING_SECRET
from devkit.servers import FAKE_AWS_ENV, aws_env, moto_server

ROOT = Path(__file__).resolve().parent.parent
EVENT = ROOT / "events" / "webhook-file-uploaded.json"
PYTHONPATH = os.pathsep.join(str(ROOT / part) for part in ("layers/common", "functions/webhook", "."))
# Modules the webhook must not load at cold start (design: no pydantic, parser, resolver, idempotency,
# nor the Uploadcare REST client).
UNWANTED = (
    "pydantic",
    "aws_lambda_powertools.utilities.parser",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.idempotency",
    "uploadcare_s3_copy.uploadcare",
    "uploadcare_s3_copy.copier",
    "uploadcare_s3_copy.reconciler",
    "uploadcare_s3_copy_cli",
    "aws_xray_sdk",  # the Tracer's: see uploadcare_s3_copy/tracing.py
    "uploadcare_s3_copy.tracing",
)

# Runs in the fresh interpreter. It imports as little as possible before the timed import of the handler.
CHILD = """
import time
started = time.perf_counter()
import handle_webhook
imported = time.perf_counter()
import json, sys
mode, warm_runs, event_path, secret, result_path, unwanted = sys.argv[1:7]
loaded_unwanted = [name for name in unwanted.split(",") if name in sys.modules]
from devkit.lambda_context import LambdaContext
event = json.loads(open(event_path, encoding="utf-8").read())
if mode == "stub":
    from uploadcare_s3_copy import secrets
    from uploadcare_s3_copy.webhook import adapters
    secrets.secrets_manager_fetcher = lambda config=None: (lambda _id, _force: {"webhook_signing_secret": secret})
    adapters.SqsCopyQueue.send = lambda self, message: None
def answer():
    response = handle_webhook.lambda_handler(event, LambdaContext(function_name="bench-webhook"))
    assert response["statusCode"] == 202, response
first_started = time.perf_counter()
answer()
first_done = time.perf_counter()
warm = []
for _ in range(int(warm_runs)):
    began = time.perf_counter()
    answer()
    warm.append(time.perf_counter() - began)
warm.sort()
with open(result_path, "w", encoding="utf-8") as result:
    json.dump({
        "import": imported - started,
        "first": first_done - first_started,
        "warm": warm[len(warm) // 2],
        "unwanted": loaded_unwanted,
    }, result)
"""


def _child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": PYTHONPATH,
        "PYTHONDONTWRITEBYTECODE": "1",
        "POWERTOOLS_SERVICE_NAME": "uploadcare-s3-copy-webhook",
        "POWERTOOLS_METRICS_NAMESPACE": "UploadcareS3CopyBench",
        **FAKE_AWS_ENV,
    }
    env.update(extra)
    return env


def run_child(mode: str, warm_runs: int, env: Mapping[str, str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        result_path = Path(folder) / "result.json"
        command = [
            sys.executable,
            "-c",
            CHILD,
            mode,
            str(warm_runs),
            str(EVENT),
            SAMPLE_SIGNING_SECRET,
            str(result_path),
            ",".join(UNWANTED),
        ]
        # The function's log lines and EMF go to stdout, as on Lambda; not kept here.
        subprocess.run(command, env=_child_env(env), check=True, stdout=subprocess.DEVNULL)  # noqa: S603 - ditto
        result: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
        return result


def import_cost_by_package(env: Mapping[str, str], top: int = 8) -> list[tuple[str, float]]:
    """Self import time (ms) of `import handle_webhook`, summed per top-level package (`python -X importtime`)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import handle_webhook"],
        env=_child_env(env),
        check=True,
        capture_output=True,
        text=True,
    )
    totals: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|")
        package = name.strip().split(".")[0]
        totals[package] = totals.get(package, 0.0) + int(self_us) / 1000
    return sorted(totals.items(), key=lambda row: row[1], reverse=True)[:top]


def moto_resources(endpoint: str) -> dict[str, str]:
    """A secret and a queue on the moto server; the function environment that names them."""
    env = aws_env(endpoint)
    os.environ.update(env)  # for this process's boto3 clients
    name = f"bench-{uuid.uuid4().hex[:8]}"
    boto3.client("secretsmanager").create_secret(
        Name=name, SecretString=json.dumps({"webhook_signing_secret": SAMPLE_SIGNING_SECRET})
    )
    queue_url = boto3.client("sqs").create_queue(QueueName=name)["QueueUrl"]
    return {**env, "UPLOADCARE_SECRET_ID": name, "COPY_QUEUE_URL": queue_url}


def summary(label: str, values_ms: list[float]) -> str:
    return (
        f"{label:<34} {statistics.median(values_ms):>9.2f} {min(values_ms):>9.2f} {max(values_ms):>9.2f}"
        f" {len(values_ms):>5}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Webhook cold/warm timings in fresh processes.")
    parser.add_argument("--runs", type=int, default=10, help="fresh processes per back end (default 10)")
    parser.add_argument("--warm", type=int, default=200, help="warm requests per process (default 200)")
    args = parser.parse_args(argv)

    stub_env = {"UPLOADCARE_SECRET_ID": "bench-secret", "COPY_QUEUE_URL": "https://sqs.invalid/1/bench"}
    results: dict[str, list[dict[str, Any]]] = {"stub": [], "moto": []}
    for _ in range(args.runs):
        results["stub"].append(run_child("stub", args.warm, stub_env))
    with moto_server() as endpoint:
        moto_env = moto_resources(endpoint)
        for _ in range(args.runs):
            results["moto"].append(run_child("moto", args.warm, moto_env))
        queued = boto3.client("sqs").get_queue_attributes(
            QueueUrl=moto_env["COPY_QUEUE_URL"], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]

    def ms(mode: str, key: str) -> list[float]:
        return [float(run[key]) * 1000 for run in results[mode]]

    print(f"webhook function, Python {sys.version.split()[0]}, {args.runs} fresh processes per row")
    print(f"{'measure (ms)':<34} {'median':>9} {'min':>9} {'max':>9} {'runs':>5}")
    print(summary("cold import of handle_webhook", ms("stub", "import") + ms("moto", "import")))
    print(summary("first request, stubbed AWS", ms("stub", "first")))
    print(summary("first request, moto server", ms("moto", "first")))
    print(summary(f"warm request, stubbed (median/{args.warm})", ms("stub", "warm")))
    print(summary(f"warm request, moto (median/{args.warm})", ms("moto", "warm")))
    print(f"messages on the moto queue afterwards: {queued} (expected {args.runs * (args.warm + 1)})")
    unwanted = sorted({name for mode in results.values() for run in mode for name in run["unwanted"]})
    print(f"unwanted modules loaded at import: {', '.join(unwanted) or 'none'}")
    # Self time is the module's own code, including work done at import (the X-Ray recorder creates botocore clients).
    print("import time by package (self ms summed, one -X importtime run):")
    for package, spent in import_cost_by_package(stub_env):
        print(f"  {package:<32} {spent:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
