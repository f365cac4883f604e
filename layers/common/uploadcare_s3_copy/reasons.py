"""The failure vocabulary: one machine-readable reason per way a copy can fail.

The same strings appear in logs, metrics, the DLQ's `reason` message attribute and docs/design.md, "Failure reasons".
"""

from enum import StrEnum


class Reason(StrEnum):
    # Permanent: retrying cannot help; the copy request goes to the dead-letter queue with this reason.
    STORAGE_NOT_FOUND = "storage_not_found"  # 400 "Project has no storage with provided name."
    INVALID_PATTERN = "invalid_pattern"  # 400 "Invalid pattern provided: ..."
    BAD_SOURCE = "bad_source"  # 400 "Bad `source` parameter..." / "`source` parameter is required."
    TOO_LARGE = "too_large"  # 400 "Copying of large files is not supported at the moment." (over 5 GB)
    PLAN_NOT_ALLOWED = "plan_not_allowed"  # 400 "Not allowed on your current plan."
    NOT_FOUND = "not_found"  # 404: file unknown or deleted
    NOT_ACCEPTABLE = "not_acceptable"  # 406: wrong Accept header (a bug on our side, never fixed by retrying)
    BAD_REQUEST = "bad_request"  # any other 4xx
    UNEXPECTED_BUCKET = "unexpected_bucket"  # the copy landed in a bucket other than TARGET_BUCKET
    VERIFICATION_FAILED = "verification_failed"  # head_object: object missing or of the wrong size
    INVALID_COPY_REQUEST = "invalid_copy_request"  # a queue message that is not a valid copy request
    UNKNOWN_SPEC = "unknown_spec"  # the request names copy specs this deployment does not have
    NOT_DELETED_AT_SOURCE = "not_deleted_at_source"  # a file.deleted for a file GET /files/<uuid>/ shows present
    NOT_INFECTED_AT_SOURCE = "not_infected_at_source"  # a file.infected for a file Uploadcare does not flag infected

    # Transient: the record is given back to SQS and retried; after maxReceiveCount SQS dead-letters it.
    THROTTLED = "throttled"  # 429 with Retry-After
    NOT_READY = "not_ready"  # 400 "File is not ready yet."
    SERVER_ERROR = "server_error"  # 5xx
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    AUTH = "auth"  # 401: re-read the secret once, then retry later
    NOT_YET_VISIBLE = "not_yet_visible"  # 200/201 from remote_copy, but head_object finds no object yet
    IN_PROGRESS = "in_progress"  # another invocation holds the idempotency record for this copy
    AWS_UNAVAILABLE = "aws_unavailable"  # S3, SQS, DynamoDB or Secrets Manager could not be reached


class CopyFailure(Exception):
    """A copy that did not end verified; `reason` says why, `detail` gives the particulars (never secrets)."""

    transient: bool = False

    def __init__(
        self, reason: Reason, detail: str, *, status: int | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status  # the HTTP status when the failure is an answer from Uploadcare
        self.request_id = request_id  # Uploadcare's X-Uploadcare-Request-Id, worth quoting to their support


class PermanentFailure(CopyFailure):
    """Retrying cannot help: the request goes to the dead-letter queue with its reason."""

    transient = False


class TransientFailure(CopyFailure):
    """Worth retrying later: the record is handed back to SQS (and to the DLQ by SQS after maxReceiveCount)."""

    transient = True

    def __init__(
        self,
        reason: Reason,
        detail: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(reason, detail, status=status, request_id=request_id)
        self.retry_after = retry_after  # seconds Uploadcare asked us to wait (429 Retry-After)
