"""The Uploadcare emulator itself: as strict as Uploadcare documents, and scriptable the way the tests need."""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
import urllib3

from devkit.emulator import MAX_CONTENT_BYTES, Fault, Storage, UploadcareEmulator, file_content, parse_source
from devkit.emulator.routes import ADMIN_ROUTES
from tests.conftest import ROOT
from tests.integration.conftest import EMULATOR_PREFIX, EMULATOR_PUBLIC_KEY, EMULATOR_SECRET_KEY, EMULATOR_STORAGE
from tests.integration.emulator_support import at_most, bucket_of
from uploadcare_s3_copy.uploadcare import ACCEPT, Credentials, UploadcareClient, request_signature
from uploadcare_s3_copy_cli.admin_api import AdminClient

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000"


def signed(
    method: str,
    uri: str,
    body: bytes = b"",
    *,
    secret_key: str = EMULATOR_SECRET_KEY,
    public_key: str = EMULATOR_PUBLIC_KEY,
    date: str | None = None,
) -> dict[str, str]:
    """Headers of a request signed by hand (not by the client under test), so each part can be bent."""
    date = email.utils.formatdate(usegmt=True) if date is None else date
    sig = request_signature(secret_key, method, body, "application/json", date, uri)
    return {
        "Accept": ACCEPT,
        "Content-Type": "application/json",
        "Date": date,
        "Authorization": f"Uploadcare {public_key}:{sig}",
    }


def send(
    pool: urllib3.PoolManager,
    emulator: UploadcareEmulator,
    method: str,
    uri: str,
    payload: Any = None,
    headers: dict[str, str] | None = None,
) -> urllib3.BaseHTTPResponse:
    body = b"" if payload is None else json.dumps(payload).encode()
    headers = signed(method, uri, body) if headers is None else headers
    return pool.request(method, emulator.url.rstrip("/") + uri, body=body or None, headers=headers)


def copy_request(pool: urllib3.PoolManager, emulator: UploadcareEmulator, uuid_: str) -> urllib3.BaseHTTPResponse:
    return send(pool, emulator, "POST", "/files/remote_copy/", {"source": uuid_, "target": EMULATOR_STORAGE})


# --- strictness --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("uri", ["/project", "/files/remote_copy", "/files"])
def test_a_path_without_its_trailing_slash_is_not_found(
    emulator: UploadcareEmulator, pool: urllib3.PoolManager, uri: str
) -> None:
    method = "POST" if "remote_copy" in uri else "GET"

    response = send(pool, emulator, method, uri, {} if method == "POST" else None)

    assert response.status == 404
    assert response.json() == {"detail": "Not found."}


def test_an_unsigned_request_is_refused(emulator: UploadcareEmulator, pool: urllib3.PoolManager) -> None:
    response = send(pool, emulator, "GET", "/project/", headers={"Accept": ACCEPT})

    assert response.status == 401
    assert response.json() == {"detail": "Incorrect authentication credentials."}


def test_an_unknown_public_key_is_named_in_the_refusal(emulator: UploadcareEmulator, pool: urllib3.PoolManager) -> None:
    headers = signed("GET", "/project/", public_key="stranger")

    response = send(pool, emulator, "GET", "/project/", headers=headers)

    assert response.status == 401
    assert response.json() == {"detail": "Public key stranger not found."}


def test_a_signature_over_another_uri_is_refused(emulator: UploadcareEmulator, pool: urllib3.PoolManager) -> None:
    # Given headers signed for /files/ without a query
    headers = signed("GET", "/files/")

    # When they are sent with a query the signature did not cover
    response = send(pool, emulator, "GET", "/files/?limit=1", headers=headers)

    # Then the signature is refused
    assert response.status == 401
    assert response.json() == {"detail": "Invalid signature. Please check your Secret key."}


def test_simple_auth_over_plain_http_is_forbidden(emulator: UploadcareEmulator, pool: urllib3.PoolManager) -> None:
    headers = {"Accept": ACCEPT, "Authorization": f"Uploadcare.Simple {EMULATOR_PUBLIC_KEY}:{EMULATOR_SECRET_KEY}"}

    response = send(pool, emulator, "GET", "/project/", headers=headers)

    assert response.status == 400
    assert response.json()["detail"].startswith("Simple authentication over HTTP is forbidden.")


