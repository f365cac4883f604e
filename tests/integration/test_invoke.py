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
        ("webhook-file-uploaded.json", 202, "1 message on the copy queue, 0 in the DLQ"),
        ("webhook-bad-signature.json", 401, "0 messages on the copy queue, 0 in the DLQ"),
        ("webhook-other-event.json", 200, "0 messages on the copy queue, 0 in the DLQ"),
    ],
)
def test_webhook_sample_events(moto_endpoint: str, event: str, status: int, side_effects: str) -> None:
    answer, summary = invoke("WebhookFunction", event, moto_endpoint)

    assert answer["statusCode"] == status
    assert side_effects in summary


def test_copier_sample_event_copies_the_sample_file(moto_endpoint: str) -> None:
    answer, summary = invoke("CopierFunction", "sqs-copy-request.json", moto_endpoint)

    assert answer == {"batchItemFailures": []}
    assert "0 in the DLQ, 1 object copied" in summary


def test_an_unknown_function_is_named(moto_endpoint: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devkit.invoke", "NoSuchFunction", "-e", "events/webhook-other-event.json",
         "--aws-endpoint", moto_endpoint],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert done.returncode == 2
    functions = "WebhookFunction, CopierFunction, ReconcilerFunction"
    assert f"no function 'NoSuchFunction' in template.yaml ({functions})" in done.stderr


@pytest.mark.parametrize(
    ("function", "event", "expected"),
    [
        ("CopierFunction", "webhook-file-uploaded.json", "CopierFunction takes an SQS event of copy requests"),
        ("WebhookFunction", "sqs-copy-request.json", "WebhookFunction takes an API Gateway HTTP API (payload 2.0)"),
        ("ReconcilerFunction", "sqs-copy-request.json", "ReconcilerFunction takes its schedule's event"),
    ],
)
def test_an_event_of_the_wrong_type_is_one_line_naming_the_expected_shape(
    moto_endpoint: str, function: str, event: str, expected: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devkit.invoke", function, "-e", f"events/{event}", "--aws-endpoint", moto_endpoint],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"invoke: {expected}")
    assert done.stderr.count("\n") == 1  # one line, no traceback
