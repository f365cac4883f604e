"""The copy request message: what every entry point puts on the queue, and what the copier accepts."""

from __future__ import annotations

import json

import pytest

from uploadcare_s3_copy.copy_request import CopyRequest, InvalidCopyRequest

UUID = "03ccf9ab-f266-43fb-973d-a6529c55c2ae"
VALID = {
    "version": 1,
    "uuid": UUID,
    "size": 10,
    "original_filename": "ü b.jpg",
    "mime_type": "image/jpeg",
    "cdn_url": "https://ucarecdn.com/x/",
    "event": "file.uploaded",
    "received_at": "2026-01-01T00:00:00.000Z",
    "origin": "backfill",
}


def test_round_trip_keeps_every_field() -> None:
    request = CopyRequest.from_message(json.dumps(VALID))

    assert json.loads(request.to_message()) == VALID


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"uuid": UUID + "\n"}, "uuid"),
        ({"uuid": UUID.upper()}, "uuid"),
        ({"uuid": UUID + "~2"}, "uuid"),
        ({"size": "10"}, "size"),
        ({"size": True}, "size"),
        ({"size": -1}, "size"),
        ({"version": 2}, "version"),
        ({"origin": "elsewhere"}, "origin"),
        ({"event": None}, "event is not a string"),
    ],
)
def test_invalid_messages_name_the_problem(change: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidCopyRequest, match=problem):
        CopyRequest.from_message(json.dumps({**VALID, **change}))


@pytest.mark.parametrize("body", ["not json", "[1, 2]", ""])
def test_non_objects_are_refused(body: str) -> None:
    with pytest.raises(InvalidCopyRequest, match="JSON"):
        CopyRequest.from_message(body)