@pytest.mark.parametrize("accept", [None, "application/json", "*/*", "application/vnd.uploadcare-v0.6+json"])
def test_a_missing_or_wrong_accept_is_not_acceptable(
    emulator: UploadcareEmulator, pool: urllib3.PoolManager, accept: str | None
) -> None:
    # Given a correctly signed request with another Accept header, or none
    headers = signed("GET", "/project/")
    del headers["Accept"]
    if accept:
        headers["Accept"] = accept

    # When it is sent
    response = send(pool, emulator, "GET", "/project/", headers=headers)

    # Then the answer is 406, the one answer sent as application/json
    assert response.status == 406
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": "Incorrect Accept header provided. Make sure to specify API version. Refer to REST API docs for "
        "details."
    }


@pytest.mark.parametrize(
    ("date", "status"),
    [(-16 * 60, 401), (16 * 60, 401), (-14 * 60, 200), ("2024-03-01T12:00:00Z", 401), ("", 401)],
    ids=["16-min-behind", "16-min-ahead", "14-min-behind", "iso-not-rfc2822", "empty"],
)
def test_a_date_off_by_more_than_15_minutes_or_not_rfc2822_is_refused(
    emulator: UploadcareEmulator, pool: urllib3.PoolManager, date: int | str, status: int
) -> None:
    # Given a request signed correctly over its own Date header: minutes off the clock, or not RFC 2822
    if isinstance(date, int):
        date = email.utils.formatdate(time.time() + date, usegmt=True)
    headers = signed("GET", "/project/", date=date)

    # When it is sent
    response = send(pool, emulator, "GET", "/project/", headers=headers)

    # Then only a date within 15 minutes of the emulator's clock is accepted
    assert response.status == status
    if status == 401:
        assert response.json() == {"detail": "Incorrect authentication credentials."}


def test_a_method_the_endpoint_lacks_is_not_allowed(emulator: UploadcareEmulator, pool: urllib3.PoolManager) -> None:
    response = send(pool, emulator, "GET", "/files/remote_copy/")

    assert response.status == 405
    assert response.json() == {"detail": 'Method "GET" not allowed.'}


def test_answers_carry_uploadcares_headers(emulator: UploadcareEmulator, pool: urllib3.PoolManager) -> None:
    response = send(pool, emulator, "GET", "/project/")

    assert response.status == 200
    assert response.headers["Content-Type"] == "application/vnd.uploadcare-v0.7+json"
    assert response.headers["Server"] == "nginx"
    request_id = response.headers["X-Uploadcare-Request-Id"]
    assert UUID_RE.match(request_id)
    assert emulator.requests[-1].request_id == request_id


# --- remote_copy -------------------------------------------------------------------------------------------------


def test_make_public_defaults_to_true_and_grants_public_read(
    emulator: UploadcareEmulator, pool: urllib3.PoolManager
) -> None:
    # Given two files
    public, private = emulator.add_file(original_filename="a.txt"), emulator.add_file(original_filename="b.txt")

    # When one is copied without `make_public` and the other with false
    send(pool, emulator, "POST", "/files/remote_copy/", {"source": public.uuid, "target": EMULATOR_STORAGE})
    payload = {"source": private.uuid, "target": EMULATOR_STORAGE, "make_public": False}
    send(pool, emulator, "POST", "/files/remote_copy/", payload)

    # Then only the first object can be read by everyone
    s3 = boto3.client("s3")

    def grantees(key: str) -> list[str]:
        grants = s3.get_object_acl(Bucket=bucket_of(emulator), Key=key)["Grants"]
        return [g["Grantee"].get("URI", "") for g in grants]

    assert ALL_USERS in grantees(f"{EMULATOR_PREFIX}{public.uuid}/a.txt")
    assert ALL_USERS not in grantees(f"{EMULATOR_PREFIX}{private.uuid}/b.txt")


