"""Where the webhook's first request goes: its steps timed one by one in fresh processes against the moto server.

The first request builds the settings, creates the SQS client, reads the signing secret (creating the Secrets
Manager client on the same boto3 session) and sends the copy request. Each step here is what the webhook's own
code does (`webhook.app.build_app`, `secrets.secrets_manager_fetcher`), timed on its own; the sum is close to the
cold table's "first request", the rest being the handler's own work (signature, validation, logging, EMF).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Mapping

from bench.harness import PYTHONPATH

STEPS = ("import boto3", "SQS client", "Secrets Manager client", "GetSecretValue", "SendMessage")

CHILD = """
import json, sys, time
marks = [time.perf_counter()]
import boto3
marks.append(time.perf_counter())
from uploadcare_s3_copy.webhook.adapters import SECRETS_CLIENT_CONFIG, SQS_CLIENT_CONFIG
begin = time.perf_counter()
sqs = boto3.client("sqs", config=SQS_CLIENT_CONFIG)
marks.append(time.perf_counter() - begin + marks[-1])
begin = time.perf_counter()
secrets = boto3.client("secretsmanager", config=SECRETS_CLIENT_CONFIG)
marks.append(time.perf_counter() - begin + marks[-1])
begin = time.perf_counter()
secrets.get_secret_value(SecretId=sys.argv[1])
marks.append(time.perf_counter() - begin + marks[-1])
begin = time.perf_counter()
sqs.send_message(QueueUrl=sys.argv[2], MessageBody="{}")
marks.append(time.perf_counter() - begin + marks[-1])
print(json.dumps([b - a for a, b in zip(marks, marks[1:])]))
"""


def measure(env: Mapping[str, str], secret_id: str, queue_url: str, runs: int) -> dict[str, list[float]]:
    """Seconds per step, one list of `runs` values each."""
    child_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": PYTHONPATH, **env}
    out: dict[str, list[float]] = {step: [] for step in STEPS}
    for _ in range(runs):
        done = subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", CHILD, secret_id, queue_url],
            env=child_env,
            capture_output=True,
            text=True,
            check=True,
        )
        for step, seconds in zip(STEPS, json.loads(done.stdout), strict=True):
            out[step].append(float(seconds))
    return out


def report_line(steps: Mapping[str, list[float]]) -> str:
    parts = ", ".join(f"{step} {statistics.median(values) * 1000:.0f}" for step, values in steps.items())
    return f"\nWebhook first request by step (ms, median of {len(next(iter(steps.values())))} fresh processes): {parts}"
