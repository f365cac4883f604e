"""The copy ledger: one permanent DynamoDB item per (file, copy spec), the proof that outlives the idempotency
records (docs/design.md, "The copy ledger: proof that lasts"). The copier writes it; the reconciler and `audit` read it.

Item: partition key `uuid`, sort key `spec`; `status` (a LedgerStatus), `bucket`, `key`, `size`, `etag`,
`checksum` (S3's CRC64NVME when head_object returns one), `verified_at`, `updated_at`, `origin`, `uploaded_at`,
and on `dead_lettered` the `reason`. After a deletion or an infection at the source (docs/design.md, "Deletions at
the source"): `removed_at` (Uploadcare's `datetime_removed`), `acted_at` and `why` (what was done to the copy and on
what evidence), and `infected`. Empty values are left out of the item.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

# Until several copy specs can be configured, every copy is of this one spec: the original, per COPY_TARGET.
DEFAULT_SPEC = "original"


class LedgerStatus(StrEnum):
    VERIFIED = "verified"
    DEAD_LETTERED = "dead_lettered"
    SOURCE_DELETED = "source_deleted"
    OBJECT_TAGGED = "object_tagged"
    OBJECT_DELETED = "object_deleted"
    INFECTED = "infected"  # flagged infected at the source before any copy of it was made: never copied


# A (file, spec) in one of these states costs no Uploadcare call: its copy is proved, or its source is gone.
SETTLED = frozenset(LedgerStatus) - {LedgerStatus.DEAD_LETTERED}
# The states a deletion or an infection at the source leaves behind.
AFTER_SOURCE_CHANGE = frozenset(
    {LedgerStatus.SOURCE_DELETED, LedgerStatus.OBJECT_TAGGED, LedgerStatus.OBJECT_DELETED, LedgerStatus.INFECTED}
)


class LedgerUnavailableError(Exception):
    """The ledger table could not be read or written (throttled, 5xx, timeout, no permission)."""


@dataclass(frozen=True)
class LedgerItem:
    uuid: str
    spec: str
    status: LedgerStatus
    updated_at: str = ""
    bucket: str = ""
    key: str = ""
    size: int | None = None
    etag: str = ""
    checksum: str = ""
    verified_at: str = ""
    origin: str = ""
    uploaded_at: str = ""
    reason: str = ""
    removed_at: str = ""
    acted_at: str = ""
    why: str = ""
    infected: bool = False

    @property
    def verified(self) -> bool:
        return self.status is LedgerStatus.VERIFIED

    @property
    def settled(self) -> bool:
        """Nothing left to copy: verified, or the source was deleted or flagged infected."""
        return self.status in SETTLED

    @property
    def has_copy(self) -> bool:
        """An object of ours is (still) in the bucket: verified, kept or tagged after the source changed."""
        return bool(self.key) and self.status in (
            LedgerStatus.VERIFIED,
            LedgerStatus.SOURCE_DELETED,
            LedgerStatus.OBJECT_TAGGED,
        )

    def to_item(self) -> dict[str, dict[str, Any]]:
        """The item in DynamoDB's typed JSON, empty values left out."""
        item: dict[str, dict[str, Any]] = {}
        for name in _TEXT_FIELDS:
            value = str(getattr(self, name))
            if value:
                item[name] = {"S": value}
        if self.size is not None:
            item["size"] = {"N": str(self.size)}
        if self.infected:
            item["infected"] = {"BOOL": True}
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> LedgerItem:
        text = {name: str(item[name]["S"]) for name in _TEXT_FIELDS if name in item and "S" in item[name]}
        status = text.pop("status", "")
        try:
            known = LedgerStatus(status)
        except ValueError as error:
            where = f"{text.get('uuid')}/{text.get('spec')}"
            raise LedgerUnavailableError(f"ledger item {where}: unknown status {status!r}") from error
        size = int(item["size"]["N"]) if "size" in item and "N" in item["size"] else None
        infected = item.get("infected", {}).get("BOOL") is True
        return cls(status=known, size=size, infected=infected, **text)


_TEXT_FIELDS = (
    "uuid",
    "spec",
    "status",
    "updated_at",
    "bucket",
    "key",
    "etag",
    "checksum",
    "verified_at",
    "origin",
    "uploaded_at",
    "reason",
    "removed_at",
    "acted_at",
    "why",
)


