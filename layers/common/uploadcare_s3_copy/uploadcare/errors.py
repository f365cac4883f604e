"""Uploadcare's non-2xx answers mapped to the failure vocabulary of `uploadcare_s3_copy.reasons`.

The status decides first; the `detail` text only refines a 400 (docs/uploadcare-protocol.md, "remote_copy answers").
"""

from __future__ import annotations

import datetime
import email.utils
import math
import re
import time

from uploadcare_s3_copy.reasons import CopyFailure, PermanentFailure, Reason, TransientFailure

DEFAULT_RETRY_AFTER_SECONDS = 10.0


class UploadcareAuthError(TransientFailure):
    """401: wrong keys, a bad signature or a clock more than 15 minutes off. Re-read the secret once, then retry."""

    def __init__(self, detail: str, *, status: int | None = 401, request_id: str | None = None) -> None:
        super().__init__(Reason.AUTH, detail, status=status, request_id=request_id)


_PERMANENT_400 = (
    # (loose match on the lower-cased `detail`, reason); texts differ slightly between docs and live answers.
    ("no storage", Reason.STORAGE_NOT_FOUND),
    ("invalid pattern", Reason.INVALID_PATTERN),
    ("source", Reason.BAD_SOURCE),
    ("large files", Reason.TOO_LARGE),
    ("current plan", Reason.PLAN_NOT_ALLOWED),
)
_RETRY_AFTER_IN_TEXT = re.compile(r"in (\d+(?:\.\d+)?) seconds?")


MAX_RETRY_AFTER_SECONDS = 3600.0  # a longer (or absurd) ask is capped: the copier's back-off takes over


def _retry_after(header: str | None, detail: str) -> float:
    """Seconds Uploadcare asked us to wait: `Retry-After` as delta-seconds or an HTTP date, else "in N seconds" in
    the detail, else the default. Anything unparsable, negative or not finite means the default, never an error."""
    seconds = _retry_after_header(header.strip()) if header else None
    if seconds is None:
        found = _RETRY_AFTER_IN_TEXT.search(detail)
        seconds = _finite(found.group(1)) if found else None
    if seconds is None:
        return DEFAULT_RETRY_AFTER_SECONDS
    return min(MAX_RETRY_AFTER_SECONDS, max(0.0, seconds))


def _retry_after_header(header: str) -> float | None:
    number = _finite(header)
    if number is not None:
        return number
    try:
        parsed = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # "-0000" or no zone: RFC 9110 dates are GMT
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp() - time.time()


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except (ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def classify_error(
    status: int, detail: str, retry_after_header: str | None = None, request_id: str | None = None
) -> CopyFailure:
    """Map a non-2xx answer to the failure vocabulary. The status decides first; `detail` only refines a 400."""
    lowered = detail.lower()
    transient: Reason | None = None
    permanent: Reason | None = None
    if status == 429:
        retry_after = _retry_after(retry_after_header, detail)
        return TransientFailure(Reason.THROTTLED, detail, retry_after=retry_after, status=status, request_id=request_id)
    if status == 401:
        return UploadcareAuthError(detail, status=status, request_id=request_id)
    if status >= 500:
        transient, detail = Reason.SERVER_ERROR, f"HTTP {status}: {detail}"
    elif status == 408:
        transient = Reason.TIMEOUT
    elif status == 404:
        permanent = Reason.NOT_FOUND
    elif status == 406:
        permanent = Reason.NOT_ACCEPTABLE
    elif status == 400 and "not ready" in lowered:
        transient = Reason.NOT_READY
    elif status == 400:
        permanent = next((reason for needle, reason in _PERMANENT_400 if needle in lowered), None)
    if transient is not None:
        return TransientFailure(transient, detail, status=status, request_id=request_id)
    if permanent is None:
        permanent, detail = Reason.BAD_REQUEST, f"HTTP {status}: {detail}"
    return PermanentFailure(permanent, detail, status=status, request_id=request_id)
