"""The Docker-free local runner mirrors `sam local invoke FUNCTION -e EVENT` with the sample events in events/."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def invoke(function: str, event: str, aws_endpoint: str) -> tuple[dict[str, object], str]:
    done = subprocess.run(
        [sys.executable, "-m", "devkit.invoke", function, "-e", f"events/{event}", "--aws-endpoint", aws_endpoint],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout)
    return answer, done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("event", "status", "side_effects"),
    [
        ("webhook-file-uploaded.json", 202, "1 message(s) on the copy queue, 0 in the DLQ"),
        ("webhook-bad-signature.json", 401, "0 message(s) on the copy queue, 0 in the DLQ"),
        ("webhook-other-event.json", 200, "0 message(s) on the copy queue, 0 in the DLQ"),
    ],
)
def test_webhook_sample_events(moto_endpoint: str, event: str, status: int, side_effects: str) -> None:
    answer, summary = invoke("WebhookFunction", event, moto_endpoint)

    assert answer["statusCode"] == status
    assert side_effects in summary


def test_copier_sample_event_copies_the_sample_file(moto_endpoint: str) -> None:
    answer, summary = invoke("CopierFunction", "sqs-copy-request.json", moto_endpoint)

    assert answer == {"batchItemFailures": []}
    assert "0 in the DLQ, 1 object(s) copied" in summary


def test_an_unknown_function_is_named(moto_endpoint: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devkit.invoke", "NoSuchFunction", "-e", "events/webhook-other-event.json",
         "--aws-endpoint", moto_endpoint],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert done.returncode == 2
    functions = "WebhookFunction, CopierFunction, ReconcilerFunction"
    assert f"no function 'NoSuchFunction' in template.yaml ({functions})" in done.stderr
