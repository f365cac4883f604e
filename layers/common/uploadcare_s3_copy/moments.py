"""Moments as the API and the command line write them: ISO dates and date-times, always read and written in UTC."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any


def parse_when(text: str, *, end_of_day: bool = False) -> datetime:
    """An ISO date or date-time. A bare date means the start of that day in UTC, or its end when `end_of_day`
    (so `--to 2024-01-31` includes the 31st); a date-time without an offset is UTC."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.max if end_of_day else time.min, UTC)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date (2024-01-31) or date-time (2024-01-31T12:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso_z(moment: datetime) -> str:
    """UTC, `Z`-suffixed, microseconds only when there are some: `2024-01-31T00:00:00Z`."""
    text = moment.astimezone(UTC).isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def uploaded_at(info: Mapping[str, Any]) -> datetime | None:
    """A file object's `datetime_uploaded`, or None when it has none that parses."""
    value = info.get("datetime_uploaded")
    if not isinstance(value, str):
        return None
    try:
        return parse_when(value)
    except ValueError:
        return None
