"""The copy request message: what every entry point puts on the queue, and what the copier accepts."""

from __future__ import annotations

import json

import pytest

from uploadcare_s3_copy.copy_request import CopyRequest, InvalidCopyRequest, has_file_identity

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


def test_the_optional_fields_round_trip_and_are_left_out_when_unset() -> None:
    full = {**VALID, "origin": "reconcile", "uploaded_at": "2025-01-01T00:00:00Z", "specs": ["original", "web-1"]}
    request = CopyRequest.from_message(json.dumps(full))

    assert request.specs == ("original", "web-1")
    assert request.uploaded_at == "2025-01-01T00:00:00Z"
    assert json.loads(request.to_message()) == full
    assert json.loads(request.for_specs(None).to_message()) == {
        name: value for name, value in full.items() if name != "specs"
    }
    assert "uploaded_at" not in json.loads(CopyRequest.from_message(json.dumps(VALID)).to_message())


def test_a_file_info_gives_its_upload_time() -> None:
    info = {"uuid": UUID, "size": 3, "datetime_uploaded": "2025-02-03T04:05:06.789Z", "original_file_url": "u"}

    request = CopyRequest.from_file_info(info, event="file.uploaded", origin="reconcile")

    assert (request.uploaded_at, request.cdn_url, request.specs) == ("2025-02-03T04:05:06.789Z", "u", None)


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
        ({"uploaded_at": 5}, "uploaded_at is not a string"),
        ({"specs": []}, "specs is not a list of 1 to 10"),
        ({"specs": "original"}, "specs is not a list"),
        ({"specs": [f"s{n}" for n in range(11)]}, "specs is not a list of 1 to 10"),
        ({"specs": ["Original"]}, "not copy spec names: 'Original'"),
        ({"specs": ["a" * 33]}, "not copy spec names"),
        ({"specs": ["thumb", "thumb"]}, "names a copy spec twice"),
    ],
)
def test_invalid_messages_name_the_problem(change: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidCopyRequest, match=problem):
        CopyRequest.from_message(json.dumps({**VALID, **change}))


@pytest.mark.parametrize("body", ["not json", "[1, 2]", ""])
def test_non_objects_are_refused(body: str) -> None:
    with pytest.raises(InvalidCopyRequest, match="JSON"):
        CopyRequest.from_message(body)


def test_a_listed_file_needs_a_file_uuid_and_a_whole_size() -> None:
    assert has_file_identity({"uuid": UUID, "size": 0})
    assert not has_file_identity({"uuid": UUID, "size": True})
    assert not has_file_identity({"uuid": UUID, "size": "10"})
    assert not has_file_identity({"uuid": UUID + "~2", "size": 10})
    assert not has_file_identity({"size": 10})