def test_an_omitted_pattern_means_the_storages_own_pattern(
    emulator: UploadcareEmulator, pool: urllib3.PoolManager
) -> None:
    # Given a second storage on the same bucket whose pattern is `flat/${uuid}${ext}`
    emulator.add_storage(Storage("flat", bucket_of(emulator), "", "flat/${uuid}${ext}"))
    uploaded = emulator.add_file(original_filename="doc.pdf")

    # When a copy to it names no pattern
    response = send(pool, emulator, "POST", "/files/remote_copy/", {"source": uploaded.uuid, "target": "flat"})

    # Then the storage's pattern names the object
    assert response.status == 201
    assert response.json() == {"type": "url", "result": f"s3://{bucket_of(emulator)}/flat/{uploaded.uuid}.pdf"}


def test_a_cdn_url_source_copies_the_file_with_its_operations_as_effects(
    emulator: UploadcareEmulator, pool: urllib3.PoolManager
) -> None:
    uploaded = emulator.add_file(original_filename="roof.jpg", size=50)
    source = f"https://ucarecdn.com/{uploaded.uuid}/-/resize/200x/roof.jpg"

    payload = {"source": source, "target": EMULATOR_STORAGE, "pattern": "${uuid}/${auto_filename}"}
    response = send(pool, emulator, "POST", "/files/remote_copy/", payload)

    assert response.status == 201
    assert (
        response.json()["result"]
        == f"s3://{bucket_of(emulator)}/{EMULATOR_PREFIX}{uploaded.uuid}/roof-/resize/200x/.jpg"
    )


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ({"target": EMULATOR_STORAGE}, "`source` parameter is required."),
        ({"source": "", "target": EMULATOR_STORAGE}, "`source` parameter is required."),
        ({"source": 42, "target": EMULATOR_STORAGE}, "Bad `source` parameter. Use UUID or CDN URL."),
        ({"source": "abc~2", "target": EMULATOR_STORAGE}, "Bad `source` parameter. Use UUID or CDN URL."),
        ({"source": UNKNOWN_UUID}, "`target` parameter is required."),
        (
            {"source": "00000000-0000-4000-8000-000000000000", "target": "x"},
            "Project has no storage with provided name.",
        ),
    ],
)
def test_bad_copy_requests_are_refused_with_uploadcares_texts(
    emulator: UploadcareEmulator, pool: urllib3.PoolManager, payload: dict[str, Any], detail: str
) -> None:
    response = send(pool, emulator, "POST", "/files/remote_copy/", payload)

    assert response.status == 400
    assert response.json() == {"detail": detail}


def test_scripted_faults_are_answered_in_order_then_the_copy_succeeds(
    emulator: UploadcareEmulator, pool: urllib3.PoolManager
) -> None:
    # Given a file with three faults scripted
    uploaded = emulator.add_file()
    emulator.script(uploaded.uuid, Fault.throttled(retry_after=2), Fault.not_ready(), Fault.server_error(503))
    payload = {"source": uploaded.uuid, "target": EMULATOR_STORAGE}

    # When it is copied four times
    answers = [send(pool, emulator, "POST", "/files/remote_copy/", payload) for _ in range(4)]

    # Then the faults come first, one per call, and the fourth call copies
    assert [a.status for a in answers] == [429, 400, 503, 201]
    assert answers[0].headers["Retry-After"] == "2"
    assert answers[0].json() == {"detail": "Request was throttled. Expected available in 2 seconds."}
    assert answers[1].json() == {"detail": "File is not ready yet."}
    assert answers[2].headers["Content-Type"] == "text/html"
    assert emulator.copy_calls(uploaded.uuid) == 4
    assert emulator.copies(uploaded.uuid) == 1
    assert emulator.pending_faults(uploaded.uuid) == []


def test_a_slow_answer_waits_and_then_copies(emulator: UploadcareEmulator, pool: urllib3.PoolManager) -> None:
    uploaded = emulator.add_file()
    emulator.script(uploaded.uuid, Fault.slow(0.3))

    started = time.monotonic()
    response = send(
        pool, emulator, "POST", "/files/remote_copy/", {"source": uploaded.uuid, "target": EMULATOR_STORAGE}
    )

    assert time.monotonic() - started >= 0.3
    assert response.status == 201
    assert emulator.copies(uploaded.uuid) == 1


