"""The copy request: the SQS message every entry point (webhook, backfill, manual) puts on the copy queue.

docs/design.md, "The copy request": JSON, versioned,
    {"version": 1, "uuid", "size", "original_filename", "mime_type", "cdn_url", "event", "received_at", "origin"}
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

VERSION = 1
ORIGINS = ("webhook", "backfill", "manual")
Origin = Literal["webhook", "backfill", "manual"]
# A file UUID exactly as Uploadcare writes it: lowercase, canonical. Group ids (`<uuid>~2`) are not files.
# Anchored with \A and \Z: `$` would also admit a trailing newline.
UUID_PATTERN = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def is_file_uuid(value: object) -> bool:
    return isinstance(value, str) and UUID_PATTERN.match(value) is not None


class InvalidCopyRequest(ValueError):
    """A queue message that is not a copy request this version understands; the message names the problem."""


@dataclass(frozen=True)
class CopyRequest:
    uuid: str
    size: int
    original_filename: str
    mime_type: str
    cdn_url: str
    event: str
    received_at: str
    origin: Origin
    version: int = VERSION

    def to_message(self) -> str:
        """The SQS message body. ASCII only: SQS refuses lone surrogates, U+FFFE/U+FFFF and most controls, which a
        signed webhook can carry (JSON escapes); escaped, any name survives the queue and reads back unchanged."""
        return json.dumps(asdict(self), ensure_ascii=True, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_file_info(cls, data: dict[str, Any], *, event: str, origin: Origin, cdn_url: str = "") -> CopyRequest:
        """From a file object as in `GET /files/<uuid>/` or a webhook's `data` (already validated by the caller)."""
        return cls(
            uuid=str(data["uuid"]),
            size=int(data["size"]),
            original_filename=str(data.get("original_filename") or ""),
            mime_type=str(data.get("mime_type") or ""),
            cdn_url=cdn_url or str(data.get("original_file_url") or ""),
            event=event,
            received_at=now_iso(),
            origin=origin,
        )

    @classmethod
    def from_message(cls, body: str) -> CopyRequest:
        try:
            value = json.loads(body)
        except ValueError as error:
            raise InvalidCopyRequest("message body is not JSON") from error
        if not isinstance(value, dict):
            raise InvalidCopyRequest("message body is not a JSON object")
        problems: list[str] = []
        if value.get("version") != VERSION:
            problems.append(f"version {value.get('version')!r} is not {VERSION}")
        uuid = value.get("uuid")
        if not is_file_uuid(uuid):
            problems.append("uuid is not a lowercase canonical UUID")
        size = value.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            problems.append("size is not a non-negative integer")
        if value.get("origin") not in ORIGINS:
            problems.append(f"origin is not one of {', '.join(ORIGINS)}")
        text_fields = ("original_filename", "mime_type", "cdn_url", "event", "received_at")
        problems.extend(f"{name} is not a string" for name in text_fields if not isinstance(value.get(name), str))
        if problems:
            raise InvalidCopyRequest("; ".join(problems))
        return cls(**{name: value[name] for name in (*text_fields, "uuid", "size", "origin", "version")})


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
