"""Ledger items in DynamoDB's typed JSON (what is written reads back the same, empty values are left out), and the
batched lookup's handling of what DynamoDB leaves unprocessed."""

from __future__ import annotations

from typing import Any

import pytest

from uploadcare_s3_copy.ledger import Ledger, LedgerItem, LedgerStatus, LedgerUnavailableError

UUID = "0c5a8f5e-4a1b-4c7e-9f3a-2b8d6e1f0a9c"


def test_a_verified_item_reads_back_as_written_with_its_size_as_a_number() -> None:
    item = LedgerItem(
        UUID,
        "original",
        LedgerStatus.VERIFIED,
        "2026-12-03T10:00:00.000Z",
        bucket="b",
        key="uploads/x.jpg",
        size=0,
        etag="abc",
        verified_at="2026-12-03T10:00:00.000Z",
        origin="webhook",
    )

    stored = item.to_item()

    assert stored["size"] == {"N": "0"}  # a zero-byte file keeps its size
    assert "checksum" not in stored
    assert "reason" not in stored
    assert LedgerItem.from_item(stored) == item


def test_an_item_with_a_status_this_version_does_not_know_is_an_error_naming_it() -> None:
    stored = {"uuid": {"S": UUID}, "spec": {"S": "original"}, "status": {"S": "teleported"}}

    with pytest.raises(LedgerUnavailableError, match=f"{UUID}/original: unknown status 'teleported'"):
        LedgerItem.from_item(stored)


class UnprocessingDynamoDB:
    """BatchGetItem that leaves keys unprocessed (as DynamoDB does under load): `rounds` lists, per call, the
    uuids it leaves over."""

    def __init__(self, table: str, rounds: list[set[str]]) -> None:
        self.table = table
        self.rounds = rounds
        self.calls: list[list[str]] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        keys = RequestItems[self.table]["Keys"]
        asked = [key["uuid"]["S"] for key in keys]
        self.calls.append(asked)
        left = self.rounds[len(self.calls) - 1]
        found = [
            {**key, "status": {"S": "verified"}, "updated_at": {"S": "t"}}
            for key in keys
            if key["uuid"]["S"] not in left
        ]
        unprocessed = [key for key in keys if key["uuid"]["S"] in left]
        return {
            "Responses": {self.table: found},
            "UnprocessedKeys": {self.table: {"Keys": unprocessed}} if unprocessed else {},
        }

    def get_item(self, TableName: str, Key: dict[str, Any]) -> dict[str, Any]:
        self.calls.append([f"get {Key['uuid']['S']}"])
        return {}  # not there


def test_unprocessed_keys_are_asked_for_once_more_and_what_is_left_stays_unknown() -> None:
    uuids = [f"{UUID[:-1]}{n}" for n in range(3)]
    dynamodb = UnprocessingDynamoDB("ledger", rounds=[{uuids[1], uuids[2]}, {uuids[2]}])

    view = Ledger(dynamodb, "ledger").get_many([(uuid, "original") for uuid in uuids])

    assert dynamodb.calls == [uuids, uuids[1:]]
    assert view.looked_up == {(uuids[0], "original"), (uuids[1], "original")}  # the third: looked up one by one
    assert set(view.items) == view.looked_up


def test_more_than_a_hundred_keys_go_in_calls_of_a_hundred() -> None:
    uuids = [f"{UUID[:-3]}{n:03d}" for n in range(230)]
    dynamodb = UnprocessingDynamoDB("ledger", rounds=[set(), set(), set()])

    view = Ledger(dynamodb, "ledger").get_many([(uuid, "original") for uuid in uuids])

    assert [len(call) for call in dynamodb.calls] == [100, 100, 30]
    assert len(view.looked_up) == 230


def test_get_all_looks_up_one_by_one_what_stays_unprocessed() -> None:
    uuids = [f"{UUID[:-1]}{n}" for n in range(3)]
    dynamodb = UnprocessingDynamoDB("ledger", rounds=[{uuids[2]}, {uuids[2]}])

    view = Ledger(dynamodb, "ledger").get_all([(uuid, "original") for uuid in uuids])

    assert dynamodb.calls == [uuids, uuids[2:], [f"get {uuids[2]}"]]
    assert view.looked_up == {(uuid, "original") for uuid in uuids}
    assert set(view.items) == {(uuids[0], "original"), (uuids[1], "original")}