def test_a_wrong_size_file_writes_one_byte_more_and_still_answers_201(
    emulator: UploadcareEmulator, pool: urllib3.PoolManager
) -> None:
    uploaded = emulator.add_file(original_filename="x.bin", size=100, wrong_size=True)

    response = send(
        pool, emulator, "POST", "/files/remote_copy/", {"source": uploaded.uuid, "target": EMULATOR_STORAGE}
    )

    assert response.status == 201
    head = boto3.client("s3").head_object(Bucket=bucket_of(emulator), Key=f"{EMULATOR_PREFIX}{uploaded.uuid}/x.bin")
    assert head["ContentLength"] == 101


def test_the_copy_delay_holds_every_copy(emulator: UploadcareEmulator, pool: urllib3.PoolManager) -> None:
    emulator.copy_delay = 0.2
    uploaded = emulator.add_file()

    started = time.monotonic()
    response = send(
        pool, emulator, "POST", "/files/remote_copy/", {"source": uploaded.uuid, "target": EMULATOR_STORAGE}
    )

    assert response.status == 201
    assert time.monotonic() - started >= 0.2


def test_requests_are_counted_by_method_and_path_whatever_the_answer(
    emulator: UploadcareEmulator, pool: urllib3.PoolManager
) -> None:
    send(pool, emulator, "GET", "/project/")
    send(pool, emulator, "GET", "/project/", headers={"Accept": ACCEPT})  # refused: still a request
    send(pool, emulator, "GET", "/files/?limit=5")

    assert emulator.request_counts() == {"GET /project/": 2, "GET /files/": 1}
    assert [(r.uri, r.status) for r in emulator.requests] == [
        ("/project/", 200),
        ("/project/", 401),
        ("/files/?limit=5", 200),
    ]


# --- listing -----------------------------------------------------------------------------------------------------


def test_files_uploaded_at_the_same_instant_are_each_listed_once(
    emulator: UploadcareEmulator, pool: urllib3.PoolManager
) -> None:
    # Given five files with one and the same upload time, and a later one
    instant = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    same = [emulator.add_file(datetime_uploaded=instant) for _ in range(5)]
    later = emulator.add_file(datetime_uploaded=instant.replace(minute=1))
    client = UploadcareClient(Credentials(EMULATOR_PUBLIC_KEY, EMULATOR_SECRET_KEY), emulator.url, pool=pool)

    # When they are listed two at a time
    listed = [f["uuid"] for page in at_most(client.iter_file_pages(limit=2)) for f in page.files]

    # Then `offset` in the `next` links keeps every file exactly once, in upload order
    assert listed == [f.uuid for f in [*same, later]]


def test_descending_order_lists_the_newest_first(emulator: UploadcareEmulator, pool: urllib3.PoolManager) -> None:
    uploaded = [emulator.add_file() for _ in range(5)]
    client = UploadcareClient(Credentials(EMULATOR_PUBLIC_KEY, EMULATOR_SECRET_KEY), emulator.url, pool=pool)

    listed: list[str] = []
    cursor: str | None = "/files/?ordering=-datetime_uploaded&limit=2"
    for _ in range(10):  # three pages are expected: a `next` that never ends fails below instead of hanging
        if cursor is None:
            break
        page = client.list_files_page(cursor)
        listed += [f["uuid"] for f in page.files]
        cursor = page.next_url

    assert listed == [f.uuid for f in reversed(uploaded)]


def test_a_listing_answers_totals_and_page_size(emulator: UploadcareEmulator, pool: urllib3.PoolManager) -> None:
    emulator.add_file(stored=True)
    emulator.add_file(stored=False)
    emulator.remove_file(emulator.add_file(stored=True).uuid)

    body = send(pool, emulator, "GET", "/files/?limit=5000").json()

    assert body["total"] == 2
    assert body["totals"] == {"removed": 1, "stored": 1, "unstored": 1}
    assert body["per_page"] == 1000
    assert body["next"] is None
    assert body["previous"] is None


# --- files and webhook bodies ------------------------------------------------------------------------------------


def test_the_emulator_refuses_to_run_without_a_local_s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)

    with pytest.raises(ValueError, match="no S3 endpoint"):
        UploadcareEmulator()


