"""The project's Uploadcare client over real loopback HTTP, against the local emulator and a moto S3 bucket."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import urllib3

from devkit.emulator import Fault, UploadcareEmulator
from devkit.servers import free_port
from tests.integration.conftest import (
    EMULATOR_PREFIX,
    EMULATOR_PUBLIC_KEY,
    EMULATOR_SECRET_KEY,
    EMULATOR_STORAGE,
)
from tests.integration.emulator_support import at_most, bucket_of
from uploadcare_s3_copy.patterns import predict_key
from uploadcare_s3_copy.reasons import CopyFailure, PermanentFailure, Reason, TransientFailure
from uploadcare_s3_copy.s3location import S3Location
from uploadcare_s3_copy.uploadcare import (
    CopyStatus,
    Credentials,
    RemoteCopyResult,
    UploadcareClient,
    classify_error,
)
from uploadcare_s3_copy_cli.admin_api import AdminClient

PATTERN = "${uuid}/${filename}${ext}"


@pytest.fixture
def client(emulator: UploadcareEmulator, pool: urllib3.PoolManager) -> AdminClient:
    # The functions' client with the operator's calls on top: one fixture tests both.
    return AdminClient(Credentials(EMULATOR_PUBLIC_KEY, EMULATOR_SECRET_KEY), emulator.url, pool=pool)


def copy(client: UploadcareClient, uuid_: str, **overrides: Any) -> RemoteCopyResult:
    arguments: dict[str, Any] = {"make_public": False, "pattern": PATTERN, **overrides}
    return client.remote_copy(uuid_, arguments.pop("target", EMULATOR_STORAGE), **arguments)


def failure_of(call: Any) -> CopyFailure:
    with pytest.raises(CopyFailure) as raised:
        call()
    return raised.value


def keys_in(bucket: str) -> list[str]:
    return [item["Key"] for item in boto3.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]


# --- remote_copy: the happy paths --------------------------------------------------------------------------------


def test_a_remote_copy_lands_in_the_bucket_and_answers_copied(
    emulator: UploadcareEmulator, client: UploadcareClient
) -> None:
    # Given an uploaded file of 1234 bytes
    uploaded = emulator.add_file(original_filename="photo.jpg", size=1234)

    # When the client copies it to the project's storage
    result = copy(client, uploaded.uuid)

    # Then Uploadcare answers 201 with the s3:// URL of the object, which holds the file's bytes
    expected_key = f"uploads/{uploaded.uuid}/photo.jpg"
    assert result.status is CopyStatus.COPIED
    assert result.location == S3Location(bucket_of(emulator), expected_key)
    assert result.raw_result == f"s3://{bucket_of(emulator)}/{expected_key}"
    assert result.request_id
    s3 = boto3.client("s3")
    assert s3.head_object(Bucket=bucket_of(emulator), Key=expected_key)["ContentLength"] == 1234
    stored = s3.get_object(Bucket=bucket_of(emulator), Key=expected_key)["Body"].read()
    assert stored == emulator.content(uploaded.uuid)
    assert emulator.copies(uploaded.uuid) == 1


def test_a_second_copy_answers_already_exists_without_a_result(
    emulator: UploadcareEmulator, client: UploadcareClient
) -> None:
    # Given a file that has been copied once
    uploaded = emulator.add_file(original_filename="report.pdf", size=10)
    copy(client, uploaded.uuid)

    # When it is copied again with the same pattern
    again = copy(client, uploaded.uuid)

    # Then the answer is "already exists" with no location, and nothing was written twice
    assert again.status is CopyStatus.ALREADY_EXISTS
    assert again.location is None
    assert again.raw_result is None
    assert emulator.copy_calls(uploaded.uuid) == 2
    assert emulator.copies(uploaded.uuid) == 1


def test_already_exists_carries_the_result_when_uploadcare_sends_it(
    emulator: UploadcareEmulator, client: UploadcareClient
) -> None:
    # Given an emulator that reads the docs the other way: a 200 carries `result` too
    emulator.already_exists_with_result = True
    uploaded = emulator.add_file(original_filename="report.pdf", size=10)
    first = copy(client, uploaded.uuid)

    # When the file is copied again
    again = copy(client, uploaded.uuid)

    # Then "already exists" comes with the location of the existing object
    assert again.status is CopyStatus.ALREADY_EXISTS
    assert again.location == first.location
    assert again.location is not None
    assert again.location.key == f"uploads/{uploaded.uuid}/report.pdf"


@pytest.mark.parametrize(
    ("original_filename", "pattern", "expected_tail"),
    [
        ("holiday photo.JPG", PATTERN, "holidayphoto.JPG"),
        ("résumé 100%.pdf", PATTERN, "rsum100.pdf"),
        ("naïve ünïcode.txt", "${default}", "navencode.txt"),
        ("().png", PATTERN, "noroot.png"),
        ("notes.ü 50%", PATTERN, "notes.ü 50%"),  # the extension keeps spaces, unicode and `%`
        ("100%25 done", "${filename}-${uuid}${ext}", "10025done-{uuid}"),
    ],
)
def test_the_predicted_key_is_the_key_of_the_copy(
    emulator: UploadcareEmulator,
    client: UploadcareClient,
    original_filename: str,
    pattern: str,
    expected_tail: str,
) -> None:
    # Given a file whose original name has spaces, unicode or `%`
    uploaded = emulator.add_file(original_filename=original_filename, size=321)
    expected_key = EMULATOR_PREFIX + (
        expected_tail.format(uuid=uploaded.uuid) if "{uuid}" in expected_tail else f"{uploaded.uuid}/{expected_tail}"
    )

    # When it is copied
    result = copy(client, uploaded.uuid, pattern=pattern)

    # Then the key in `result`, the key predicted from the pattern and the object in the bucket all agree
    assert result.location is not None
    assert result.location.key == expected_key
    assert predict_key(EMULATOR_PREFIX, pattern, uploaded.uuid, original_filename) == expected_key
    head = boto3.client("s3").head_object(Bucket=bucket_of(emulator), Key=expected_key)
    assert head["ContentLength"] == 321


# --- remote_copy: each failure and its reason --------------------------------------------------------------------


def test_throttling_is_transient_and_carries_retry_after(
    emulator: UploadcareEmulator, client: UploadcareClient
) -> None:
    # Given a file whose next copy is throttled for 7 seconds
    uploaded = emulator.add_file()
    emulator.script(uploaded.uuid, Fault.throttled(retry_after=7))

    # When it is copied
    failure = failure_of(lambda: copy(client, uploaded.uuid))

    # Then the failure is `throttled`, transient, and waits what Retry-After said
    assert isinstance(failure, TransientFailure)
    assert failure.reason is Reason.THROTTLED
    assert failure.retry_after == 7.0
    assert failure.status == 429
    assert failure.request_id


def test_a_file_not_ready_yet_is_transient(emulator: UploadcareEmulator, client: UploadcareClient) -> None:
    uploaded = emulator.add_file()
    emulator.script(uploaded.uuid, Fault.not_ready())

    failure = failure_of(lambda: copy(client, uploaded.uuid))

    assert isinstance(failure, TransientFailure)
    assert failure.reason is Reason.NOT_READY


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_server_error_is_transient_whatever_its_body(
    emulator: UploadcareEmulator, client: UploadcareClient, status: int
) -> None:
    # Given a file whose next copy meets a 5xx (JSON from the API, HTML from nginx for 502-504)
    uploaded = emulator.add_file()
    emulator.script(uploaded.uuid, Fault.server_error(status))

    # When it is copied
    failure = failure_of(lambda: copy(client, uploaded.uuid))

    # Then the failure is a transient `server_error` that names the status
    assert isinstance(failure, TransientFailure)
    assert failure.reason is Reason.SERVER_ERROR
    assert failure.status == status
    assert str(status) in failure.detail


def test_an_answer_slower_than_the_read_timeout_is_a_timeout(
    emulator: UploadcareEmulator, client: UploadcareClient
) -> None:
    # Given a file whose next copy takes a second to answer
    uploaded = emulator.add_file()
    emulator.script(uploaded.uuid, Fault.slow(1.0))

    # When the client copies it with a 0.2 s read timeout
    started = time.monotonic()
    failure = failure_of(lambda: copy(client, uploaded.uuid, timeout=urllib3.Timeout(connect=2.0, read=0.2)))

    # Then it gives up after the read timeout with a transient `timeout`
    assert time.monotonic() - started < 0.9
    assert isinstance(failure, TransientFailure)
    assert failure.reason is Reason.TIMEOUT


def test_a_closed_port_is_a_connection_failure(pool: urllib3.PoolManager) -> None:
    # Given an API root where nothing listens
    closed = UploadcareClient(Credentials("pk", "sk"), f"http://127.0.0.1:{free_port()}/", pool=pool)

    # When a copy is asked for
    failure = failure_of(lambda: closed.remote_copy(str(uuid.uuid4()), "t", make_public=False, pattern=PATTERN))

    # Then the failure is a transient `connection`, not a timeout
    assert isinstance(failure, TransientFailure)
    assert failure.reason is Reason.CONNECTION


def test_an_unknown_storage_is_permanent(emulator: UploadcareEmulator, client: UploadcareClient) -> None:
    uploaded = emulator.add_file()

    failure = failure_of(lambda: copy(client, uploaded.uuid, target="no-such-storage"))

    assert isinstance(failure, PermanentFailure)
    assert failure.reason is Reason.STORAGE_NOT_FOUND
    assert failure.detail == "Project has no storage with provided name."


def test_an_invalid_pattern_is_permanent_and_writes_nothing(
    emulator: UploadcareEmulator, client: UploadcareClient
) -> None:
    # Given a pattern with a placeholder Uploadcare does not know, sent as it is
    uploaded = emulator.add_file()

    # When the file is copied with it
    failure = failure_of(lambda: copy(client, uploaded.uuid, pattern="${uuid}/${original_name}"))

    # Then the failure is a permanent `invalid_pattern` and the bucket stays empty
    assert isinstance(failure, PermanentFailure)
    assert failure.reason is Reason.INVALID_PATTERN
    assert failure.detail.startswith("Invalid pattern provided: ")
    assert keys_in(bucket_of(emulator)) == []


@pytest.mark.parametrize("source", ["not-a-uuid", "03CCF9AB-F266-43FB-973D-A6529C55C2AE", "https://ucarecdn.com/x/"])
def test_a_bad_source_is_permanent(client: UploadcareClient, source: str) -> None:
    failure = failure_of(lambda: copy(client, source))

    assert isinstance(failure, PermanentFailure)
    assert failure.reason is Reason.BAD_SOURCE
    assert failure.detail == "Bad `source` parameter. Use UUID or CDN URL."


def test_a_file_over_5_gb_is_too_large_and_writes_nothing(
    emulator: UploadcareEmulator, client: UploadcareClient
) -> None:
    # Given a file one byte over 5 GB
    uploaded = emulator.add_file(original_filename="huge.mov", size=5 * 1024**3 + 1)

    # When it is copied
    failure = failure_of(lambda: copy(client, uploaded.uuid))

    # Then the failure is a permanent `too_large` and nothing was written
    assert isinstance(failure, PermanentFailure)
    assert failure.reason is Reason.TOO_LARGE
    assert keys_in(bucket_of(emulator)) == []


def test_an_unknown_file_is_not_found(client: UploadcareClient) -> None:
    failure = failure_of(lambda: copy(client, str(uuid.uuid4())))

    assert isinstance(failure, PermanentFailure)
    assert failure.reason is Reason.NOT_FOUND
    assert failure.status == 404


def test_a_deleted_file_is_not_found(emulator: UploadcareEmulator, client: UploadcareClient) -> None:
    uploaded = emulator.add_file()
    emulator.remove_file(uploaded.uuid)

    failure = failure_of(lambda: copy(client, uploaded.uuid))

    assert failure.reason is Reason.NOT_FOUND


def test_a_wrong_secret_key_is_an_auth_failure(emulator: UploadcareEmulator, pool: urllib3.PoolManager) -> None:
    # Given a client signing with a secret key the project does not have
    wrong = UploadcareClient(Credentials(EMULATOR_PUBLIC_KEY, "not-the-secret"), emulator.url, pool=pool)
    uploaded = emulator.add_file()

    # When it copies a file
    failure = failure_of(lambda: copy(wrong, uploaded.uuid))

    # Then Uploadcare refuses the signature (401), which the client reports as transient `auth`
    assert isinstance(failure, TransientFailure)
    assert failure.reason is Reason.AUTH
    assert failure.status == 401
    assert failure.detail == "Invalid signature. Please check your Secret key."
    assert emulator.copy_calls(uploaded.uuid) == 0


def test_a_clock_20_minutes_off_is_an_auth_failure(emulator: UploadcareEmulator, pool: urllib3.PoolManager) -> None:
    # Given a client whose clock is 20 minutes behind (the API allows 15)
    late = AdminClient(
        Credentials(EMULATOR_PUBLIC_KEY, EMULATOR_SECRET_KEY),
        emulator.url,
        pool=pool,
        clock=lambda: time.time() - 20 * 60,
    )

    # When it asks for anything
    failure = failure_of(late.get_project)

    # Then the request is refused as an auth failure
    assert failure.reason is Reason.AUTH
    assert failure.status == 401


def test_a_rotated_secret_key_refuses_the_old_one_and_accepts_the_new(
    emulator: UploadcareEmulator, client: AdminClient, pool: urllib3.PoolManager
) -> None:
    # Given the project's secret key has been rotated
    emulator.rotate_secret_key("rotated-secret")

    # When the old and the new key are used
    failure = failure_of(client.get_project)
    renewed = AdminClient(Credentials(EMULATOR_PUBLIC_KEY, "rotated-secret"), emulator.url, pool=pool)

    # Then only the new one is accepted
    assert failure.reason is Reason.AUTH
    assert renewed.get_project()["pub_key"] == EMULATOR_PUBLIC_KEY


def test_a_request_without_accept_is_not_acceptable(
    emulator: UploadcareEmulator, client: UploadcareClient, pool: urllib3.PoolManager
) -> None:
    # Given a correctly signed request that lacks the v0.7 Accept header
    uploaded = emulator.add_file()
    body = f'{{"source":"{uploaded.uuid}","target":"{EMULATOR_STORAGE}"}}'.encode()
    headers = client.signed_headers("POST", "/files/remote_copy/", body)
    del headers["Accept"]

    # When it is sent as it is
    response = pool.request("POST", emulator.url + "files/remote_copy/", body=body, headers=headers)

    # Then the API answers 406, which the client's vocabulary calls `not_acceptable`, and nothing is copied
    assert response.status == 406
    detail = response.json()["detail"]
    assert classify_error(response.status, detail).reason is Reason.NOT_ACCEPTABLE
    assert emulator.copy_calls(uploaded.uuid) == 0


# --- files, project and webhooks ---------------------------------------------------------------------------------


def test_listing_250_files_follows_next_and_sees_every_file_once_in_upload_order(
    emulator: UploadcareEmulator, client: UploadcareClient
) -> None:
    # Given 250 uploaded files
    uploaded = [emulator.add_file(original_filename=f"f{n}.txt", size=n) for n in range(250)]

    # When the client walks the listing 100 at a time
    pages = list(at_most(client.iter_file_pages(limit=100)))

    # Then it follows `next` through three pages and sees each file exactly once, oldest first
    assert [len(page.files) for page in pages] == [100, 100, 50]
    assert [f["uuid"] for page in pages for f in page.files] == [f.uuid for f in uploaded]
    assert all(page.next_url and page.next_url.startswith(emulator.url) for page in pages[:-1])
    assert pages[-1].next_url is None


@pytest.mark.parametrize("style", ["Z", "+00:00"])
def test_listing_from_a_datetime_includes_it_and_leaves_out_older_files(
    emulator: UploadcareEmulator, client: UploadcareClient, style: str
) -> None:
    # Given ten files uploaded a minute apart
    start = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    uploaded = [emulator.add_file(datetime_uploaded=start + timedelta(minutes=n)) for n in range(10)]

    # When the listing starts at the seventh file's upload time, written with a `Z` or an offset
    since = (start + timedelta(minutes=6)).isoformat()
    since = since.replace("+00:00", "Z") if style == "Z" else since
    listed = [f["uuid"] for page in at_most(client.iter_file_pages(from_datetime=since, limit=2)) for f in page.files]

    # Then the seventh file and the later ones are listed, and no earlier one
    assert listed == [f.uuid for f in uploaded[6:]]


def test_listing_only_unstored_files(emulator: UploadcareEmulator, client: UploadcareClient) -> None:
    emulator.add_file(stored=True)
    temporary = emulator.add_file(stored=False)

    pages = list(at_most(client.iter_file_pages(stored=False)))

    assert [f["uuid"] for page in pages for f in page.files] == [temporary.uuid]


def test_get_file_answers_the_file_object(emulator: UploadcareEmulator, client: UploadcareClient) -> None:
    uploaded = emulator.add_file(original_filename="cat.png", size=99, stored=False)

    info = client.get_file(uploaded.uuid)

    assert info["uuid"] == uploaded.uuid
    assert info["size"] == 99
    assert info["original_filename"] == "cat.png"
    assert info["mime_type"] == "image/png"
    assert info["is_image"] is True
    assert info["datetime_stored"] is None
    assert info["url"] == f"{emulator.url}files/{uploaded.uuid}/"


def test_get_project_answers_the_project_of_the_keys(client: AdminClient) -> None:
    project = client.get_project()

    assert project["pub_key"] == EMULATOR_PUBLIC_KEY
    assert project["autostore_enabled"] is True
    assert project["collaborators"] == []


def test_a_created_webhook_is_listed_with_version_0_7(client: AdminClient) -> None:
    # Given no webhooks
    assert client.list_webhooks() == []

    # When the client creates one
    created = client.create_webhook("https://example.com/hook", signing_secret="s3cr3t")

    # Then it is listed with the event, the signing secret and payload version 0.7
    assert created["target_url"] == "https://example.com/hook"
    assert created["event"] == "file.uploaded"
    assert created["version"] == "0.7"
    assert created["signing_secret"] == "s3cr3t"
    assert created["is_active"] is True
    assert client.list_webhooks() == [created]


def test_a_second_webhook_for_the_same_target_and_event_is_refused(client: AdminClient) -> None:
    client.create_webhook("https://example.com/hook", signing_secret="s3cr3t")

    failure = failure_of(lambda: client.create_webhook("https://example.com/hook", signing_secret="other"))

    assert isinstance(failure, PermanentFailure)
    assert failure.status == 400
    assert "already exists" in failure.detail
    assert len(client.list_webhooks()) == 1
