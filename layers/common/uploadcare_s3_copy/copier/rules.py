"""The copier's pure rules: limits, back-off, what makes two requests the same copy, where a copy must be, what
proves it, and the invocation's deadline (docs/design.md, "Copier: one record's outcomes")."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import urllib3

from uploadcare_s3_copy.copier.patterns import predict_key
from uploadcare_s3_copy.copier.settings import CopierSettings
from uploadcare_s3_copy.copy_request import CopyRequest
from uploadcare_s3_copy.reasons import PermanentFailure, Reason, TransientFailure
from uploadcare_s3_copy.s3location import S3Location
from uploadcare_s3_copy.uploadcare.client import RemoteCopyResult

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# "Copying of large files is not supported at the moment. File size MUST NOT exceed 5 GB." Whether GB means 10^9
# or 2^30 is not documented: files above the larger reading are refused here without a call, files between the
# two are left to Uploadcare (whose 400 maps to `too_large` as well).
MAX_COPY_BYTES = 5 * 1024**3
SAFETY_MARGIN_SECONDS = 3.0  # kept free at the end of an invocation to report the batch
MIN_CALL_SECONDS = 2.0  # below this, a call is not started: the record is given back instead
MAX_THROTTLE_WAITS = 2
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
DENIED_CODES = frozenset({"403", "AccessDenied", "Forbidden"})
# A record given back is made visible again after a back-off instead of the queue's visibility timeout (6 x the
# function timeout: half an hour or more), so a passing 5xx costs seconds, not half an hour.
RETRY_BASE_SECONDS = 15
RETRY_MAX_SECONDS = 900
IN_PROGRESS_RETRY_SECONDS = 30  # the other invocation is probably about to finish


def retry_delay(reason: Reason | None, retry_after: float | None, receive_count: int) -> int:
    """Seconds until a given-back record is delivered again: Uploadcare's Retry-After when it named one, else an
    exponential back-off on the receive count (15 s, 30 s, 60 s, ... at most 15 min)."""
    if retry_after is not None:
        return max(1, min(RETRY_MAX_SECONDS, math.ceil(retry_after)))
    if reason is Reason.IN_PROGRESS:
        return IN_PROGRESS_RETRY_SECONDS
    doublings: int = min(max(0, receive_count - 1), 10)
    return int(min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2**doublings))


def idempotency_key(request: CopyRequest, settings: CopierSettings) -> dict[str, str]:
    """What makes two copy requests the same copy. Not the SQS message id: it changes on every redelivery."""
    return {"uuid": request.uuid, "target": settings.copy_target, "pattern": settings.copy_pattern, "effects": ""}


def locate_copy(result: RemoteCopyResult, request: CopyRequest, settings: CopierSettings) -> S3Location:
    """Where the copy must be: Uploadcare's `result`, or (200 without one) the key predicted from the pattern."""
    location = result.location or S3Location(
        settings.target_bucket,
        predict_key(settings.target_prefix, settings.copy_pattern, request.uuid, request.original_filename),
    )
    if location.bucket != settings.target_bucket:
        raise PermanentFailure(
            Reason.UNEXPECTED_BUCKET,
            f"Uploadcare copied to {location}, not into TARGET_BUCKET {settings.target_bucket}: "
            f"does storage {settings.copy_target!r} point at another bucket?",
        )
    return location


def missing_object(location: S3Location, expected_size: int) -> PermanentFailure:
    return PermanentFailure(Reason.VERIFICATION_FAILED, f"no object at {location} (expected {expected_size} bytes)")


def check_object(location: S3Location, found_size: int, expected_size: int) -> None:
    """The proof, once an object was found: it has the original file's size."""
    if found_size != expected_size:
        raise PermanentFailure(
            Reason.VERIFICATION_FAILED, f"{location} has {found_size} bytes, expected {expected_size}"
        )


class Deadline:
    """The time this invocation has left, minus a safety margin; every network call is bounded by it."""

    def __init__(self, seconds_left: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ends_at = clock() + seconds_left - SAFETY_MARGIN_SECONDS

    @classmethod
    def of(cls, context: LambdaContext) -> Deadline:
        return cls(context.get_remaining_time_in_millis() / 1000)

    def left(self) -> float:
        return self._ends_at - self._clock()

    def call_timeout(self) -> urllib3.Timeout:
        left = self.left()
        if left < MIN_CALL_SECONDS:
            raise TransientFailure(Reason.TIMEOUT, f"only {max(left, 0):.1f} s left in this invocation")
        return urllib3.Timeout(connect=min(5.0, left), read=left)

    def can_wait(self, seconds: float) -> bool:
        return self.left() - seconds >= MIN_CALL_SECONDS