def test_file_content_is_deterministic_and_exactly_the_size(emulator: UploadcareEmulator) -> None:
    uploaded = emulator.add_file(size=4097)

    assert emulator.content(uploaded.uuid) == file_content(uploaded.uuid, 4097)
    assert len(emulator.content(uploaded.uuid)) == 4097
    assert file_content(uploaded.uuid, 10) == emulator.content(uploaded.uuid)[:10]
    assert file_content(str(uuid.uuid4()), 10) != file_content(uploaded.uuid, 10)


def test_content_over_64_mib_is_refused_unless_over_5_gb(emulator: UploadcareEmulator) -> None:
    with pytest.raises(ValueError, match="over the emulator's"):
        emulator.add_file(size=MAX_CONTENT_BYTES + 1)

    huge = emulator.add_file(size=6 * 1024**3)
    with pytest.raises(ValueError, match="size-only"):
        emulator.content(huge.uuid)


def test_uploads_get_strictly_increasing_times_by_default() -> None:
    frozen = UploadcareEmulator(clock=lambda: 1_700_000_000.0, aws_endpoint="http://localhost:9")

    first, second = frozen.add_file(), frozen.add_file()

    assert second.datetime_uploaded > first.datetime_uploaded


def test_a_file_uploaded_body_has_the_v07_shape(emulator: UploadcareEmulator, pool: urllib3.PoolManager) -> None:
    # Given a webhook registered for a target, and a file derived from another
    client = AdminClient(Credentials(EMULATOR_PUBLIC_KEY, EMULATOR_SECRET_KEY), emulator.url, pool=pool)
    hook = client.create_webhook("https://example.com/hook", signing_secret="s")
    original = emulator.add_file(original_filename="a.png")
    derived = emulator.add_file(original_filename="a-nobg.png", source_file_uuid=original.uuid)

    # When the delivery body for the derived file is built
    body = emulator.file_uploaded_body(derived.uuid, target_url="https://example.com/hook")

    # Then it has initiator, hook, data and file, with data equal to GET /files/<uuid>/
    assert set(body) == {"initiator", "hook", "data", "file"}
    assert body["initiator"]["detail"]["source_file_uuid"] == original.uuid
    assert body["hook"]["id"] == hook["id"]
    assert body["hook"]["event"] == "file.uploaded"
    assert body["hook"]["target"] == "https://example.com/hook"
    assert body["hook"]["project_pub_key"] == EMULATOR_PUBLIC_KEY
    assert body["data"] == client.get_file(derived.uuid)
    assert body["file"] == f"https://ucarecdn.com/{derived.uuid}/a-nobg.png"
    assert "source_file_uuid" not in emulator.file_uploaded_body(original.uuid)["initiator"]["detail"]


def test_the_file_object_has_every_field_of_the_2022_vector(emulator: UploadcareEmulator) -> None:
    vector = json.loads((ROOT / "tests" / "vectors" / "file-uploaded-v0.7-2022.json").read_text())
    uploaded = emulator.add_file(original_filename="IMG_3037.heic", mime_type="image/heic", stored=False)

    info = emulator.file_info(uploaded.uuid)

    assert set(info) == set(vector["data"])
    assert info["content_info"]["mime"] == {"mime": "image/heic", "type": "image", "subtype": "heic"}
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", info["datetime_uploaded"])


# --- the admin API -----------------------------------------------------------------------------------------------


def admin(pool: urllib3.PoolManager, emulator: UploadcareEmulator, method: str, path: str, payload: Any = None) -> Any:
    body = None if payload is None else json.dumps(payload).encode()
    response = pool.request(method, f"{emulator.url}__emulator__/{path}", body=body)
    assert response.status < 300, response.data
    return response.json()


def test_the_admin_api_registers_a_file_and_scripts_a_fault(
    emulator: UploadcareEmulator, pool: urllib3.PoolManager
) -> None:
    # Given a file registered and a throttle scripted over the unsigned admin API
    registered = admin(pool, emulator, "POST", "files", {"original_filename": "a.txt", "size": 12})
    admin(
        pool,
        emulator,
        "POST",
        f"files/{registered['uuid']}/faults",
        {"faults": [{"kind": "throttled", "retry_after": 3}]},
    )
    payload = {"source": registered["uuid"], "target": EMULATOR_STORAGE}

    # When the file is copied twice
    statuses = [send(pool, emulator, "POST", "/files/remote_copy/", payload).status for _ in range(2)]

    # Then the fault answered first, and the counters read over the admin API say so
    assert statuses == [429, 201]
    counters = admin(pool, emulator, "GET", "counters")
    assert counters["files"][registered["uuid"]] == {"calls": 2, "copies": 1, "already_exists": 0}
    assert counters["requests"] == {"POST /files/remote_copy/": 2}
    assert [r["status"] for r in admin(pool, emulator, "GET", "requests")] == [429, 201]


