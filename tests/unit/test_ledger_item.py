"""Ledger items in DynamoDB's typed JSON: what is written reads back the same, empty values are left out."""

from __future__ import annotations

import pytest

from uploadcare_s3_copy.ledger import LedgerItem, LedgerStatus, LedgerUnavailableError

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
