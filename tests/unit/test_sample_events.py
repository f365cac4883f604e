"""events/: the committed webhook samples are exactly what devkit/make_events.py writes, and their signatures hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devkit.make_events import SAMPLE_SIGNING_SECRET, WRONG_SIGNING_SECRET, main, render_events
from tests.conftest import EVENTS, load_event
from tests.webhook_support import (
    BAD_SIGNATURE,
    FILE_DELETED,
    FILE_INFECTED,
    FILE_UPLOADED,
    INFO_UPDATED_INFECTED,
    OTHER_EVENT,
    RecordingQueue,
    unit_app,
)
from uploadcare_s3_copy.copy_request import CopyRequest
from uploadcare_s3_copy.webhook.signing import verify

RENDERED = render_events()


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_the_committed_file_is_what_the_generator_writes(name: str) -> None:
    assert (EVENTS / name).read_text(encoding="utf-8") == RENDERED[name]


def test_the_generator_is_deterministic() -> None:
    assert render_events() == RENDERED


@pytest.mark.parametrize(
    ("name", "secret", "valid"),
    [
        (FILE_UPLOADED, SAMPLE_SIGNING_SECRET, True),
        (OTHER_EVENT, SAMPLE_SIGNING_SECRET, True),
        (BAD_SIGNATURE, SAMPLE_SIGNING_SECRET, False),
        (BAD_SIGNATURE, WRONG_SIGNING_SECRET, True),
    ],
)
def test_the_signature_verifies_with_the_documented_secret_only(name: str, secret: str, valid: bool) -> None:
    event = load_event(name)

    assert verify(event["headers"]["x-uc-signature"], event["body"].encode("utf-8"), secret) is valid


@pytest.mark.parametrize("name", sorted(name for name in RENDERED if name.startswith("webhook-")))
def test_each_sample_is_an_http_api_v2_post_to_the_webhook_route(name: str) -> None:
    event = load_event(name)

    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /webhooks/uploadcare"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["isBase64Encoded"] is False
    assert int(event["headers"]["content-length"]) == len(event["body"].encode("utf-8"))
    assert all(header == header.lower() for header in event["headers"])


@pytest.mark.parametrize(("name", "hook_event"), [(FILE_UPLOADED, "file.uploaded"), (OTHER_EVENT, "file.stored")])
def test_the_body_is_a_v07_webhook_for_its_event(name: str, hook_event: str) -> None:
    body = json.loads(load_event(name)["body"])

    assert body["hook"]["event"] == hook_event
    assert body["hook"]["version"] == "0.7"
    assert set(body) == {"initiator", "hook", "data", "file"}


def test_the_readme_documents_the_sample_secret_and_every_file() -> None:
    readme = (EVENTS / "README.md").read_text(encoding="utf-8")

    assert f"`{SAMPLE_SIGNING_SECRET}`" in readme
    for name in RENDERED:
        assert f"`{name}`" in readme


def test_check_mode_reports_a_stale_file_and_writes_nothing(tmp_path: Path) -> None:
    # Given a folder where one sample has been edited by hand
    assert main(["--dir", str(tmp_path)]) == 0
    edited = tmp_path / FILE_UPLOADED
    edited.write_text("{}\n", encoding="utf-8")

    # When the generator only checks
    result = main(["--check", "--dir", str(tmp_path)])

    # Then it fails and leaves the file as it was
    assert result == 1
    assert edited.read_text(encoding="utf-8") == "{}\n"


def test_writing_restores_a_stale_file(tmp_path: Path) -> None:
    (tmp_path / FILE_UPLOADED).write_text("{}\n", encoding="utf-8")

    assert main(["--dir", str(tmp_path)]) == 0

    assert (tmp_path / FILE_UPLOADED).read_text(encoding="utf-8") == RENDERED[FILE_UPLOADED]
    assert main(["--check", "--dir", str(tmp_path)]) == 0


@pytest.mark.parametrize(
    ("name", "queued_as"),
    [(FILE_DELETED, "file.deleted"), (FILE_INFECTED, "file.infected"), (INFO_UPDATED_INFECTED, "file.infected")],
)
def test_the_deletion_and_infection_samples_are_queued_with_their_event(name: str, queued_as: str) -> None:
    queue = RecordingQueue()

    answer = unit_app(queue=queue).answer(load_event(name))

    [message] = queue.messages
    assert answer.status == 202
    assert CopyRequest.from_message(message).event == queued_as