def test_the_admin_api_rotates_the_secret_key(emulator: UploadcareEmulator, pool: urllib3.PoolManager) -> None:
    admin(pool, emulator, "POST", "secret-key", {"secret_key": "fresh"})

    old = send(pool, emulator, "GET", "/project/")
    new = send(pool, emulator, "GET", "/project/", headers=signed("GET", "/project/", secret_key="fresh"))

    assert (old.status, new.status) == (401, 200)


def test_the_admin_api_changes_settings_and_flags(emulator: UploadcareEmulator, pool: urllib3.PoolManager) -> None:
    uploaded = emulator.add_file()

    state = admin(pool, emulator, "PUT", "settings", {"copy_delay": 0.05, "already_exists_with_result": True})
    admin(pool, emulator, "PUT", f"files/{uploaded.uuid}/flags", {"wrong_size": True})
    admin(pool, emulator, "PUT", f"files/{uploaded.uuid}/flags", {"infected": True})

    assert state["copy_delay"] == 0.05
    assert state["already_exists_with_result"] is True
    assert emulator.already_exists_with_result is True
    assert emulator.get(uploaded.uuid).wrong_size is True
    scan = emulator.file_info(uploaded.uuid)["appdata"]["uc_clamav_virus_scan"]
    assert scan["data"]["infected"] is True


def test_the_admin_api_builds_webhook_bodies_and_deletes_files(
    emulator: UploadcareEmulator, pool: urllib3.PoolManager
) -> None:
    uploaded = emulator.add_file(original_filename="a.txt")

    body = admin(pool, emulator, "GET", f"files/{uploaded.uuid}/webhook-body?target_url=https://example.com/x")
    deleted = admin(pool, emulator, "DELETE", f"files/{uploaded.uuid}")

    assert body["hook"]["target"] == "https://example.com/x"
    assert body["data"]["uuid"] == uploaded.uuid
    assert deleted["datetime_removed"] is not None
    assert emulator.get(uploaded.uuid).removed


def test_a_purged_file_is_unknown_to_every_route(emulator: UploadcareEmulator, pool: urllib3.PoolManager) -> None:
    uploaded = emulator.add_file(original_filename="a.txt")

    purged = admin(pool, emulator, "DELETE", f"files/{uploaded.uuid}?purge=true")

    answer = send(pool, emulator, "GET", f"/files/{uploaded.uuid}/")
    listing = json.loads(send(pool, emulator, "GET", "/files/?removed=true").data)
    assert purged == {"purged": uploaded.uuid}
    assert answer.status == 404
    assert listing["results"] == []
    assert emulator.get(uploaded.uuid).purged


@pytest.mark.parametrize(
    ("method", "path", "payload", "status"),
    [
        ("POST", "files", {"size": "big"}, 400),
        ("POST", "files", {"colour": "red"}, 400),
        ("POST", f"files/{UNKNOWN_UUID}/faults", {"faults": []}, 404),
        ("GET", "nothing-here", None, 404),
    ],
)
def test_the_admin_api_refuses_what_it_cannot_do(
    emulator: UploadcareEmulator, pool: urllib3.PoolManager, method: str, path: str, payload: Any, status: int
) -> None:
    body = None if payload is None else json.dumps(payload).encode()

    response = pool.request(method, f"{emulator.url}__emulator__/{path}", body=body)

    assert response.status == status
    assert "detail" in response.json()


# --- as a process ------------------------------------------------------------------------------------------------


