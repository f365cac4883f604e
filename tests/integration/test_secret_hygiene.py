"""Secret hygiene: a whole flow with distinctive secret values (public key, secret key, signing secret, and their
rotated successors), every log line and metric both functions print captured at DEBUG, and none of them may carry
a secret, a signature header value, an Uploadcare `Authorization` value, or a whole payload.

Captured: the Powertools logger's stream (JSON log lines), stdout and stderr (EMF metrics, anything printed) and
every stdlib log record at INFO and above (botocore, urllib3: what Lambda's runtime would ship at its default level).
Also checked: the answers sent to Uploadcare and the DLQ messages' attributes.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devkit.emulator import Fault, Storage, UploadcareEmulator
from devkit.flow import LocalFlow
from devkit.lambda_context import LambdaContext
from devkit.local_resources import StackSpec, create_stack
from devkit.make_events import signed_event
from uploadcare_s3_copy.observability import logger, metrics

PUBLIC_KEY = "pk-HYGIENE-7f3a9c0d"
SECRET_KEY = "sk-HYGIENE-91d2e4b7c5"
SIGNING_SECRET = "whsec-HYGIENE-c0ffee42"
ROTATED_SECRET_KEY = "sk-ROTATED-HYGIENE-55aa77"
ROTATED_SIGNING_SECRET = "whsec-ROTATED-HYGIENE-9e1"
SECRETS = (PUBLIC_KEY, SECRET_KEY, SIGNING_SECRET, ROTATED_SECRET_KEY, ROTATED_SIGNING_SECRET)
PAYLOAD_MARKER = "payload-marker-HYGIENE-3b9f"  # in fields of the payload that nothing needs to log
UPLOADCARE_AUTHORIZATION = re.compile(r"Uploadcare [^\s:\"]+:[0-9a-f]{40}")
STORAGE = "hygiene-storage"
PREFIX = "copies/"


@pytest.fixture
def flow(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalFlow]:
    spec = StackSpec(
        name=f"hygiene-{uuid.uuid4().hex[:8]}",
        public_key=PUBLIC_KEY,
        secret_key=SECRET_KEY,
        signing_secret=SIGNING_SECRET,
        storage=STORAGE,
        prefix=PREFIX,
        log_level="DEBUG",
    )
    stack = create_stack(spec)
    storage = Storage(STORAGE, stack.bucket, PREFIX)
    with UploadcareEmulator(
        public_key=PUBLIC_KEY, secret_key=SECRET_KEY, storages=[storage], aws_endpoint=aws
    ) as emulator:
        for name, value in {**stack.webhook_env(), **stack.copier_env(emulator.url)}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(metrics, "namespace", stack.webhook_env()["POWERTOOLS_METRICS_NAMESPACE"])
        level = logger.log_level
        logger.setLevel("DEBUG")  # the most a deployment can ask for (LogLevel=DEBUG)
        LocalFlow.reset_functions()
        try:
            yield LocalFlow(stack, emulator, log=None)
        finally:
            logger.setLevel(level)
            LocalFlow.reset_functions()
            metrics.clear_metrics()


def deliver(flow: LocalFlow, payload: dict[str, Any], secret: str, sent: list[str]) -> dict[str, Any]:
    """One webhook delivery through the handler; records the signature header value it carried."""
    import handle_webhook  # noqa: PLC0415

    event = signed_event(payload, secret)
    sent.append(event["headers"]["x-uc-signature"])
    response: dict[str, Any] = handle_webhook.lambda_handler(event, LambdaContext(function_name="WebhookFunction"))
    return response


def with_marker(payload: dict[str, Any]) -> dict[str, Any]:
    payload["data"]["metadata"] = {"note": PAYLOAD_MARKER}
    payload["hook"]["target"] = f"https://example.com/{PAYLOAD_MARKER}"
    payload["initiator"]["detail"]["request_id"] = PAYLOAD_MARKER
    return payload


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_no_secret_signature_or_payload_reaches_logs_or_metrics(
    flow: LocalFlow,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given every line the handlers write captured, at DEBUG for their own logger and INFO for everything else
    log_stream = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", log_stream)
    caplog.set_level("INFO")
    signatures: list[str] = []
    payloads: list[str] = []
    answers: list[dict[str, Any]] = []

    def send(payload: dict[str, Any], secret: str) -> None:
        payloads.append(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))
        answers.append(deliver(flow, payload, secret, signatures))

    # When files go through both functions along every path that logs: copied, throttled, failing, the wrong size,
    # both secrets rotated (a 401 from Uploadcare, a re-read signing secret), a forged delivery
    files = [flow.add_file(original_filename=f"Quarterly report {n}.pdf", size=100 + n) for n in range(4)]
    flow.emulator.script(files[1].uuid, Fault.throttled(retry_after=0), Fault.server_error(503))
    flow.emulator.script(files[2].uuid, Fault.not_ready())
    wrong = flow.add_file(original_filename="wrong.bin", size=50, wrong_size=True)
    for file in [*files, wrong]:
        send(with_marker(flow.webhook_body(file)), SIGNING_SECRET)
    flow.run_copier()
    flow.stack.put_secret(secret_key=ROTATED_SECRET_KEY)
    flow.emulator.rotate_secret_key(ROTATED_SECRET_KEY)
    later = flow.add_file(original_filename="after rotation.png", size=77)
    send(with_marker(flow.webhook_body(later)), SIGNING_SECRET)
    flow.run_copier()
    flow.stack.put_secret(secret_key=ROTATED_SECRET_KEY, webhook_signing_secret=ROTATED_SIGNING_SECRET)
    last = flow.add_file(original_filename="after second rotation.gif", size=78)
    send(with_marker(flow.webhook_body(last)), ROTATED_SIGNING_SECRET)
    send(with_marker(flow.webhook_body(files[0])), "a-forger-without-the-secret")
    flow.run_copier()

    # Then the flow really went through those paths
    assert [a["statusCode"] for a in answers] == [202, 202, 202, 202, 202, 202, 202, 401]
    dead_letters = flow.dead_letters()
    outcomes = flow.outcomes([*files, later, last], dead_letters)
    assert {o.state for o in outcomes.values()} == {"verified"}
    assert [m["MessageAttributes"]["reason"]["StringValue"] for m in dead_letters] == ["verification_failed"]
    captured = capsys.readouterr()
    logged = log_stream.getvalue()
    records = "\n".join(f"{r.name} {r.levelname} {r.getMessage()}" for r in caplog.records)
    assert "Uploadcare refused the keys" in logged  # the copier met the rotated key
    assert "re-read signing secret" in logged  # the webhook picked up the rotated signing secret
    assert '"WebhookQueued"' in captured.out  # EMF metrics were printed
    # And no secret, signature, Authorization value or payload is in any of it
    where = {
        "logger": logged,
        "stdout": captured.out,
        "stderr": captured.err,
        "stdlib logging": records,
        "answers": json.dumps(answers),
        "DLQ attributes": json.dumps([m["MessageAttributes"] for m in dead_letters]),
    }
    for name, text in where.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret} in {name}"
        for signature in signatures:
            assert signature.removeprefix("v1=") not in text, f"a signature in {name}"
        assert UPLOADCARE_AUTHORIZATION.search(text) is None, f"an Uploadcare Authorization value in {name}"
        assert PAYLOAD_MARKER not in text, f"payload content in {name}"
        for payload in payloads:
            assert payload not in text, f"a whole payload in {name}"
