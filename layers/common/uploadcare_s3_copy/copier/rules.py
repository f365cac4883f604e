"""The copier's pure rules: limits, back-off, what makes two requests the same copy, where a copy must be, what
proves it, and the invocation's deadline (docs/design.md, "Copier: one record's outcomes")."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import urllib3

from uploadcare_s3_copy.copy_request import CopyRequest
from uploadcare_s3_copy.reasons import CopyFailure, PermanentFailure, Reason, TransientFailure
from uploadcare_s3_copy.s3location import S3Location
from uploadcare_s3_copy.specs import CopySpec
from uploadcare_s3_copy.uploadcare.client import RemoteCopyResult

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# "Copying of large files is not supported at the moment. File size MUST NOT exceed 5 GB." Whether GB means 10^9
# or 2^30 is not documented: files above the larger reading are refused here without a call, files between the
# two are left to Uploadcare (whose 400 maps to `too_large` as well).
MAX_COPY_BYTES = 5 * 1024**3
MIN_CALL_SECONDS = 2.0  # below this, a call is not started: the record is given back instead
MAX_THROTTLE_WAITS = 2
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
DENIED_CODES = frozenset({"403", "AccessDenied", "Forbidden"})

# Every AWS call the copier makes is bounded by its client configuration (copier/app.py, `aws_client_config`):
# 1 s to connect, 2 s per read, two attempts in all. AWS_CALL_SECONDS is the worst such call, back-off included.
AWS_CONNECT_SECONDS = 1.0
AWS_READ_SECONDS = 2.0
AWS_ATTEMPTS = 2
AWS_CALL_SECONDS = AWS_ATTEMPTS * (AWS_CONNECT_SECONDS + AWS_READ_SECONDS) + 1.0
# Kept free at the end of an invocation: the one ChangeMessageVisibilityBatch call, then reporting the batch. Without
# it a Lambda timeout would lose the partial-batch response (every record back after the visibility timeout).
SAFETY_MARGIN_SECONDS = AWS_CALL_SECONDS + 3.0
# What may follow a remote copy inside one record: head_object, the ledger write, then the idempotency save (or its
# delete, the DLQ send and the ledger's dead_lettered item). The remote copy's own timeout leaves this much of the
# deadline to them.
AFTER_COPY_SECONDS = 4 * AWS_CALL_SECONDS

# A record given back is made visible again after a back-off instead of the queue's visibility timeout (6 x the
# function timeout: half an hour or more): 15 s, doubling per receive, at most 15 min. With the template's default
# MaxReceiveCount of 10 the nine waits add up to 3,645 s: about an hour of transient trouble (an Uploadcare 5xx
# spell, a run of 429s, an AWS outage) is ridden out before SQS dead-letters a request (`retry_budget_seconds`).
RETRY_BASE_SECONDS = 15
RETRY_MAX_SECONDS = 900
DEFAULT_MAX_RECEIVES = 10
# A copy request whose idempotency record is INPROGRESS (another invocation copying it, or an invocation whose save
# failed) comes back once that record's in-progress window has ended, plus this much.
IN_PROGRESS_MARGIN_SECONDS = 2
# A remote copy answered 200/201 whose object head_object cannot find yet: looked for again in-process after these
# waits, then given back (`not_yet_visible`) until the record's receive count reaches NOT_VISIBLE_RECEIVES, and
# only then `verification_failed`. Uploadcare documents that a local copy's 201 can precede the copy itself.
NOT_VISIBLE_WAITS = (1.0, 2.0)
NOT_VISIBLE_RECEIVES = 3
SQS_MAX_VISIBILITY_SECONDS = 43200


def retry_delay(retry_after: float | None, receive_count: int) -> int:
    """Seconds until a given-back record is delivered again: the exponential back-off on the receive count (15 s,
    30 s, 60 s, ... at most 15 min), or Uploadcare's Retry-After when that is longer. Never shorter than the back-off:
    a run of short Retry-After answers must not spend the receives of the retry budget in seconds."""
    doublings: int = min(max(0, receive_count - 1), 10)
    delay = int(min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2**doublings))
    if retry_after is not None and math.isfinite(retry_after) and retry_after > delay:
        delay = min(RETRY_MAX_SECONDS, math.ceil(retry_after))
    return delay


def retry_budget_seconds(max_receives: int) -> int:
    """How long a request that keeps failing transiently is retried before SQS dead-letters it: the waits after
    each of its first `max_receives - 1` receives."""
    return sum(retry_delay(None, count) for count in range(1, max_receives))


def hold_delay(seconds_left: float) -> int:
    """The visibility for a record that must not come back before a window `seconds_left` long has ended."""
    return max(1, min(SQS_MAX_VISIBILITY_SECONDS, math.ceil(seconds_left) + IN_PROGRESS_MARGIN_SECONDS))


def locate_copy(result: RemoteCopyResult, request: CopyRequest, spec: CopySpec) -> S3Location:
    """Where the copy must be: Uploadcare's `result`, or (200 without one) the key predicted from the spec's
    pattern. A spec that sends no pattern (the storage's own applies) cannot predict: without `result` it is
    `verification_failed`, never a guess."""
    location = result.location
    if location is None:
        key = spec.predicted_key(request.uuid, request.original_filename)
        if key is None:
            raise PermanentFailure(
                Reason.VERIFICATION_FAILED,
                f"Uploadcare answered {result.status} without `result`, and copy spec {spec.name!r} sends no pattern "
                "(the storage's own applies), so the key cannot be predicted: set a pattern to make it verifiable",
            )
        location = S3Location(spec.bucket, key)
    if location.bucket != spec.bucket:
        raise PermanentFailure(
            Reason.UNEXPECTED_BUCKET,
            f"Uploadcare copied to {location}, not into bucket {spec.bucket} of copy spec {spec.name!r}: "
            f"does storage {spec.target!r} point at another bucket?",
        )
    return location


def missing_object(location: S3Location, expected_size: int | None, receive_count: int) -> CopyFailure:
    """No object where the copy must be, after Uploadcare answered success: not visible yet on early receives
    (given back), `verification_failed` from the NOT_VISIBLE_RECEIVES-th on."""
    expected = f"{expected_size} bytes" if expected_size is not None else "a processed version"
    detail = f"no object at {location} (expected {expected})"
    if receive_count < NOT_VISIBLE_RECEIVES:
        return TransientFailure(Reason.NOT_YET_VISIBLE, f"{detail}; looked again on receive {receive_count}")
    return PermanentFailure(Reason.VERIFICATION_FAILED, detail)


def check_object(location: S3Location, found_size: int, expected_size: int | None) -> None:
    """The proof, once an object was found: the original file's size, or (a processed version, whose size is not
    known in advance: `expected_size` None) any size above zero."""
    if expected_size is None:
        if found_size <= 0:
            raise PermanentFailure(Reason.VERIFICATION_FAILED, f"{location} is empty (a processed version)")
        return
    if found_size != expected_size:
        raise PermanentFailure(
            Reason.VERIFICATION_FAILED, f"{location} has {found_size} bytes, expected {expected_size}"
        )


class Deadline:
    """The time this invocation has left, minus a safety margin; every network call is bounded by it."""

    def __init__(self, seconds_left: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._length = seconds_left
        self._ends_at = clock() + seconds_left - SAFETY_MARGIN_SECONDS

    @classmethod
    def of(cls, context: LambdaContext) -> Deadline:
        return cls(context.get_remaining_time_in_millis() / 1000)

    def left(self) -> float:
        return self._ends_at - self._clock()

    def invocation_started_with(self) -> float:
        """The time this invocation had when it began: close to the function timeout, so a bound on how long any
        other invocation's in-progress window can still last."""
        return self._length

    def invocation_left(self) -> float:
        """Until the Lambda invocation itself ends (the end of Powertools' in-progress window for its records)."""
        return self.left() + SAFETY_MARGIN_SECONDS

    def call_timeout(self, reserve: float = 0.0) -> urllib3.Timeout:
        """A urllib3 timeout for a call that must end `reserve` seconds before the deadline. `total` bounds the
        whole call (connect and every read), not each socket read."""
        budget = self.left() - reserve
        if budget < MIN_CALL_SECONDS:
            raise TransientFailure(Reason.TIMEOUT, f"only {max(budget, 0):.1f} s left in this invocation")
        return urllib3.Timeout(total=budget, connect=min(5.0, budget), read=budget)

    def can_wait(self, seconds: float, reserve: float = 0.0) -> bool:
        return self.left() - reserve - seconds >= MIN_CALL_SECONDS

    def allows_aws_call(self) -> bool:
        return self.left() >= AWS_CALL_SECONDS