def test_the_emulator_runs_as_a_process_until_sigterm(aws: str, pool: urllib3.PoolManager) -> None:
    # Given a bucket, and the emulator started as `python -m devkit.emulator` with a storage on it
    bucket = f"emulator-{uuid.uuid4().hex[:16]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "common"), str(ROOT)])}
    command = [sys.executable, "-m", "devkit.emulator", "--public-key", "pk", "--secret-key", "sk"]
    command += ["--storage", f"store={bucket}/in/", "--aws-endpoint", aws]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, cwd=ROOT)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().decode().strip()

        # When a file is registered over the admin API and copied by the client
        registered = pool.request("POST", f"{url}__emulator__/files", body=json.dumps({"size": 7}).encode()).json()
        client = UploadcareClient(Credentials("pk", "sk"), url, pool=pool)
        result = client.remote_copy(registered["uuid"], "store", make_public=False, pattern="${uuid}${ext}")
        pool.clear()
        process.send_signal(signal.SIGTERM)

        # Then the copy landed under the storage's prefix, and SIGTERM ends the process cleanly
        assert url.startswith("http://127.0.0.1:")
        assert result.raw_result == f"s3://{bucket}/in/{registered['uuid']}.bin"
        assert boto3.client("s3").head_object(Bucket=bucket, Key=f"in/{registered['uuid']}.bin")["ContentLength"] == 7
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("source", "parsed"),
    [
        ("03ccf9ab-f266-43fb-973d-a6529c55c2ae", ("03ccf9ab-f266-43fb-973d-a6529c55c2ae", "")),
        ("03ccf9ab-f266-43fb-973d-a6529c55c2ae/", ("03ccf9ab-f266-43fb-973d-a6529c55c2ae", "")),
        (
            "03ccf9ab-f266-43fb-973d-a6529c55c2ae/-/resize/200x/",
            ("03ccf9ab-f266-43fb-973d-a6529c55c2ae", "-/resize/200x/"),
        ),
        ("https://ucarecdn.com/03ccf9ab-f266-43fb-973d-a6529c55c2ae/", ("03ccf9ab-f266-43fb-973d-a6529c55c2ae", "")),
        ("03ccf9ab-f266-43fb-973d-a6529c55c2ae~2", None),
        ("../03ccf9ab-f266-43fb-973d-a6529c55c2ae", None),
    ],
)
def test_sources_as_the_official_clients_send_them(source: str, parsed: tuple[str, str] | None) -> None:
    # pyuploadcare's File.create_remote_copy sends the CDN path `<uuid>/`, not the bare UUID
    assert parse_source(source) == parsed


# --- the Upload API and the deleting REST routes (make e2e's steps) ---------------------------------------------


def upload(pool: urllib3.PoolManager, emulator: UploadcareEmulator, **fields: Any) -> urllib3.BaseHTTPResponse:
    form: dict[str, Any] = {"UPLOADCARE_PUB_KEY": EMULATOR_PUBLIC_KEY, "UPLOADCARE_STORE": "1", **fields}
    form.setdefault("file", ("note.txt", b"twelve bytes", "text/plain"))
    return pool.request("POST", emulator.url + "base/", fields=form)


def test_an_upload_is_a_stored_file_of_its_size_and_type(
    emulator: UploadcareEmulator, pool: urllib3.PoolManager
) -> None:
    answer = upload(pool, emulator)

    uuid_ = json.loads(answer.data)["file"]
    info = emulator.file_info(uuid_)
    assert answer.status == 200
    assert (info["original_filename"], info["size"], info["mime_type"], bool(info["datetime_stored"])) == (
        "note.txt",
        12,
        "text/plain",
        True,
    )


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"UPLOADCARE_PUB_KEY": "someone-else"}, "UPLOADCARE_PUB_KEY is invalid."),
        ({"expire": "9999999999", "signature": "0" * 64}, "Invalid signature."),
        ({"expire": "1000", "signature": "from-1970"}, "Invalid signature."),
    ],
)
def test_an_upload_with_another_key_or_a_bad_signature_is_refused(
    emulator: UploadcareEmulator, pool: urllib3.PoolManager, fields: dict[str, str], error: str
) -> None:
    if fields.get("signature") == "from-1970":  # the right signature, but expired
        fields = {**fields, "signature": hmac.new(EMULATOR_SECRET_KEY.encode(), b"1000", hashlib.sha256).hexdigest()}

    answer = upload(pool, emulator, **fields)

    assert answer.status == 403
    assert json.loads(answer.data) == {"error": error}


