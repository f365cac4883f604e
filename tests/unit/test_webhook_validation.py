"""The webhook's decisions: size cap, then signature, then JSON and fields; filters; exactly one copy request.

Every answer but 202 leaves the queue untouched, and bad input never raises.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from tests.conftest import load_event, load_vector
from tests.webhook_support import (
    FILE_UPLOADED,
    OTHER_EVENT,
    RecordingQueue,
    answer_body,
    event_for,
    powertools_for_tests,
    sample_payload,
    unit_app,
)
from uploadcare_s3_copy.copy_request import CopyRequest
from uploadcare_s3_copy.observability import metrics
from uploadcare_s3_copy.webhook.adapters import QueueUnavailableError, SqsCopyQueue
from uploadcare_s3_copy.webhook.answers import Refused
from uploadcare_s3_copy.webhook.rules import copy_request_from, max_base64_length, parse_payload, read_body

UUID = "9f3e6b2a-4c1d-4e8f-a5b7-0d2c8e6f1a43"


@pytest.fixture(autouse=True)
def _powertools(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    powertools_for_tests(monkeypatch)
    yield
    metrics.clear_metrics()


def _with_data(**changes: Any) -> dict[str, Any]:
    """The sample payload with `data` fields replaced (a value of ... removes the field)."""
    payload = sample_payload()
    for name, value in changes.items():
        if value is ...:
            payload["data"].pop(name)
        else:
            payload["data"][name] = value
    return payload


def _refusal(payload: dict[str, Any]) -> tuple[int, str, str]:
    """Answer a signed request carrying `payload`; check nothing was queued; (status, reason, message)."""
    queue = RecordingQueue()
    answer = unit_app(queue=queue).answer(event_for(payload))
    assert queue.messages == []
    return answer.status, answer.body["reason"], answer.body.get("message", "")


# --- the accepted cases ---------------------------------------------------------------------------------------


def test_the_sample_upload_becomes_exactly_one_copy_request() -> None:
    # Given the signed sample file.uploaded event
    queue = RecordingQueue()

    # When the webhook answers it
    answer = unit_app(queue=queue).answer(load_event(FILE_UPLOADED))

    # Then it is queued with the file's fields, and the answer says so
    assert (answer.status, answer.body) == (202, {"status": "queued", "uuid": UUID})
    assert len(queue.messages) == 1
    request = CopyRequest.from_message(queue.messages[0])
    assert request.uuid == UUID
    assert request.size == 482113
    assert request.original_filename == "harbour-at-dusk.jpg"
    assert request.mime_type == "image/jpeg"
    assert request.cdn_url == f"https://1s4oyld5dc.ucarecd.net/{UUID}/"
    assert (request.event, request.origin, request.version) == ("file.uploaded", "webhook", 1)


def test_the_message_body_is_exactly_the_copy_requests_own_serialisation() -> None:
    queue = RecordingQueue()

    unit_app(queue=queue).answer(load_event(FILE_UPLOADED))

    assert queue.messages[0] == CopyRequest.from_message(queue.messages[0]).to_message()


def test_the_real_2022_payload_is_accepted() -> None:
    # Given a body captured from Uploadcare in 2022 (before `initiator` existed)
    payload = load_vector("file-uploaded-v0.7-2022.json")

    # When it is turned into a copy request
    request = copy_request_from(payload)

    # Then the fields come from `data`, the CDN URL from `file`
    assert request.uuid == "f5c4ee6e-f41a-4ff2-a86e-a3e92bcc334d"
    assert request.size == 1603303
    assert request.original_filename == "IMG_3037.heic"
    assert request.mime_type == "image/heic"
    assert request.cdn_url == "https://ucarecdn.com/f5c4ee6e-f41a-4ff2-a86e-a3e92bcc334d/IMG_3037.heic"


def test_the_real_2022_payload_is_queued_through_the_app() -> None:
    queue = RecordingQueue()

    answer = unit_app(queue=queue).answer(event_for(load_vector("file-uploaded-v0.7-2022.json")))

    assert answer.status == 202
    assert len(queue.messages) == 1


def test_without_a_file_url_the_cdn_url_falls_back_to_original_file_url() -> None:
    payload = sample_payload()
    payload["file"] = 42

    request = copy_request_from(payload)

    assert request.cdn_url == f"https://1s4oyld5dc.ucarecd.net/{UUID}/harbour-at-dusk.jpg"


def test_a_zero_byte_file_is_accepted() -> None:
    assert copy_request_from(_with_data(size=0)).size == 0


def test_null_optional_fields_become_empty_strings() -> None:
    request = copy_request_from(_with_data(original_filename=None, mime_type=None))

    assert (request.original_filename, request.mime_type) == ("", "")


# --- filters ---------------------------------------------------------------------------------------------------


def test_another_event_is_ignored_with_a_200() -> None:
    # Given the signed file.stored sample
    queue = RecordingQueue()

    answer = unit_app(queue=queue).answer(load_event(OTHER_EVENT))

    assert (answer.status, answer.body) == (200, {"status": "ignored", "reason": "event file.stored"})
    assert queue.messages == []


def test_another_event_is_ignored_even_when_its_data_would_be_invalid() -> None:
    # Given a file.stored event whose data carries no size
    payload = sample_payload(OTHER_EVENT)
    del payload["data"]["size"]
    queue = RecordingQueue()

    answer = unit_app(queue=queue).answer(event_for(payload))

    assert (answer.status, answer.body["reason"]) == (200, "event file.stored")
    assert queue.messages == []


@pytest.mark.parametrize("event", ["file.deleted", "file.infected"])
def test_a_deletion_or_an_infection_is_queued_with_its_event(event: str) -> None:
    payload = sample_payload()
    payload["hook"]["event"] = event
    queue = RecordingQueue()

    answer = unit_app(queue=queue).answer(event_for(payload))

    [message] = queue.messages
    request = CopyRequest.from_message(message)
    assert (answer.status, answer.body["status"]) == (202, "queued")
    assert (request.uuid, request.event, request.origin) == (payload["data"]["uuid"], event, "webhook")


def test_a_deletion_needs_no_size_but_a_bad_one_is_still_refused() -> None:
    sizeless = sample_payload()
    sizeless["hook"]["event"] = "file.deleted"
    del sizeless["data"]["size"]
    bad = sample_payload()
    bad["hook"]["event"] = "file.deleted"
    bad["data"]["size"] = "12"
    queue = RecordingQueue()
    app = unit_app(queue=queue)

    accepted, refused = app.answer(event_for(sizeless)), app.answer(event_for(bad))

    assert accepted.status == 202
    assert CopyRequest.from_message(queue.messages[0]).size == 0
    assert (refused.status, refused.body["message"]) == (400, "data.size is not a non-negative integer")
    assert len(queue.messages) == 1


def test_an_info_update_with_an_infected_verdict_is_queued_as_file_infected() -> None:
    infected = sample_payload()
    infected["hook"]["event"] = "file.info_updated"
    infected["data"]["appdata"] = {"uc_clamav_virus_scan": {"data": {"infected": True, "infected_with": "EICAR"}}}
    clean = sample_payload()
    clean["hook"]["event"] = "file.info_updated"
    clean["data"]["appdata"] = {"uc_clamav_virus_scan": {"data": {"infected": False}}}
    queue = RecordingQueue()
    app = unit_app(queue=queue)

    queued, ignored = app.answer(event_for(infected)), app.answer(event_for(clean))

    [message] = queue.messages
    assert queued.status == 202
    assert CopyRequest.from_message(message).event == "file.infected"
    assert (ignored.status, ignored.body["reason"]) == (200, "event file.info_updated")


def _derived_payload() -> dict[str, Any]:
    payload = sample_payload()
    payload["initiator"] = {"type": "addon", "detail": {"source_file_uuid": "03ccf9ab-f266-43fb-973d-a6529c55c2ae"}}
    return payload


def test_with_skip_derived_a_file_made_from_another_is_ignored() -> None:
    queue = RecordingQueue()

    answer = unit_app(queue=queue, skip_derived=True).answer(event_for(_derived_payload()))

    assert (answer.status, answer.body) == (200, {"status": "ignored", "reason": "derived file"})
    assert queue.messages == []


def test_without_skip_derived_a_file_made_from_another_is_queued() -> None:
    queue = RecordingQueue()

    answer = unit_app(queue=queue, skip_derived=False).answer(event_for(_derived_payload()))

    assert answer.status == 202
    assert len(queue.messages) == 1


@pytest.mark.parametrize(
    "initiator",
    [None, "api", {"type": "api"}, {"detail": None}, {"detail": {"source_file_uuid": None}}],
    ids=["null", "string", "no detail", "null detail", "null source"],
)
def test_with_skip_derived_an_original_upload_is_still_queued(initiator: Any) -> None:
    # Given an upload that was not made from another file, whatever shape its initiator has
    payload = sample_payload()
    payload["initiator"] = initiator
    queue = RecordingQueue()

    answer = unit_app(queue=queue, skip_derived=True).answer(event_for(payload))

    assert answer.status == 202
    assert len(queue.messages) == 1


# --- each field ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uuid", "problem"),
    [
        (..., "data.uuid is missing"),
        (UUID.upper(), "data.uuid is not a lowercase canonical file UUID"),
        (f"{UUID}~2", "data.uuid is not a lowercase canonical file UUID"),
        (f"../{UUID}", "data.uuid is not a lowercase canonical file UUID"),
        (f"{UUID}/../x", "data.uuid is not a lowercase canonical file UUID"),
        (f"{UUID}\n", "data.uuid is not a lowercase canonical file UUID"),
        (UUID.replace("-", ""), "data.uuid is not a lowercase canonical file UUID"),
        (12345, "data.uuid is not a lowercase canonical file UUID"),
    ],
    ids=["missing", "uppercase", "group id", "dot-dot prefix", "path suffix", "trailing newline", "no dashes", "int"],
)
def test_a_bad_uuid_is_a_400_naming_the_field(uuid: Any, problem: str) -> None:
    assert _refusal(_with_data(uuid=uuid)) == (400, "invalid_payload", problem)


@pytest.mark.parametrize(
    ("size", "problem"),
    [
        (..., "data.size is missing"),
        (True, "data.size is not a non-negative integer"),
        ("123", "data.size is not a non-negative integer"),
        (-1, "data.size is not a non-negative integer"),
        (1.5, "data.size is not a non-negative integer"),
        (123.0, "data.size is not a non-negative integer"),
        ([123], "data.size is not a non-negative integer"),
    ],
    ids=["missing", "bool", "string", "negative", "fraction", "float", "list"],
)
def test_a_bad_size_is_a_400_naming_the_field(size: Any, problem: str) -> None:
    assert _refusal(_with_data(size=size)) == (400, "invalid_payload", problem)


@pytest.mark.parametrize("name", ["original_filename", "mime_type", "original_file_url"])
def test_a_text_field_of_another_type_is_a_400_naming_it(name: str) -> None:
    assert _refusal(_with_data(**{name: {"a": 1}})) == (400, "invalid_payload", f"data.{name} is not a string")


def test_every_bad_field_is_named_in_one_message() -> None:
    assert _refusal(_with_data(uuid="nope", size="1")) == (
        400,
        "invalid_payload",
        "data.uuid is not a lowercase canonical file UUID; data.size is not a non-negative integer",
    )


@pytest.mark.parametrize("data", [..., None, [], "x"], ids=["missing", "null", "list", "string"])
def test_data_that_is_not_an_object_is_a_400(data: Any) -> None:
    payload = sample_payload()
    if data is ...:
        del payload["data"]
    else:
        payload["data"] = data

    assert _refusal(payload) == (400, "invalid_payload", "data is missing or not an object")


@pytest.mark.parametrize(
    ("hook", "problem"),
    [
        (..., "hook is missing or not an object"),
        ("file.uploaded", "hook is missing or not an object"),
        ({}, "hook.event is missing or not a string"),
        ({"event": ""}, "hook.event is missing or not a string"),
        ({"event": ["file.uploaded"]}, "hook.event is missing or not a string"),
    ],
    ids=["missing", "string", "no event", "empty event", "list event"],
)
def test_a_missing_hook_event_is_a_400(hook: Any, problem: str) -> None:
    payload = sample_payload()
    if hook is ...:
        del payload["hook"]
    else:
        payload["hook"] = hook

    assert _refusal(payload) == (400, "invalid_payload", problem)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "body is not JSON"),
        ("", "body is not JSON"),
        ('{"hook": ', "body is not JSON"),
        ("[1, 2]", "body is not a JSON object"),
        ('"file.uploaded"', "body is not a JSON object"),
        ("[" * 100_000 + "]" * 100_000, "body is not JSON"),
    ],
    ids=["text", "empty", "truncated", "array", "string", "nested too deep"],
)
def test_a_signed_body_that_is_not_a_json_object_is_a_400(body: str, message: str) -> None:
    queue = RecordingQueue()

    answer = unit_app(queue=queue).answer(event_for(body))

    assert (answer.status, answer.body["reason"], answer.body["message"]) == (400, "not_json", message)
    assert queue.messages == []


def test_a_signed_body_that_is_not_utf8_is_a_400() -> None:
    # Given bytes that are not UTF-8, base64-encoded by the gateway and correctly signed
    queue = RecordingQueue()
    event = event_for(b'{"hook": "\xff"}', base64_encoded=True)

    answer = unit_app(queue=queue).answer(event)

    assert (answer.status, answer.body["reason"]) == (400, "not_utf8")
    assert queue.messages == []


def test_a_text_body_with_a_lone_surrogate_is_a_400() -> None:
    with pytest.raises(Refused) as refused:
        read_body({"body": '{"a": "\ud800"}', "isBase64Encoded": False}, 1024)

    assert (refused.value.answer.status, refused.value.answer.body["reason"]) == (400, "not_utf8")


def test_invalid_base64_is_a_400() -> None:
    # Given a gateway event flagged base64 whose body is not base64
    event = load_event(FILE_UPLOADED)
    event["isBase64Encoded"] = True
    queue = RecordingQueue()

    answer = unit_app(queue=queue).answer(event)

    assert (answer.status, answer.body["reason"], answer.body["message"]) == (
        400,
        "bad_encoding",
        "body is not valid base64",
    )
    assert queue.messages == []


def test_parse_payload_returns_the_object() -> None:
    assert parse_payload(b'{"hook": {"event": "x"}}') == {"hook": {"event": "x"}}


# --- size cap and order ----------------------------------------------------------------------------------------


def test_a_body_at_the_cap_is_read_and_one_byte_more_is_a_413() -> None:
    assert read_body({"body": "x" * 100}, 100) == b"x" * 100

    with pytest.raises(Refused) as refused:
        read_body({"body": "x" * 101}, 100)

    assert refused.value.answer.status == 413
    assert refused.value.answer.body == {
        "status": "rejected",
        "reason": "body_too_large",
        "message": "body is larger than the 100-byte limit",
    }


def test_the_cap_counts_utf8_bytes_not_characters() -> None:
    # Given 60 characters that take 120 bytes
    with pytest.raises(Refused) as refused:
        read_body({"body": "é" * 60}, 100)

    assert refused.value.answer.status == 413


def test_a_base64_body_is_capped_on_its_decoded_size() -> None:
    # Given 101 bytes, base64-encoded: 136 characters, not over the pre-decoding bound, so the decoded size decides
    encoded = base64.b64encode(b"x" * 101).decode()

    with pytest.raises(Refused) as refused:
        read_body({"body": encoded, "isBase64Encoded": True}, 100)

    assert refused.value.answer.status == 413
    assert read_body({"body": base64.b64encode(b"x" * 100).decode(), "isBase64Encoded": True}, 100) == b"x" * 100


def test_an_obviously_too_long_base64_body_is_refused_before_decoding() -> None:
    # Given base64 text longer than any encoding of 100 bytes, and not even valid base64
    too_long = "!" * (max_base64_length(100) + 1)

    with pytest.raises(Refused) as refused:
        read_body({"body": too_long, "isBase64Encoded": True}, 100)

    # Then it is a 413, not the 400 that decoding it would have given
    assert refused.value.answer.status == 413


def test_max_base64_length_is_the_length_of_the_largest_allowed_body() -> None:
    for size in (1, 2, 3, 100, 256 * 1024):
        assert max_base64_length(size) == len(base64.b64encode(b"x" * size))


def test_a_missing_body_reads_as_empty() -> None:
    assert read_body({"isBase64Encoded": False}, 100) == b""


def test_an_oversized_unsigned_body_is_a_413_before_the_signature_is_checked() -> None:
    queue = RecordingQueue()
    event = event_for("x" * 2000, secret=None)

    answer = unit_app(queue=queue, max_body_bytes=1000).answer(event)

    assert (answer.status, answer.body["reason"]) == (413, "body_too_large")
    assert queue.messages == []


def test_unsigned_garbage_is_a_401_not_a_400() -> None:
    # Given a body that is not JSON and carries no signature: it must not be parsed at all
    answer = unit_app().answer(event_for("not json", secret=None))

    assert (answer.status, answer.body["reason"]) == (401, "signature_missing")


def test_only_post_is_accepted() -> None:
    queue = RecordingQueue()

    answer = unit_app(queue=queue).answer(event_for(sample_payload(), method="GET"))

    assert (answer.status, answer.body["reason"]) == (405, "method_not_allowed")
    assert answer.to_http()["headers"]["allow"] == "POST"
    assert queue.messages == []


def test_an_event_without_a_request_context_is_not_a_post() -> None:
    event = load_event(FILE_UPLOADED)
    del event["requestContext"]

    assert unit_app().answer(event).status == 405


# --- the queue -------------------------------------------------------------------------------------------------


def test_a_queue_that_cannot_be_reached_is_a_503() -> None:
    # Given a queue that fails
    queue = RecordingQueue(error=QueueUnavailableError("EndpointConnectionError"))

    # When a valid upload arrives
    response = unit_app(queue=queue).handle(load_event(FILE_UPLOADED))

    # Then Uploadcare is told to retry, and nothing is on the queue
    assert response["statusCode"] == 503
    assert answer_body(response) == {
        "status": "unavailable",
        "reason": "queue_unavailable",
        "message": "the copy queue is unavailable; try again later",
    }
    assert queue.messages == []


class _FailingSqs:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def send_message(self, **kwargs: Any) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "reported"),
    [
        (
            ClientError({"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue"}}, "SendMessage"),
            "AWS.SimpleQueueService.NonExistentQueue",
        ),
        (ClientError({"Error": {"Code": "AccessDenied"}}, "SendMessage"), "AccessDenied"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "EndpointConnectionError"),
    ],
    ids=["no such queue", "access denied", "unreachable"],
)
def test_sqs_errors_become_queue_unavailable(error: Exception, reported: str) -> None:
    queue = SqsCopyQueue(_FailingSqs(error), "http://localhost/q")

    with pytest.raises(QueueUnavailableError, match=f"^{reported}$"):
        queue.send("{}")


def test_sqs_gets_the_queue_url_and_the_message_as_is() -> None:
    calls: list[dict[str, Any]] = []

    class _Sqs:
        def send_message(self, **kwargs: Any) -> None:
            calls.append(kwargs)

    SqsCopyQueue(_Sqs(), "http://localhost/q").send('{"version":1}')

    assert calls == [{"QueueUrl": "http://localhost/q", "MessageBody": '{"version":1}'}]


def test_the_http_response_is_json_with_a_content_type() -> None:
    response = unit_app().handle(copy.deepcopy(load_event(FILE_UPLOADED)))

    assert response["statusCode"] == 202
    assert response["headers"]["content-type"] == "application/json"
    assert json.loads(response["body"]) == {"status": "queued", "uuid": UUID}
