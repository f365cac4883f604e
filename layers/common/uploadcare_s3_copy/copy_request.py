"""The copy request: the SQS message every entry point (webhook, backfill, reconcile, manual) puts on the copy queue.

docs/design.md, "The copy request": JSON, versioned,
    {"version": 1, "uuid", "size", "original_filename", "mime_type", "cdn_url", "event", "received_at", "origin"}
and optionally "uploaded_at" (Uploadcare's `datetime_uploaded`) and "specs" (the copy specs it is for; without it,
every spec). `event` is file.uploaded (copy), or file.deleted / file.infected (docs/design.md, "Deletions at the
source").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from uploadcare_s3_copy.source_changes import COPY_REQUEST_EVENTS

VERSION = 1
ORIGINS = ("webhook", "backfill", "reconcile", "manual")
Origin = Literal["webhook", "backfill", "reconcile", "manual"]
# A copy spec's name (docs/design.md, "The copy request"): it names the spec in logs, metrics, DLQ attributes
# and the ledger.
SPEC_NAME_PATTERN = re.compile(r"\A[a-z0-9][a-z0-9-]{0,31}\Z")
MAX_SPECS = 10
# A file UUID exactly as Uploadcare writes it: lowercase, canonical. Group ids (`<uuid>~2`) are not files.
# Anchored with \A and \Z: `$` would also admit a trailing newline.
UUID_PATTERN = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def is_file_uuid(value: object) -> bool:
    return isinstance(value, str) and UUID_PATTERN.match(value) is not None


def has_file_identity(info: Mapping[str, Any]) -> bool:
    """A file object of a `GET /files/` listing with what a copy request needs of it: a file UUID and a whole size."""
    size = info.get("size")
    return is_file_uuid(info.get("uuid")) and isinstance(size, int) and not isinstance(size, bool)


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
    uploaded_at: str = ""  # Uploadcare's datetime_uploaded, when the entry point knows it
    specs: tuple[str, ...] | None = None  # None: for every copy spec

    def to_message(self) -> str:
        """The SQS message body. ASCII only: SQS refuses lone surrogates, U+FFFE/U+FFFF and most controls, which a
        signed webhook can carry (JSON escapes); escaped, any name survives the queue and reads back unchanged.
        The optional fields are left out when unset."""
        body = asdict(self)
        if not self.uploaded_at:
            del body["uploaded_at"]
        if self.specs is None:
            del body["specs"]
        else:
            body["specs"] = list(self.specs)
        return json.dumps(body, ensure_ascii=True, separators=(",", ":"), sort_keys=True)

    def for_specs(self, specs: tuple[str, ...] | None) -> CopyRequest:
        return replace(self, specs=specs)

    @classmethod
    def from_file_info(cls, data: dict[str, Any], *, event: str, origin: Origin, cdn_url: str = "") -> CopyRequest:
        """From a file object as in `GET /files/<uuid>/` or a webhook's `data` (already validated by the caller)."""
        uploaded = data.get("datetime_uploaded")
        return cls(
            uuid=str(data["uuid"]),
            size=int(data["size"]),
            original_filename=str(data.get("original_filename") or ""),
            mime_type=str(data.get("mime_type") or ""),
            cdn_url=cdn_url or str(data.get("original_file_url") or ""),
            event=event,
            received_at=now_iso(),
            origin=origin,
            uploaded_at=uploaded if isinstance(uploaded, str) else "",
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
        if isinstance(value.get("event"), str) and value["event"] not in COPY_REQUEST_EVENTS:
            problems.append(f"event is not one of {', '.join(COPY_REQUEST_EVENTS)}")
        uploaded = value.get("uploaded_at", "")
        if not isinstance(uploaded, str):
            problems.append("uploaded_at is not a string")
        specs = _specs(value.get("specs"), problems) if "specs" in value else None
        if problems:
            raise InvalidCopyRequest("; ".join(problems))
        known = {name: value[name] for name in (*text_fields, "uuid", "size", "origin", "version")}
        return cls(**known, uploaded_at=uploaded, specs=specs)


def _specs(value: Any, problems: list[str]) -> tuple[str, ...] | None:
    """`specs`: 1 to MAX_SPECS distinct spec names."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SPECS:
        problems.append(f"specs is not a list of 1 to {MAX_SPECS} copy spec names")
        return None
    bad = [str(name)[:40] for name in value if not isinstance(name, str) or not SPEC_NAME_PATTERN.match(name)]
    if bad:
        problems.append(f"specs has names that are not copy spec names: {', '.join(map(repr, bad))}")
        return None
    if len(set(value)) != len(value):
        problems.append("specs names a copy spec twice")
        return None
    return tuple(value)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