BATCH_GET_LIMIT = 100  # keys per BatchGetItem call


@dataclass
class LedgerView:
    """What one batched lookup found: `looked_up` are the keys it has an answer for (an item or none); keys
    DynamoDB left unprocessed are not among them, and are looked up one by one if needed."""

    looked_up: set[tuple[str, str]] = field(default_factory=set)
    items: dict[tuple[str, str], LedgerItem] = field(default_factory=dict)


class Ledger:
    """The ledger table: BatchGetItem for a copier batch, GetItem and PutItem item by item. Thread-safe (one boto3
    client)."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table

    @property
    def table(self) -> str:
        return self._table

    def get(self, uuid: str, spec: str) -> LedgerItem | None:
        try:
            answer = self._dynamodb.get_item(TableName=self._table, Key=_key(uuid, spec))
        except (ClientError, BotoCoreError) as error:
            raise LedgerUnavailableError(f"GetItem on {self._table}: {aws_error_code(error)}") from error
        item = answer.get("Item")
        return LedgerItem.from_item(item) if item else None

    def get_many(self, keys: Iterable[tuple[str, str]]) -> LedgerView:
        """Every (uuid, spec) of `keys`, BATCH_GET_LIMIT to a call; unprocessed keys are asked for once more."""
        view = LedgerView()
        wanted = list(dict.fromkeys(keys))
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            chunk = wanted[start : start + BATCH_GET_LIMIT]
            request = {self._table: {"Keys": [_key(uuid, spec) for uuid, spec in chunk]}}
            left: set[tuple[str, str]] = set(chunk)
            for _ in range(2):
                try:
                    answer = self._dynamodb.batch_get_item(RequestItems=request)
                except (ClientError, BotoCoreError) as error:
                    raise LedgerUnavailableError(f"BatchGetItem on {self._table}: {aws_error_code(error)}") from error
                for raw in answer.get("Responses", {}).get(self._table, []):
                    item = LedgerItem.from_item(raw)
                    view.items[(item.uuid, item.spec)] = item
                request = answer.get("UnprocessedKeys") or {}
                pending = request.get(self._table, {}).get("Keys", [])
                unprocessed = {(str(key["uuid"]["S"]), str(key["spec"]["S"])) for key in pending}
                view.looked_up |= left - unprocessed
                left = unprocessed
                if not left:
                    break
        return view

    def get_all(self, keys: Iterable[tuple[str, str]]) -> LedgerView:
        """`get_many`, then GetItem for each key DynamoDB left unprocessed twice: every key is looked up."""
        wanted = list(dict.fromkeys(keys))
        view = self.get_many(wanted)
        for key in wanted:
            if key not in view.looked_up:
                item = self.get(*key)
                if item is not None:
                    view.items[key] = item
                view.looked_up.add(key)
        return view

    def put(self, item: LedgerItem) -> None:
        """Writes `item` whole. A `dead_lettered` item never replaces a `verified` one (a late permanent failure of
        a duplicate must not hide a proven copy): that write is skipped."""
        extra: dict[str, Any] = {}
        if item.status is LedgerStatus.DEAD_LETTERED:
            extra = {
                "ConditionExpression": "attribute_not_exists(#status) OR #status <> :verified",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":verified": {"S": str(LedgerStatus.VERIFIED)}},
            }
        try:
            self._dynamodb.put_item(TableName=self._table, Item=item.to_item(), **extra)
        except ClientError as error:
            if aws_error_code(error) == "ConditionalCheckFailedException":
                return
            raise LedgerUnavailableError(f"PutItem on {self._table}: {aws_error_code(error)}") from error
        except BotoCoreError as error:
            raise LedgerUnavailableError(f"PutItem on {self._table}: {aws_error_code(error)}") from error


def _key(uuid: str, spec: str) -> dict[str, dict[str, str]]:
    return {"uuid": {"S": uuid}, "spec": {"S": spec}}


def aws_error_code(error: Exception) -> str:
    """A ClientError's code (`NoSuchKey`, `ThrottlingException`, ...), else the exception's type name."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "")) or type(error).__name__
    return type(error).__name__
