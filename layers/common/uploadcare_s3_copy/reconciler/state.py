"""Where the scheduled reconciliation stands, kept as one item of the ledger table (its `uuid` is not a file UUID:
docs/design.md, "The copy ledger: proof that lasts").

`watermark`: the upper bound of the last scheduled run that finished; the next run starts there minus the overlap.
`run_from`, `run_to`, `cursor`: the window of a run cut short by its deadline (or a failure) and the next page of
`GET /files/` to ask for; the next scheduled run goes on from there before it starts a new window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from uploadcare_s3_copy.copy_request import now_iso
from uploadcare_s3_copy.ledger import LedgerUnavailableError

STATE_UUID = "#reconciler"  # never a file UUID: those are lowercase hex with hyphens
STATE_SPEC = "scheduled"
_FIELDS = ("watermark", "run_from", "run_to", "cursor", "updated_at")


@dataclass(frozen=True)
class ReconcileState:
    watermark: str | None = None
    run_from: str | None = None
    run_to: str | None = None
    cursor: str | None = None
    updated_at: str = ""

    @property
    def unfinished(self) -> bool:
        return self.cursor is not None and self.run_to is not None


class StateStore:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def load(self) -> ReconcileState:
        try:
            answer = self._dynamodb.get_item(TableName=self._table, Key=_key(), ConsistentRead=True)
        except (ClientError, BotoCoreError) as error:
            raise LedgerUnavailableError(f"GetItem of the reconciler's state on {self._table}: {error}") from error
        item = answer.get("Item") or {}
        values = {name: str(item[name]["S"]) for name in _FIELDS if "S" in item.get(name, {})}
        return ReconcileState(**values)

    def save(self, state: ReconcileState) -> ReconcileState:
        saved = ReconcileState(state.watermark, state.run_from, state.run_to, state.cursor, now_iso())
        item = {**_key(), **{name: {"S": getattr(saved, name)} for name in _FIELDS if getattr(saved, name)}}
        try:
            self._dynamodb.put_item(TableName=self._table, Item=item)
        except (ClientError, BotoCoreError) as error:
            raise LedgerUnavailableError(f"PutItem of the reconciler's state on {self._table}: {error}") from error
        return saved


def _key() -> dict[str, dict[str, str]]:
    return {"uuid": {"S": STATE_UUID}, "spec": {"S": STATE_SPEC}}
