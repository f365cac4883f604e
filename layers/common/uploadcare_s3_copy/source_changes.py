"""Deletions and infections at the source (docs/design.md, "Deletions at the source"): the events, the policy that
says what happens to the copies (`ON_SOURCE_DELETE`), and how Uploadcare's own file info proves what an event says.

A webhook is only ever a hint: before a copy is tagged or deleted, `GET /files/<uuid>/` must show the file removed
(`datetime_removed` set, or 404), or flagged infected by the ClamAV add-on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

FILE_UPLOADED = "file.uploaded"
FILE_DELETED = "file.deleted"
FILE_INFECTED = "file.infected"
FILE_INFO_UPDATED = "file.info_updated"  # an infected file may come as this, with the ClamAV appdata set
SOURCE_CHANGE_EVENTS = (FILE_DELETED, FILE_INFECTED)
COPY_REQUEST_EVENTS = (FILE_UPLOADED, *SOURCE_CHANGE_EVENTS)

DELETED_TAG = "uploadcare-deleted"  # value "true": S3 lifecycle filters match a tag's exact value (the date is in
# the ledger item, `acted_at`)
INFECTED_TAG = "uploadcare-infected"  # value: "true"
MAX_OBJECT_TAGS = 10  # S3's limit per object


class SourcePolicy(StrEnum):
    """What a confirmed deletion at the source does to every spec's copy."""

    KEEP = "keep"  # the ledger records source_deleted; the copy stays (a backup outlives its source)
    TAG = "tag"  # object tag uploadcare-deleted=true, for a lifecycle rule of the user's to expire it
    DELETE = "delete"  # DeleteObject: cannot be undone unless the bucket keeps versions


def parse_policy(raw: str) -> SourcePolicy:
    return SourcePolicy(raw.strip().lower())


def is_infected(info: Mapping[str, Any]) -> bool:
    """`appdata.uc_clamav_virus_scan.data.infected` is true (the ClamAV add-on's verdict)."""
    appdata = info.get("appdata")
    scan = appdata.get("uc_clamav_virus_scan") if isinstance(appdata, Mapping) else None
    data = scan.get("data") if isinstance(scan, Mapping) else None
    return isinstance(data, Mapping) and data.get("infected") is True


def removed_at(info: Mapping[str, Any]) -> str:
    """Uploadcare's `datetime_removed` ("" while the file is there)."""
    value = info.get("datetime_removed")
    return value if isinstance(value, str) else ""


def with_tag(tags: Sequence[Mapping[str, str]], key: str, value: str) -> list[dict[str, str]] | None:
    """The object's tag set with `key` added, its other tags kept; None when `key` is already there (nothing to
    write). Raises ValueError when the object already has S3's maximum of tags."""
    kept = [{"Key": str(tag["Key"]), "Value": str(tag["Value"])} for tag in tags]
    if any(tag["Key"] == key for tag in kept):
        return None
    if len(kept) >= MAX_OBJECT_TAGS:
        raise ValueError(f"the object already has {MAX_OBJECT_TAGS} tags, S3's maximum: {key} cannot be added")
    return [*kept, {"Key": key, "Value": value}]
