"""The copier's decisions, as a table: every Uploadcare answer x what head_object finds -> the outcome.

The Uploadcare client and S3 are faked at the process edge; the decisions themselves are the real code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from uploadcare_s3_copy.copier.outcomes import Verified
from uploadcare_s3_copy.copier.rules import (
    AFTER_COPY_SECONDS,
    MAX_COPY_BYTES,
    NOT_VISIBLE_RECEIVES,
    NOT_VISIBLE_WAITS,
    SAFETY_MARGIN_SECONDS,
    Deadline,
    retry_budget_seconds,
    retry_delay,
)
from uploadcare_s3_copy.copier.service import CopyService
from uploadcare_s3_copy.copier.settings import load_copier_settings
from uploadcare_s3_copy.copy_request import CopyRequest
from uploadcare_s3_copy.reasons import CopyFailure, PermanentFailure, Reason, TransientFailure
from uploadcare_s3_copy.s3location import S3Location
from uploadcare_s3_copy.secrets import UploadcareKeys
from uploadcare_s3_copy.specs import CopySpec
from uploadcare_s3_copy.uploadcare import CopyStatus, RemoteCopyResult, UploadcareAuthError, classify_error

UUID = "03ccf9ab-f266-43fb-973d-a6529c55c2ae"
BUCKET = "target-bucket"
SIZE = 1234
PREDICTED = f"uploads/{UUID}/my_photo.jpg"
SETTINGS = load_copier_settings(
    {
        "UPLOADCARE_SECRET_ID": "s",
        "COPY_DLQ_URL": "q",
        "IDEMPOTENCY_TABLE": "t",
        "COPY_LEDGER_TABLE": "l",
        "COPY_TARGET": "mystorage",
        "TARGET_BUCKET": BUCKET,
        "TARGET_PREFIX": "uploads/",
    }
)
KEYS = UploadcareKeys("pk", "sk", "whsec")


def request(size: int = SIZE, filename: str = "my photo!.jpg") -> CopyRequest:
    return CopyRequest(
        uuid=UUID,
        size=size,
        original_filename=filename,
        mime_type="image/jpeg",
        cdn_url="",
        event="file.uploaded",
        received_at="2026-11-24T00:00:00.000Z",
        origin="webhook",
    )


def copied(url: str | None) -> RemoteCopyResult:
    return RemoteCopyResult(CopyStatus.COPIED, S3Location.parse(url) if url else None, url, "req")


def exists(url: str | None) -> RemoteCopyResult:
    return RemoteCopyResult(CopyStatus.ALREADY_EXISTS, S3Location.parse(url) if url else None, url, "req")


@dataclass
class FakeUploadcare:
    answers: list[RemoteCopyResult | CopyFailure]
    calls: list[dict[str, Any]] = field(default_factory=list)

    def remote_copy(self, source: str, target: str, **kwargs: Any) -> RemoteCopyResult:
        self.calls.append({"source": source, "target": target, **kwargs})
        answer = self.answers.pop(0)
        if isinstance(answer, CopyFailure):
            raise answer
        return answer


def not_found() -> ClientError:
    return ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")


@dataclass
class FakeS3:
    objects: dict[tuple[str, str], int]
    error: Exception | None = None
    heads: list[str] = field(default_factory=list)

    def head_object(self, Bucket: str, Key: str, ChecksumMode: str = "") -> dict[str, Any]:
        self.heads.append(Key)
        if self.error:
            raise self.error
        if (Bucket, Key) not in self.objects:
            raise not_found()
        return {"ContentLength": self.objects[(Bucket, Key)], "ETag": f'"etag-of-{Key}"'}


class FakeKeyStore:
    def __init__(self, fresh: UploadcareKeys) -> None:
        self.fresh = fresh
        self.refreshes = 0

    def get(self) -> UploadcareKeys:
        return self.fresh

    def refresh(self) -> UploadcareKeys | None:
        self.refreshes += 1
        return self.fresh


def run(
    answers: list[RemoteCopyResult | CopyFailure],
    objects: dict[tuple[str, str], int],
    *,
    req: CopyRequest | None = None,
    spec: CopySpec | None = None,
    seconds_left: float = 60,
    s3_error: Exception | None = None,
    fresh_keys: UploadcareKeys = KEYS,
    receive_count: int = NOT_VISIBLE_RECEIVES,
    on_sleep: Callable[[float], None] | None = None,
) -> tuple[Verified | CopyFailure, FakeUploadcare, FakeS3, list[float]]:
    uploadcare = FakeUploadcare(list(answers))
    s3 = FakeS3(objects, s3_error)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if on_sleep is not None:
            on_sleep(seconds)

    service = CopyService(
        s3=s3,
        key_store=FakeKeyStore(fresh_keys),  # type: ignore[arg-type]
        client_factory=lambda keys: uploadcare,  # type: ignore[arg-type,return-value]
        sleep=sleep,
    )
    try:
        outcome: Verified | CopyFailure = service.copy_and_verify(
            req or request(), spec or SETTINGS.specs[0], KEYS, Deadline(seconds_left), receive_count
        )
    except CopyFailure as failure:
        outcome = failure
    return outcome, uploadcare, s3, slept


RESULT_KEY = f"uploads/{UUID}/myphoto.jpg"
RESULT_URL = f"s3://{BUCKET}/{RESULT_KEY}"
HERE = {(BUCKET, RESULT_KEY): SIZE}
PREDICTED_HERE = {(BUCKET, f"uploads/{UUID}/myphoto.jpg"): SIZE}

TABLE = [
    # (name, uploadcare answers, objects in S3, expected status or reason), as judged on the record's
    # NOT_VISIBLE_RECEIVES-th receive (earlier receives give a missing object more time: see the tests below)
    ("201 + object of the right size", [copied(RESULT_URL)], HERE, CopyStatus.COPIED),
    ("201 + object missing", [copied(RESULT_URL)], {}, Reason.VERIFICATION_FAILED),
    ("201 + wrong size", [copied(RESULT_URL)], {(BUCKET, RESULT_KEY): SIZE + 1}, Reason.VERIFICATION_FAILED),
    ("201 in another bucket", [copied(f"s3://other/{RESULT_KEY}")], HERE, Reason.UNEXPECTED_BUCKET),
    ("201 without result -> predicted key", [copied(None)], PREDICTED_HERE, CopyStatus.COPIED),
    ("200 with result", [exists(RESULT_URL)], HERE, CopyStatus.ALREADY_EXISTS),
    ("200 without result -> predicted key", [exists(None)], PREDICTED_HERE, CopyStatus.ALREADY_EXISTS),
    (
        "200 without result, object elsewhere",
        [exists(None)],
        {(BUCKET, f"{UUID}/x.jpg"): SIZE},
        Reason.VERIFICATION_FAILED,
    ),
    ("200 without result, nothing there", [exists(None)], {}, Reason.VERIFICATION_FAILED),
    ("200 with result in another bucket", [exists(f"s3://other/{RESULT_KEY}")], HERE, Reason.UNEXPECTED_BUCKET),
    ("200 + wrong size", [exists(RESULT_URL)], {(BUCKET, RESULT_KEY): 1}, Reason.VERIFICATION_FAILED),
    ("404 unknown file", [classify_error(404, "Not found.")], {}, Reason.NOT_FOUND),
    (
        "400 no storage",
        [classify_error(400, "Project has no storage with provided name.")],
        {},
        Reason.STORAGE_NOT_FOUND,
    ),
    ("400 pattern", [classify_error(400, "Invalid pattern provided: x")], {}, Reason.INVALID_PATTERN),
    (
        "400 too large",
        [classify_error(400, "Copying of large files is not supported at the moment.")],
        {},
        Reason.TOO_LARGE,
    ),
    ("400 plan", [classify_error(400, "Not allowed on your current plan.")], {}, Reason.PLAN_NOT_ALLOWED),
    ("406", [classify_error(406, "Incorrect Accept header provided")], {}, Reason.NOT_ACCEPTABLE),
    ("400 not ready", [classify_error(400, "File is not ready yet.")], {}, Reason.NOT_READY),
    ("500", [classify_error(500, "oops")], {}, Reason.SERVER_ERROR),
    ("timeout", [TransientFailure(Reason.TIMEOUT, "read timeout")], {}, Reason.TIMEOUT),
    ("429 then 201", [classify_error(429, "", "1"), copied(RESULT_URL)], HERE, CopyStatus.COPIED),
    ("429 thrice", [classify_error(429, "", "1")] * 3, HERE, Reason.THROTTLED),
    ("401 with unchanged secret", [classify_error(401, "Invalid signature.")], HERE, Reason.AUTH),
]


@pytest.mark.parametrize(("answers", "objects", "expected"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_outcome_table(
    answers: list[RemoteCopyResult | CopyFailure],
    objects: dict[tuple[str, str], int],
    expected: CopyStatus | Reason,
) -> None:
    outcome, _, _, _ = run(answers, objects)

    if isinstance(expected, CopyStatus):
        assert isinstance(outcome, Verified), outcome
        assert outcome.status is expected
        assert outcome.bucket == BUCKET
        assert outcome.size == SIZE
    else:
        assert isinstance(outcome, CopyFailure)
        assert outcome.reason is expected
        assert outcome.transient is (expected in TRANSIENT)


TRANSIENT = {
    Reason.NOT_READY,
    Reason.SERVER_ERROR,
    Reason.TIMEOUT,
    Reason.THROTTLED,
    Reason.AUTH,
    Reason.AWS_UNAVAILABLE,
    Reason.NOT_YET_VISIBLE,
}


def test_make_public_and_pattern_are_always_sent() -> None:
    _, uploadcare, _, _ = run([copied(RESULT_URL)], HERE)

    call = uploadcare.calls[0]
    assert call["source"] == UUID
    assert call["target"] == "mystorage"
    assert call["make_public"] is False
    assert call["pattern"] == "${default}"


def test_over_5_gb_goes_to_the_dlq_without_calling_uploadcare() -> None:
    outcome, uploadcare, s3, _ = run([copied(RESULT_URL)], HERE, req=request(size=MAX_COPY_BYTES + 1))

    assert isinstance(outcome, PermanentFailure)
    assert outcome.reason is Reason.TOO_LARGE
    assert uploadcare.calls == []
    assert s3.heads == []


def test_exactly_5_gib_is_still_attempted() -> None:
    size = MAX_COPY_BYTES
    outcome, uploadcare, _, _ = run([copied(RESULT_URL)], {(BUCKET, RESULT_KEY): size}, req=request(size=size))

    assert isinstance(outcome, Verified)
    assert len(uploadcare.calls) == 1


def test_verification_detail_carries_the_numbers() -> None:
    outcome, _, _, _ = run([copied(RESULT_URL)], {(BUCKET, RESULT_KEY): 999})

    assert isinstance(outcome, PermanentFailure)
    assert "999 bytes, expected 1234" in outcome.detail


def test_throttle_waits_retry_after_when_time_allows() -> None:
    outcome, uploadcare, _, slept = run([classify_error(429, "", "4"), copied(RESULT_URL)], HERE)

    assert isinstance(outcome, Verified)
    assert slept == [4.0]
    assert len(uploadcare.calls) == 2


def test_throttle_gives_the_record_back_when_the_wait_would_outlast_the_invocation() -> None:
    outcome, uploadcare, _, slept = run([classify_error(429, "", "30"), copied(RESULT_URL)], HERE, seconds_left=60)

    assert isinstance(outcome, TransientFailure)
    assert outcome.reason is Reason.THROTTLED
    assert slept == []
    assert len(uploadcare.calls) == 1


def test_no_call_is_started_when_too_little_time_is_left() -> None:
    outcome, uploadcare, _, _ = run([copied(RESULT_URL)], HERE, seconds_left=4)

    assert isinstance(outcome, TransientFailure)
    assert outcome.reason is Reason.TIMEOUT
    assert uploadcare.calls == []


def test_call_timeout_bounds_the_whole_call_and_leaves_room_for_what_follows() -> None:
    _, uploadcare, _, _ = run([copied(RESULT_URL)], HERE, seconds_left=60)

    # 60 s minus the safety margin (the batch's visibility change and report) and the calls after the copy
    # (head_object, the idempotency save or the DLQ send), as a total, not per socket read
    budget = 60 - SAFETY_MARGIN_SECONDS - AFTER_COPY_SECONDS
    timeout = uploadcare.calls[0]["timeout"]
    assert budget - 1 < timeout.total <= budget
    assert timeout.read_timeout <= budget
    assert timeout.connect_timeout <= 5


def test_a_call_that_would_eat_into_the_room_after_it_is_not_started() -> None:
    seconds_left = SAFETY_MARGIN_SECONDS + AFTER_COPY_SECONDS + 1  # a 1 s call budget: below the 2 s minimum
    outcome, uploadcare, _, _ = run([copied(RESULT_URL)], HERE, seconds_left=seconds_left)

    assert isinstance(outcome, TransientFailure)
    assert outcome.reason is Reason.TIMEOUT
    assert uploadcare.calls == []


@pytest.mark.parametrize("status", [copied, exists], ids=["201", "200"])
def test_missing_after_success_is_looked_for_again_then_given_back_on_an_early_receive(
    status: Callable[[str | None], RemoteCopyResult],
) -> None:
    outcome, uploadcare, s3, slept = run([status(RESULT_URL)], {}, receive_count=1)

    assert isinstance(outcome, TransientFailure)
    assert outcome.reason is Reason.NOT_YET_VISIBLE
    assert slept == list(NOT_VISIBLE_WAITS)
    assert len(s3.heads) == 1 + len(NOT_VISIBLE_WAITS)
    assert len(uploadcare.calls) == 1


def test_missing_after_success_is_a_verification_failure_from_the_last_patient_receive() -> None:
    early, _, _, _ = run([copied(RESULT_URL)], {}, receive_count=NOT_VISIBLE_RECEIVES - 1)
    late, _, _, _ = run([copied(RESULT_URL)], {}, receive_count=NOT_VISIBLE_RECEIVES)

    assert isinstance(early, TransientFailure)
    assert isinstance(late, PermanentFailure)
    assert late.reason is Reason.VERIFICATION_FAILED


def test_an_object_that_appears_while_waiting_is_verified() -> None:
    objects: dict[tuple[str, str], int] = {}

    def lands(_seconds: float) -> None:
        objects[(BUCKET, RESULT_KEY)] = SIZE

    outcome, _, _, slept = run([copied(RESULT_URL)], objects, receive_count=1, on_sleep=lands)

    assert isinstance(outcome, Verified)
    assert slept == [NOT_VISIBLE_WAITS[0]]


def test_a_wrong_size_is_not_waited_for() -> None:
    outcome, _, _, slept = run([copied(RESULT_URL)], {(BUCKET, RESULT_KEY): 1}, receive_count=1)

    assert isinstance(outcome, PermanentFailure)
    assert slept == []


def test_auth_failure_rereads_the_secret_once_and_retries_with_the_new_keys() -> None:
    rotated = UploadcareKeys("pk", "sk-rotated", "whsec")

    outcome, uploadcare, _, _ = run(
        [classify_error(401, "Invalid signature."), copied(RESULT_URL)], HERE, fresh_keys=rotated
    )

    assert isinstance(outcome, Verified)
    assert len(uploadcare.calls) == 2


def test_auth_failure_after_the_reread_is_transient_auth() -> None:
    rotated = UploadcareKeys("pk", "sk-rotated", "whsec")

    outcome, uploadcare, _, _ = run(
        [classify_error(401, "Invalid signature."), classify_error(401, "Invalid signature.")], HERE, fresh_keys=rotated
    )

    assert isinstance(outcome, UploadcareAuthError)
    assert len(uploadcare.calls) == 2


def test_percent_encoded_result_is_found_under_its_decoded_key() -> None:
    key = f"uploads/{UUID}/a b.jpg"
    outcome, _, s3, _ = run([copied(f"s3://{BUCKET}/uploads/{UUID}/a%20b.jpg")], {(BUCKET, key): SIZE})

    assert isinstance(outcome, Verified)
    assert outcome.key == key
    assert s3.heads == [f"uploads/{UUID}/a%20b.jpg", key]


def test_head_denied_names_the_missing_permission() -> None:
    denied = ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject")

    outcome, _, _, _ = run([copied(RESULT_URL)], HERE, s3_error=denied)

    assert isinstance(outcome, PermanentFailure)
    assert outcome.reason is Reason.VERIFICATION_FAILED
    assert "s3:ListBucket" in outcome.detail


def test_s3_unreachable_is_transient() -> None:
    outcome, _, _, _ = run([copied(RESULT_URL)], HERE, s3_error=EndpointConnectionError(endpoint_url="http://s3"))

    assert isinstance(outcome, TransientFailure)
    assert outcome.reason is Reason.AWS_UNAVAILABLE


@pytest.mark.parametrize(
    ("retry_after", "receive_count", "seconds"),
    [
        (40.0, 1, 40),  # Retry-After, when longer than the back-off
        (10.0, 1, 15),  # never shorter than the back-off
        (0.2, 3, 60),
        (7200.0, 1, 900),  # at most 15 minutes
        (float("inf"), 1, 15),  # a nonsense Retry-After means the back-off
        (float("nan"), 2, 30),
        (None, 1, 15),
        (None, 2, 30),
        (None, 4, 120),
        (None, 9, 900),
        (None, 10_000, 900),
    ],
)
def test_given_back_records_return_after_retry_after_or_a_backoff(
    retry_after: float | None, receive_count: int, seconds: int
) -> None:
    assert retry_delay(retry_after, receive_count) == seconds


def test_the_default_retry_budget_rides_out_an_hour_of_trouble() -> None:
    # Before: 5 receives of 15/30/60/120 s waits, 225 s in all
    assert retry_budget_seconds(10) == 15 + 30 + 60 + 120 + 240 + 480 + 900 + 900 + 900
    assert retry_budget_seconds(10) >= 3600
    assert retry_budget_seconds(5) < 3600


# --- copy specs: processed versions and the storage's own pattern ---------------------------------------------

WEB = CopySpec("web", "cdn-storage", BUCKET, "web/", "${uuid}/${auto_filename}", "-/resize/100x/")
WEB_KEY = f"web/{UUID}/myphoto-/resize/100x/.jpg"
OWN_PATTERN = CopySpec("own", "mystorage", BUCKET, "uploads/", None)


def test_a_processed_version_is_copied_from_uuid_and_effects_and_proved_by_any_size() -> None:
    outcome, uploadcare, _s3, _slept = run([copied(None)], {(BUCKET, WEB_KEY): 17}, spec=WEB)

    assert isinstance(outcome, Verified)
    assert (outcome.key, outcome.size) == (WEB_KEY, 17)  # the version's own size, not the original's
    assert uploadcare.calls[0]["source"] == f"{UUID}/-/resize/100x/"
    assert uploadcare.calls[0]["target"] == "cdn-storage"
    assert uploadcare.calls[0]["pattern"] == "${uuid}/${auto_filename}"


def test_an_empty_processed_version_is_not_a_proof() -> None:
    outcome, _uploadcare, _s3, _slept = run([copied(f"s3://{BUCKET}/{WEB_KEY}")], {(BUCKET, WEB_KEY): 0}, spec=WEB)

    assert isinstance(outcome, CopyFailure)
    assert outcome.reason is Reason.VERIFICATION_FAILED
    assert "empty" in outcome.detail


def test_a_processed_version_predicted_wrongly_is_verification_failed() -> None:
    elsewhere = {(BUCKET, f"web/{UUID}/myphoto.jpg"): 17}  # where a pattern without ${effects} would have put it

    outcome, _uploadcare, _s3, _slept = run([exists(None)], elsewhere, spec=WEB)

    assert isinstance(outcome, CopyFailure)
    assert outcome.reason is Reason.VERIFICATION_FAILED


def test_a_processed_version_of_a_file_over_5_gb_is_still_tried() -> None:
    big = request(size=6 * 1024**3)

    outcome, uploadcare, _s3, _slept = run([copied(None)], {(BUCKET, WEB_KEY): 17}, req=big, spec=WEB)

    assert isinstance(outcome, Verified)
    assert len(uploadcare.calls) == 1


def test_the_storages_own_pattern_sends_no_pattern_and_verifies_from_result() -> None:
    key = f"uploads/anything/{UUID}"

    outcome, uploadcare, _s3, _slept = run([copied(f"s3://{BUCKET}/{key}")], {(BUCKET, key): SIZE}, spec=OWN_PATTERN)

    assert isinstance(outcome, Verified)
    assert outcome.key == key
    assert uploadcare.calls[0]["pattern"] is None


def test_the_storages_own_pattern_without_result_cannot_be_verified() -> None:
    outcome, _uploadcare, s3, _slept = run([exists(None)], {(BUCKET, PREDICTED): SIZE}, spec=OWN_PATTERN)

    assert isinstance(outcome, CopyFailure)
    assert outcome.reason is Reason.VERIFICATION_FAILED
    assert "without `result`" in outcome.detail
    assert "sends no pattern" in outcome.detail
    assert s3.heads == []  # no guess is looked for
