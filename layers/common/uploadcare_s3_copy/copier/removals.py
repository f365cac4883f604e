"""What the copier does with a `file.deleted` or `file.infected` copy request (docs/design.md, "Deletions at the
source"): confirm it with Uploadcare, then apply ON_SOURCE_DELETE (or the infected tag) to each spec's copy and
record what was done, when and why, in the ledger.

Nothing is touched on the webhook's word: `GET /files/<uuid>/` must show the file removed (`datetime_removed`, or
404) or flagged infected, else the request is parked as `not_deleted_at_source` / `not_infected_at_source`.
Every step is safe to repeat: a redelivered request finds its work done in the ledger (or the tag already there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from uploadcare_s3_copy.copy_request import CopyRequest, now_iso
from uploadcare_s3_copy.ledger import Ledger, LedgerItem, LedgerStatus, LedgerUnavailableError, aws_error_code
from uploadcare_s3_copy.observability import logger
from uploadcare_s3_copy.reasons import PermanentFailure, Reason, TransientFailure
from uploadcare_s3_copy.secrets import UploadcareKeys
from uploadcare_s3_copy.source_changes import (
    DELETED_TAG,
    FILE_DELETED,
    FILE_INFECTED,
    INFECTED_TAG,
    SourcePolicy,
    is_infected,
    removed_at,
    with_tag,
)
from uploadcare_s3_copy.uploadcare.client import UploadcareClient

# remote_copy answers for a removed source (unrecorded: a 404, or a 400 with a detail): worth asking GET /files/.
MAYBE_REMOVED = frozenset({Reason.NOT_FOUND, Reason.BAD_SOURCE, Reason.BAD_REQUEST})
_NO_SUCH_KEY = ("NoSuchKey", "404", "NotFound")


@dataclass(frozen=True)
class Evidence:
    """What `GET /files/<uuid>/` said about the file."""

    removed: bool
    removed_at: str  # Uploadcare's datetime_removed; "" when it answered 404
    infected: bool
    seen: str  # in words, for the ledger's `why`


@dataclass(frozen=True)
class Applied:
    outcome: str  # source_deleted | object_tagged | object_deleted | infected | duplicate
    item: LedgerItem | None  # what was written (None: nothing to write)


class SourceChanges:
    """Confirms and applies deletions and infections. Thread-safe: boto3 and Uploadcare clients are."""

    def __init__(
        self,
        *,
        s3: Any,
        ledger: Ledger,
        client_factory: Callable[[UploadcareKeys], UploadcareClient],
        policy: SourcePolicy,
    ) -> None:
        self._s3 = s3
        self._ledger = ledger
        self._client_factory = client_factory
        self.policy = policy

    def look(self, uuid: str, keys: UploadcareKeys) -> Evidence:
        """The file as Uploadcare has it now. Transient failures propagate (the record is given back)."""
        try:
            info = self._client_factory(keys).get_file(uuid)
        except PermanentFailure as failure:
            if failure.reason is Reason.NOT_FOUND:
                return Evidence(removed=True, removed_at="", infected=False, seen=f"GET /files/{uuid}/ answered 404")
            raise
        when = removed_at(info)
        infected = is_infected(info)
        seen = f"datetime_removed {when}" if when else "not removed"
        return Evidence(bool(when), when, infected, seen + (", flagged infected" if infected else ""))

    def confirm(self, request: CopyRequest, keys: UploadcareKeys) -> Evidence:
        """The evidence for the request's event, or PermanentFailure naming what Uploadcare says instead."""
        evidence = self.look(request.uuid, keys)
        if request.event == FILE_DELETED and not evidence.removed:
            raise PermanentFailure(
                Reason.NOT_DELETED_AT_SOURCE,
                f"file.deleted, but GET /files/{request.uuid}/ shows the file is not removed "
                "(datetime_removed is null): no copy was touched",
            )
        if request.event == FILE_INFECTED and not (evidence.infected or evidence.removed):
            raise PermanentFailure(
                Reason.NOT_INFECTED_AT_SOURCE,
                f"file.infected, but GET /files/{request.uuid}/ shows no infected verdict "
                "(appdata.uc_clamav_virus_scan.data.infected is not true) and the file is not removed: "
                "no copy was touched",
            )
        return evidence

    def apply(self, request: CopyRequest, spec: str, item: LedgerItem | None, evidence: Evidence) -> Applied:
        """The event's effect on one spec's copy; the ledger item is written before this returns. Raises
        TransientFailure when S3 or the ledger cannot be reached (the record is given back and redone)."""
        applied = (
            self._infected(request, spec, item, evidence)
            if request.event == FILE_INFECTED
            else self._deleted(request, spec, item, evidence)
        )
        if applied.item is not None:
            self._write(applied.item)
        return applied

    def removed_before_copy(self, request: CopyRequest, spec: str, keys: UploadcareKeys) -> Applied | None:
        """After remote_copy refused the source: when Uploadcare shows the file removed (`datetime_removed`), the
        (file, spec) ends as `source_deleted` (nothing to copy, nothing lost); else None (the copy's own failure
        stands). A 404 is not taken as removed here: a file of another project, or a wrong UUID, answers that too,
        and is worth an operator's look in the DLQ (`not_found`)."""
        evidence = self.look(request.uuid, keys)
        if not evidence.removed_at:
            return None
        item = self._item(request, spec, None, LedgerStatus.SOURCE_DELETED, evidence, "removed before it was copied")
        self._write(item)
        return Applied("source_deleted", item)

    # -- the two events -----------------------------------------------------------------------------------------

    def _deleted(self, request: CopyRequest, spec: str, item: LedgerItem | None, evidence: Evidence) -> Applied:
        if item is None or not item.has_copy:
            if item is not None and item.status in (LedgerStatus.SOURCE_DELETED, LedgerStatus.OBJECT_DELETED):
                return Applied("duplicate", None)
            status, why = LedgerStatus.SOURCE_DELETED, "removed before any copy was made: nothing to do"
            return Applied("source_deleted", self._item(request, spec, item, status, evidence, why))
        if self.policy is SourcePolicy.KEEP:
            if item.status is LedgerStatus.SOURCE_DELETED:
                return Applied("duplicate", None)
            why = "copy kept (ON_SOURCE_DELETE=keep)"
            return Applied(
                "source_deleted", self._item(request, spec, item, LedgerStatus.SOURCE_DELETED, evidence, why)
            )
        if self.policy is SourcePolicy.TAG:
            tagged = self._tag(item, DELETED_TAG, "true")
            if tagged is None:
                why = "the copy was already gone from the bucket"
                return Applied(
                    "object_deleted", self._item(request, spec, item, LedgerStatus.OBJECT_DELETED, evidence, why)
                )
            if not tagged and item.status is LedgerStatus.OBJECT_TAGGED and item.removed_at:
                return Applied("duplicate", None)
            why = f"tagged {DELETED_TAG}=true (ON_SOURCE_DELETE=tag)"
            return Applied("object_tagged", self._item(request, spec, item, LedgerStatus.OBJECT_TAGGED, evidence, why))
        self._delete(item)
        why = "copy deleted (ON_SOURCE_DELETE=delete)"
        return Applied("object_deleted", self._item(request, spec, item, LedgerStatus.OBJECT_DELETED, evidence, why))

    def _infected(self, request: CopyRequest, spec: str, item: LedgerItem | None, evidence: Evidence) -> Applied:
        if item is None or not item.has_copy:
            if item is not None and (item.infected or item.status is LedgerStatus.OBJECT_DELETED):
                return Applied("duplicate", None)
            why = "flagged infected before any copy was made: never copied"
            status = LedgerStatus.INFECTED
            return Applied("infected", replace(self._item(request, spec, item, status, evidence, why), infected=True))
        tagged = self._tag(item, INFECTED_TAG, "true")
        if tagged is None:
            why = "flagged infected; the copy was already gone from the bucket"
            status = LedgerStatus.OBJECT_DELETED
            return Applied(
                "object_deleted", replace(self._item(request, spec, item, status, evidence, why), infected=True)
            )
        if not tagged and item.infected:
            return Applied("duplicate", None)
        why = f"flagged infected: tagged {INFECTED_TAG}=true"
        status = LedgerStatus.OBJECT_TAGGED
        return Applied("object_tagged", replace(self._item(request, spec, item, status, evidence, why), infected=True))

    # -- S3 and the ledger --------------------------------------------------------------------------------------

    def _tag(self, item: LedgerItem, key: str, value: str) -> bool | None:
        """Adds the tag, keeping the object's others: True when written, False when it was there, None when the
        object is gone."""
        try:
            tags = self._s3.get_object_tagging(Bucket=item.bucket, Key=item.key).get("TagSet", [])
            try:
                new = with_tag(tags, key, value)
            except ValueError as error:
                raise PermanentFailure(Reason.BAD_REQUEST, f"s3://{item.bucket}/{item.key}: {error}") from error
            if new is None:
                return False
            self._s3.put_object_tagging(Bucket=item.bucket, Key=item.key, Tagging={"TagSet": new})
        except (ClientError, BotoCoreError) as error:
            if isinstance(error, ClientError) and aws_error_code(error) in _NO_SUCH_KEY:
                return None
            where = f"s3://{item.bucket}/{item.key}"
            raise TransientFailure(Reason.AWS_UNAVAILABLE, f"tagging {where}: {aws_error_code(error)}") from error
        logger.info("Copy tagged", extra={"bucket": item.bucket, "key": item.key, "tag": key})
        return True

    def _delete(self, item: LedgerItem) -> None:
        try:
            self._s3.delete_object(Bucket=item.bucket, Key=item.key)
        except (ClientError, BotoCoreError) as error:
            where = f"s3://{item.bucket}/{item.key}"
            raise TransientFailure(Reason.AWS_UNAVAILABLE, f"deleting {where}: {aws_error_code(error)}") from error
        logger.info("Copy deleted", extra={"bucket": item.bucket, "key": item.key})

    @staticmethod
    def _item(
        request: CopyRequest,
        spec: str,
        before: LedgerItem | None,
        status: LedgerStatus,
        evidence: Evidence,
        why: str,
    ) -> LedgerItem:
        now = now_iso()
        base = before or LedgerItem(uuid=request.uuid, spec=spec, status=status, origin=request.origin)
        return replace(
            base,
            status=status,
            updated_at=now,
            acted_at=now,
            why=f"{request.event} confirmed ({evidence.seen}): {why}",
            removed_at=evidence.removed_at or base.removed_at or (now if evidence.removed else ""),
            reason="",
            uploaded_at=base.uploaded_at or request.uploaded_at,
        )

    def _write(self, item: LedgerItem) -> None:
        try:
            self._ledger.put(item)
        except LedgerUnavailableError as error:
            raise TransientFailure(Reason.AWS_UNAVAILABLE, f"{item.status}, ledger not written: {error}") from error
