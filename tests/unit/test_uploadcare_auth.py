"""The signed `Uploadcare` scheme, byte for byte against tests/vectors/rest-auth.json (R1 is Uploadcare's own)."""

from __future__ import annotations

import email.utils
import json
from typing import Any

import pytest
import urllib3

from tests.conftest import load_vector
from uploadcare_s3_copy.uploadcare import ACCEPT, Credentials, UploadcareClient, request_signature, string_to_sign

CASES = load_vector("rest-auth.json")["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"].split(":")[0] for c in CASES])
def test_string_to_sign_and_authorization_match_the_vector(case: dict[str, Any]) -> None:
    body = case["body"].encode()

    text = string_to_sign(case["method"], body, case["content_type"], case["date"], case["uri"])
    sig = request_signature(case["secret_key"], case["method"], body, case["content_type"], case["date"], case["uri"])

    assert text == case["string_to_sign"]
    assert f"Uploadcare {case['public_key']}:{sig}" == case["authorization"]


def test_r1_is_uploadcares_published_value() -> None:
    r1 = CASES[0]
    assert r1["externally_anchored"] is True
    assert r1["authorization"].endswith("3cbc4d2cf91f80c1ba162b926f8a975e8bec7995")


class _RecordingPool:
    """Stands in for urllib3's PoolManager at the process edge and records what would go on the wire."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.calls: list[dict[str, Any]] = []
        self._status = status
        self._body = json.dumps(body).encode()

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        self.calls.append({"method": method, "url": url, **kwargs})
        return urllib3.HTTPResponse(body=self._body, status=self._status, headers={}, preload_content=True)


def _client(pool: _RecordingPool, case: dict[str, Any], api_url: str = "https://api.uploadcare.com/") -> Any:
    date = email.utils.parsedate_to_datetime(case["date"]).timestamp()
    credentials = Credentials(case["public_key"], case["secret_key"])
    return UploadcareClient(credentials, api_url, pool=pool, clock=lambda: date)  # type: ignore[arg-type]


def test_remote_copy_sends_exactly_the_signed_bytes_of_r3() -> None:
    # Given the R3 vector's keys and date
    r3 = next(c for c in CASES if c["name"].startswith("R3"))
    pool = _RecordingPool(201, {"type": "url", "result": "s3://b/k"})

    # When the client makes the same remote copy
    _client(pool, r3).remote_copy(
        "03ccf9ab-f266-43fb-973d-a6529c55c2ae", "mytarget", make_public=False, pattern="${uuid}/${filename}${ext}"
    )

    # Then the body on the wire, the URL and the Authorization header are the vector's, byte for byte
    call = pool.calls[0]
    assert call["method"] == "POST"
    assert call["url"] == "https://api.uploadcare.com/files/remote_copy/"
    assert call["body"] == r3["body"].encode()
    headers = call["headers"]
    assert headers["Authorization"] == r3["authorization"]
    assert headers["Date"] == r3["date"]
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept"] == ACCEPT
    assert headers["User-Agent"].startswith("UploadcareS3Copy/")
    assert "/testpk " in headers["User-Agent"]
    assert "demoprivatekey" not in json.dumps(headers)


def test_get_requests_sign_json_content_type_and_empty_body_md5() -> None:
    r4 = next(c for c in CASES if c["name"].startswith("R4"))
    pool = _RecordingPool(200, {"uuid": "03ccf9ab-f266-43fb-973d-a6529c55c2ae"})

    _client(pool, r4).get_file("03ccf9ab-f266-43fb-973d-a6529c55c2ae")

    call = pool.calls[0]
    assert call["method"] == "GET"
    assert call["body"] is None
    assert call["headers"]["Authorization"] == r4["authorization"]


def test_r1_list_files_query_is_part_of_the_signed_uri() -> None:
    r1 = CASES[0]
    pool = _RecordingPool(200, {"results": [], "next": None})

    _client(pool, r1).list_files_page("/files/?limit=1&stored=true")

    assert pool.calls[0]["url"] == "https://api.uploadcare.com/files/?limit=1&stored=true"
    assert pool.calls[0]["headers"]["Authorization"] == r1["authorization"]


def test_an_api_root_with_a_path_signs_the_full_path() -> None:
    r1 = CASES[0]
    pool = _RecordingPool(200, {"results": [], "next": None})

    _client(pool, r1, "http://127.0.0.1:9999/proxy/").list_files_page("/files/?limit=1&stored=true")

    url = pool.calls[0]["url"]
    assert url == "http://127.0.0.1:9999/proxy/files/?limit=1&stored=true"
    expected = request_signature(
        r1["secret_key"], "GET", b"", "application/json", r1["date"], "/proxy/files/?limit=1&stored=true"
    )
    assert pool.calls[0]["headers"]["Authorization"] == f"Uploadcare testpk:{expected}"


def test_credentials_repr_hides_the_secret_key() -> None:
    assert "demoprivatekey" not in repr(Credentials("testpk", "demoprivatekey"))