def test_a_signed_upload_is_taken(emulator: UploadcareEmulator, pool: urllib3.PoolManager) -> None:
    expire = str(int(time.time()) + 60)
    signature = hmac.new(EMULATOR_SECRET_KEY.encode(), expire.encode(), hashlib.sha256).hexdigest()

    answer = upload(pool, emulator, expire=expire, signature=signature)

    assert answer.status == 200


def test_an_upload_delivers_a_signed_webhook_to_each_active_subscriber(
    emulator: UploadcareEmulator, pool: urllib3.PoolManager
) -> None:
    # Given a listener registered for file.uploaded with a signing secret, and an inactive one
    received: list[tuple[bytes, str]] = []
    done = threading.Event()

    class Listener(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.rfile.read(int(self.headers["Content-Length"])), self.headers["X-Uc-Signature"]))
            self.send_response(204)
            self.end_headers()
            done.set()

        def log_message(self, format: str, *args: Any) -> None:
            return

    with ThreadingHTTPServer(("127.0.0.1", 0), Listener) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        target = f"http://127.0.0.1:{server.server_address[1]}/hook"
        for url, active in ((target, True), (target + "-off", False)):
            payload = {"target_url": url, "event": "file.uploaded", "is_active": active, "signing_secret": "s3cret"}
            assert send(pool, emulator, "POST", "/webhooks/", {**payload, "version": "0.7"}).status == 201

        # When a file is uploaded
        uuid_ = json.loads(upload(pool, emulator).data)["file"]
        assert done.wait(10)
        server.shutdown()

    # Then the active subscriber got the file.uploaded body, signed with its secret; the inactive one nothing
    ((body, signature),) = received
    assert signature == "v1=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert json.loads(body)["data"]["uuid"] == uuid_
    assert json.loads(body)["hook"]["event"] == "file.uploaded"
    assert [(d["target_url"], d["status"]) for d in emulator.deliveries] == [(target, 204)]


def test_delete_file_storage_removes_the_file_and_unsubscribe_deletes_the_urls_webhooks(
    emulator: UploadcareEmulator, pool: urllib3.PoolManager
) -> None:
    file = emulator.add_file(original_filename="gone.jpg", size=3)
    for event in ("file.uploaded", "file.deleted"):
        payload = {"target_url": "https://a.example/hook", "event": event, "signing_secret": "x", "version": "0.7"}
        send(pool, emulator, "POST", "/webhooks/", payload)
    send(pool, emulator, "POST", "/webhooks/", {"target_url": "https://b.example/hook", "event": "file.uploaded"})

    deleted = send(pool, emulator, "DELETE", f"/files/{file.uuid}/storage/")
    unsubscribed = send(pool, emulator, "DELETE", "/webhooks/unsubscribe/", {"target_url": "https://a.example/hook"})
    missing = send(pool, emulator, "DELETE", f"/files/{UNKNOWN_UUID}/storage/")

    assert deleted.status == 200
    assert json.loads(deleted.data)["datetime_removed"]
    assert unsubscribed.status == 204
    assert [hook["target_url"] for hook in emulator.webhooks()] == ["https://b.example/hook"]
    assert missing.status == 404


def test_every_admin_route_the_help_lists_is_served(emulator: UploadcareEmulator, pool: urllib3.PoolManager) -> None:
    file = emulator.add_file(original_filename="admin.jpg", size=3)
    bodies = {
        "/files": {"original_filename": "x.jpg", "size": 1},
        "/files/<uuid>/faults": {"faults": [{"kind": "throttled"}]},
        "/files/<uuid>/flags": {"wrong_size": True},
        "/settings": {"copy_delay": 0},
        "/secret-key": {"secret_key": EMULATOR_SECRET_KEY},
    }
    routes = re.findall(r"^  (GET|POST|PUT|DELETE)\s+/__emulator__(\S*)", ADMIN_ROUTES, re.MULTILINE)
    assert len(routes) >= 10

    for method, path in routes:
        body = bodies.get(path.rstrip("/") or "/")
        url = emulator.url + "__emulator__" + path.replace("<uuid>", file.uuid)
        answer = pool.request(method, url, body=json.dumps(body).encode() if body else None)
        assert answer.status in (200, 201), f"{method} {path}: {answer.status} {answer.data[:200]!r}"
