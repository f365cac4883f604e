"""Every documented Uploadcare answer maps to one reason of the failure vocabulary (docs/uploadcare-protocol.md)."""

from __future__ import annotations

import email.utils
import time

import pytest

from uploadcare_s3_copy.reasons import PermanentFailure, Reason, TransientFailure
from uploadcare_s3_copy.uploadcare import UploadcareAuthError, classify_error
from uploadcare_s3_copy.uploadcare.errors import DEFAULT_RETRY_AFTER_SECONDS, MAX_RETRY_AFTER_SECONDS

DOCUMENTED = [
    (400, "Bad `source` parameter. Use UUID or CDN URL.", Reason.BAD_SOURCE, False),
    (400, "`source` parameter is required.", Reason.BAD_SOURCE, False),
    (400, "Project has no storage with provided name.", Reason.STORAGE_NOT_FOUND, False),
    (400, "Invalid pattern provided: Invalid pattern", Reason.INVALID_PATTERN, False),
    (400, "File is not ready yet.", Reason.NOT_READY, True),
    (400, "Copying of large files is not supported at the moment.", Reason.TOO_LARGE, False),
    (400, "Not allowed on your current plan.", Reason.PLAN_NOT_ALLOWED, False),
    (400, "Something new Uploadcare says.", Reason.BAD_REQUEST, False),
    (401, "Incorrect authentication credentials.", Reason.AUTH, True),
    (401, "Public key testpk not found.", Reason.AUTH, True),
    (401, "Secret key not found.", Reason.AUTH, True),
    (401, "Invalid signature. Please check your secret key.", Reason.AUTH, True),
    (404, "Not found.", Reason.NOT_FOUND, False),
    (406, "Incorrect Accept header provided. Make sure to specify API version", Reason.NOT_ACCEPTABLE, False),
    (408, "", Reason.TIMEOUT, True),
    (409, "Conflict", Reason.BAD_REQUEST, False),
    (429, "Request was throttled. Expected available in 10 seconds.", Reason.THROTTLED, True),
    (500, "Internal error", Reason.SERVER_ERROR, True),
    (502, "", Reason.SERVER_ERROR, True),
    (503, "", Reason.SERVER_ERROR, True),
]


@pytest.mark.parametrize(("status", "detail", "reason", "transient"), DOCUMENTED)
def test_answer_maps_to_reason_and_kind(status: int, detail: str, reason: Reason, transient: bool) -> None:
    failure = classify_error(status, detail, request_id="req-1")

    assert failure.reason is reason
    assert failure.transient is transient
    assert isinstance(failure, TransientFailure if transient else PermanentFailure)
    assert failure.status == status
    assert failure.request_id == "req-1"


def test_detail_texts_are_matched_loosely() -> None:
    # The live answers differ from the docs in case and final period.
    assert classify_error(400, "PROJECT HAS NO STORAGE WITH PROVIDED NAME").reason is Reason.STORAGE_NOT_FOUND
    assert classify_error(400, "file is not ready yet").reason is Reason.NOT_READY


def test_status_decides_before_detail() -> None:
    # A 404 whose text mentions "source" is still not_found, a 500 mentioning "not ready" still a server error.
    assert classify_error(404, "source not found").reason is Reason.NOT_FOUND
    assert classify_error(500, "File is not ready yet.").reason is Reason.SERVER_ERROR


def test_auth_failures_are_their_own_type_so_the_caller_can_reread_the_secret() -> None:
    assert isinstance(classify_error(401, "Incorrect authentication credentials."), UploadcareAuthError)


@pytest.mark.parametrize(
    ("header", "detail", "expected"),
    [
        ("7", "Request was throttled. Expected available in 10 seconds.", 7.0),
        ("0.5", "", 0.5),
        (None, "Request was throttled. Expected available in 12 seconds.", 12.0),
        (None, "throttled", 10.0),
        ("garbage", "Expected available in 3 seconds.", 3.0),
    ],
)
def test_throttle_carries_retry_after_seconds(header: str | None, detail: str, expected: float) -> None:
    failure = classify_error(429, detail, retry_after_header=header)

    assert isinstance(failure, TransientFailure)
    assert failure.retry_after == expected


@pytest.mark.parametrize(
    "header",
    [
        "Mon, 01 Jan 2024",  # an HTTP date without a time: email.utils raises on it
        "Mon, 32 Foo 2024 99:99:99 GMT",
        ",",
        "inf",
        "-inf",
        "nan",
        "1e400",  # float() gives inf
        "9" * 400,
        "\x00",
    ],
)
def test_an_unusable_retry_after_means_the_default_wait_never_an_error(header: str) -> None:
    failure = classify_error(429, "Request was throttled.", retry_after_header=header)

    assert isinstance(failure, TransientFailure)
    assert failure.reason is Reason.THROTTLED
    assert failure.retry_after == DEFAULT_RETRY_AFTER_SECONDS


def test_a_retry_after_http_date_is_seconds_from_now_and_a_huge_one_is_capped() -> None:
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    far = email.utils.formatdate(time.time() + 10 * 86400, usegmt=True)
    past = email.utils.formatdate(time.time() - 60, usegmt=True)

    assert 25 <= (wait_of(soon) or 0) <= 31
    assert wait_of(far) == MAX_RETRY_AFTER_SECONDS
    assert wait_of(past) == 0.0
    assert wait_of("-5") == 0.0


def wait_of(header: str) -> float | None:
    failure = classify_error(429, "", header)
    assert isinstance(failure, TransientFailure)
    return failure.retry_after
