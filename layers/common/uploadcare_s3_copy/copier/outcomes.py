"""What the copier produces: a verified copy, and one record's outcome."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from uploadcare_s3_copy.reasons import Reason
from uploadcare_s3_copy.uploadcare.client import CopyStatus


@dataclass(frozen=True)
class Verified:
    """A copy proved by head_object."""

    status: CopyStatus
    bucket: str
    key: str
    size: int
    etag: str = ""  # without quotes
    checksum: str = ""  # S3's ChecksumCRC64NVME, when head_object returns one

    def as_record(self) -> dict[str, Any]:
        return {"status": str(self.status), "bucket": self.bucket, "key": self.key, "size": self.size}


@dataclass(frozen=True)
class RecordOutcome:
    """What happened to one SQS record; metrics are added from these, on the main thread, after the batch."""

    outcome: str  # copied | already_exists | duplicate | skipped | dead_lettered | retry
    uuid: str | None
    seconds: float
    reason: Reason | None = None
    size: int = 0
    retry_after: float | None = None  # what Uploadcare asked for (429 Retry-After), when giving back
    # When giving back a record whose idempotency record stays INPROGRESS: the time.monotonic() at which that
    # in-progress window ends. The record must not come back before then (it would only be "in progress" again).
    hold_until: float | None = None
    spec: str | None = None  # the copy spec (names joined by commas for a request parked for several)

    @property
    def give_back(self) -> bool:
        return self.outcome == "retry"
