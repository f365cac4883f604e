"""X-Uc-Signature: the whole `v1=<hex HMAC-SHA256>` value over the raw body bytes, compared in constant time.

Uploadcare writes the digest in lowercase. Since the whole value is compared, an uppercase digest is refused (and is
reported as malformed, without reading the secret): Uploadcare never sends one.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from devkit.make_events import SAMPLE_SIGNING_SECRET
from tests.conftest import VECTORS, load_event, load_vector
from tests.webhook_support import (
    BAD_SIGNATURE,
    FILE_UPLOADED,
    ManualClock,
    RecordingQueue,
    SecretsStub,
    answer_body,
    event_for,
    sample_payload,
    signing_secret_value,
    unit_app,
    with_signature,
)
from uploadcare_s3_copy.secrets import SecretConfigError
from uploadcare_s3_copy.webhook.signing import is_well_formed, sign, verify

CASES = load_vector("webhook-signature.json")["cases"]
W2 = next(case for case in CASES if case["name"].startswith("W2"))
W2_BODY = (VECTORS / W2["body_file"]).read_bytes()


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_vector_verifies_exactly_when_it_is_marked_valid(case: dict[str, Any]) -> None:
    # Given a vector's raw body bytes, secret and header
    body = (VECTORS / case["body_file"]).read_bytes()

    # When the header is verified
    result = verify(case["header"], body, case["secret"])

    # Then it matches only for the valid cases
    assert result is case["valid"]


@pytest.mark.parametrize("case", [c for c in CASES if c["valid"]], ids=lambda case: case["name"])
def test_sign_reproduces_the_vector_header(case: dict[str, Any]) -> None:
    body = (VECTORS / case["body_file"]).read_bytes()

    assert sign(case["secret"], body) == case["header"]


@pytest.mark.parametrize(
    ("label", "header"),
    [
        ("truncated hex", W2["header"][:-1]),
        ("hex without the scheme", W2["header"].removeprefix("v1=")),
        ("another scheme", "v2=" + W2["header"].removeprefix("v1=")),
        ("uppercase hex", "v1=" + W2["header"].removeprefix("v1=").upper()),
        ("padded with a space", " " + W2["header"]),
        ("two values joined", W2["header"] + "," + W2["header"]),
        ("empty", ""),
    ],
)
def test_a_value_that_is_not_exactly_the_signature_is_refused(label: str, header: str) -> None:
    # Given a value that differs from the right one in form only
    # When it is verified against the right body and secret
    result = verify(header, W2_BODY, W2["secret"])

    # Then it is refused, and it does not even have the shape of a v1 signature
    assert result is False
    assert is_well_formed(header) is False


def test_a_missing_header_is_refused() -> None:
    assert verify(None, W2_BODY, W2["secret"]) is False


def test_a_signature_made_for_another_body_is_refused() -> None:
    # Given the W2 header and the W1 body
    other_body = (VECTORS / "webhook-w1.body").read_bytes()

    # Then the header does not verify that body
    assert verify(W2["header"], other_body, W2["secret"]) is False
    assert is_well_formed(W2["header"]) is True


def test_a_body_differing_by_one_trailing_newline_is_refused() -> None:
    assert verify(W2["header"], W2_BODY + b"\n", W2["secret"]) is False


def test_a_non_ascii_header_is_refused_without_an_error() -> None:
    assert verify("v1=é" + "0" * 63, W2_BODY, W2["secret"]) is False


def test_an_empty_signing_secret_never_verifies() -> None:
    # Given a header computed with an empty secret (what a blank configuration would produce)
    header = sign("", W2_BODY)

    # Then verifying with that same empty secret still refuses
    assert verify(header, W2_BODY, "") is False


# --- through the webhook app: the raw bytes, base64 and the re-read of the secret ------------------------------


def test_a_base64_body_is_verified_over_its_decoded_bytes() -> None:
    # Given the sample payload, base64-encoded by the gateway and signed over the raw JSON bytes
    queue = RecordingQueue()
    event = event_for(sample_payload(), base64_encoded=True)

    # When the webhook answers
    answer = unit_app(queue=queue).answer(event)

    # Then it is accepted and queued
    assert answer.status == 202
    assert len(queue.messages) == 1


def test_a_base64_body_signed_over_its_base64_text_is_refused() -> None:
    # Given a signature computed over the base64 text instead of the bytes it stands for
    event = event_for(sample_payload(), base64_encoded=True)
    event = with_signature(event, sign(SAMPLE_SIGNING_SECRET, event["body"].encode()))
    queue = RecordingQueue()

    # When the webhook answers
    answer = unit_app(queue=queue).answer(event)

    # Then it is a mismatch and nothing is queued
    assert answer.status == 401
    assert answer.body["reason"] == "signature_mismatch"
    assert queue.messages == []


def test_the_bad_signature_sample_is_refused_as_a_mismatch() -> None:
    queue = RecordingQueue()

    answer = unit_app(queue=queue).answer(load_event(BAD_SIGNATURE))

    assert (answer.status, answer.body["status"], answer.body["reason"]) == (401, "rejected", "signature_mismatch")
    assert queue.messages == []


@pytest.mark.parametrize(
    ("header", "reason"),
    [(None, "signature_missing"), ("", "signature_missing"), ("v1=abc", "signature_malformed")],
)
def test_a_missing_or_malformed_header_is_refused_without_reading_the_secret(header: str | None, reason: str) -> None:
    # Given a request whose signature header cannot match any secret
    secrets = SecretsStub(signing_secret_value())
    event = with_signature(load_event(FILE_UPLOADED), header)

    # When the webhook answers
    answer = unit_app(secrets=secrets).answer(event)

    # Then it is a 401 naming the problem, and Secrets Manager was not asked
    assert answer.status == 401
    assert answer.body["reason"] == reason
    assert secrets.calls == []


def test_a_mismatch_rereads_the_secret_once_and_accepts_the_rotated_one() -> None:
    # Given an app that has already cached the old signing secret
    secrets = SecretsStub(signing_secret_value("old-secret"))
    queue = RecordingQueue()
    app = unit_app(secrets=secrets, queue=queue)
    assert app.answer(event_for(sample_payload(), secret="old-secret")).status == 202

    # When the secret is rotated and Uploadcare signs with the new one
    secrets.value = signing_secret_value("new-secret")
    answer = app.answer(event_for(sample_payload(), secret="new-secret"))

    # Then one forced re-read picks the new secret up and the request is queued
    assert answer.status == 202
    assert secrets.calls == [False, False, True]
    assert secrets.fetches == 2
    assert len(queue.messages) == 2


def test_a_second_mismatch_within_a_minute_does_not_reread_the_secret() -> None:
    # Given a mismatch that has just forced a re-read
    secrets = SecretsStub(signing_secret_value())
    clock = ManualClock()
    app = unit_app(secrets=secrets, clock=clock)
    forged = event_for(sample_payload(), secret="forged")
    assert app.answer(forged).status == 401
    fetches_after_first = secrets.fetches

    # When another mismatch arrives 59 seconds later
    clock.now += 59
    answer = app.answer(forged)

    # Then it is refused from the cache, without a forced read
    assert answer.status == 401
    assert fetches_after_first == 2
    assert secrets.fetches == 2
    assert True not in secrets.calls[2:]


def test_a_mismatch_a_minute_later_rereads_again() -> None:
    # Given a mismatch that forced a re-read a minute ago
    secrets = SecretsStub(signing_secret_value())
    clock = ManualClock()
    app = unit_app(secrets=secrets, clock=clock)
    forged = event_for(sample_payload(), secret="forged")
    app.answer(forged)

    # When another mismatch arrives 60 seconds later
    clock.now += 60
    app.answer(forged)

    # Then the secret is read with force once more
    assert secrets.calls.count(True) == 2
    assert secrets.fetches == 3


def test_a_secret_without_a_signing_secret_is_raised_not_answered() -> None:
    # Given a secret that lacks webhook_signing_secret
    secrets = SecretsStub({"public_key": "pk", "secret_key": "sk"})
    queue = RecordingQueue()

    # When a signed request arrives, the deployment error propagates (never "accept unsigned")
    with pytest.raises(SecretConfigError, match="webhook_signing_secret"):
        unit_app(secrets=secrets, queue=queue).answer(load_event(FILE_UPLOADED))

    # Then nothing was queued
    assert queue.messages == []


def test_the_webhook_needs_only_the_signing_secret_in_the_secret() -> None:
    # Given a secret holding just the signing secret (the REST keys are the copier's business)
    secrets = SecretsStub({"webhook_signing_secret": SAMPLE_SIGNING_SECRET})

    answer = unit_app(secrets=secrets).answer(load_event(FILE_UPLOADED))

    assert answer.status == 202


def test_secrets_manager_unreachable_is_a_503_and_nothing_is_queued() -> None:
    # Given Secrets Manager failing the read
    error = GetParameterError("cannot read")
    error.__cause__ = ConnectionError("refused")
    queue = RecordingQueue()

    # When a signed request arrives
    answer = unit_app(secrets=SecretsStub(error), queue=queue).answer(load_event(FILE_UPLOADED))

    # Then Uploadcare is told to retry later
    assert answer.status == 503
    assert answer_body(answer.to_http()) == {
        "status": "unavailable",
        "reason": "secret_unavailable",
        "message": "the signing secret cannot be read; try again later",
    }
    assert queue.messages == []


def test_the_signature_covers_the_exact_bytes_not_the_parsed_json() -> None:
    # Given the sample body with insignificant whitespace added after signing
    event = load_event(FILE_UPLOADED)
    event["body"] = event["body"].replace('{"initiator"', '{ "initiator"', 1)
    queue = RecordingQueue()

    # When the webhook answers
    answer = unit_app(queue=queue).answer(event)

    # Then the same JSON with different bytes does not verify
    assert answer.status == 401
    assert queue.messages == []


def test_the_signature_header_name_is_matched_case_insensitively() -> None:
    # Given a gateway that keeps the header's original case (REST API or a local proxy)
    event = load_event(FILE_UPLOADED)
    event["headers"]["X-Uc-Signature"] = event["headers"].pop("x-uc-signature")

    answer = unit_app().answer(event)

    assert answer.status == 202


def test_base64_text_of_the_vector_body_decodes_to_the_signed_bytes() -> None:
    # Given the W2 vector sent base64-encoded with its published header
    event = event_for(W2_BODY, secret=None, base64_encoded=True)
    event = with_signature(event, W2["header"])
    secrets = SecretsStub(signing_secret_value(W2["secret"]))

    # When the webhook answers
    answer = unit_app(secrets=secrets).answer(event)

    # Then the signature verified (the W2 body lacks data.size, so it is refused later, as invalid)
    assert event["body"] == base64.b64encode(W2_BODY).decode()
    assert answer.status == 400
    assert answer.body["message"] == "data.size is missing"


def test_a_mismatch_right_after_a_failed_reread_is_a_503_not_a_401() -> None:
    # Given an app with the old signing secret cached, whose re-read at a rotation Secrets Manager fails
    secrets = SecretsStub(signing_secret_value("old-secret"))
    queue = RecordingQueue()
    app = unit_app(secrets=secrets, queue=queue)
    assert app.answer(event_for(sample_payload(), secret="old-secret")).status == 202
    error = GetParameterError("throttled")
    error.__cause__ = ConnectionError("503")
    secrets.value = error
    assert app.answer(event_for(sample_payload(), secret="new-secret")).status == 503

    # When the next delivery signed with the new secret arrives at once (before a re-read may be tried again)
    fetches = secrets.fetches
    answer = app.answer(event_for(sample_payload(), secret="new-secret"))

    # Then it is told to come back later (the secret may have been rotated: refusing it would be a guess), without
    # another call to the failing Secrets Manager, and nothing is queued
    assert answer.status == 503
    assert answer.body["reason"] == "secret_unavailable"
    assert secrets.fetches == fetches
    assert len(queue.messages) == 1
