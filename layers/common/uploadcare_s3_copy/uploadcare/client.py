"""The Uploadcare REST API v0.7 client the functions use, on urllib3 and one pooled connection manager.

`request()` signs and sends any call (docs/uploadcare-protocol.md); the methods here are the calls a Lambda function
makes: `remote_copy`, `get_file` and the `GET /files/` listing (which the scheduled reconciler also needs). Calls only
an operator makes (webhooks, project) are built on `request()` in the ops CLI, not here.
"""

from __future__ import annotations

import email.utils
import json
import platform
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit

import urllib3

from uploadcare_s3_copy import __version__
from uploadcare_s3_copy.reasons import PermanentFailure, Reason, TransientFailure
from uploadcare_s3_copy.s3location import S3Location
from uploadcare_s3_copy.uploadcare.auth import ACCEPT, CONTENT_TYPE, Credentials, request_signature
from uploadcare_s3_copy.uploadcare.errors import classify_error

DEFAULT_TIMEOUT = urllib3.Timeout(connect=5.0, read=30.0)
USER_AGENT_NAME = "UploadcareS3Copy"

Timeout = urllib3.Timeout | float


class CopyStatus(StrEnum):
    COPIED = "copied"  # 201: Uploadcare made the copy
    ALREADY_EXISTS = "already_exists"  # 200: an object with that name already exists at the destination


@dataclass(frozen=True)
class RemoteCopyResult:
    status: CopyStatus
    location: S3Location | None  # None when Uploadcare sent no (or no parsable) `result`
    raw_result: str | None
    request_id: str | None


@dataclass(frozen=True)
class FilesPage:
    files: list[dict[str, Any]]
    next_url: str | None  # the `next` URL as Uploadcare sent it: the resume cursor for a backfill


def files_cursor(
    *, from_datetime: str | None = None, stored: bool | None = None, limit: int = 100, removed: bool = False
) -> str:
    """The first page of `GET /files/` in upload order, not removed files only (removed ones only with
    `removed=True`): a cursor for `list_files_page`."""
    query = [f"limit={limit}", "ordering=datetime_uploaded", f"removed={'true' if removed else 'false'}"]
    if stored is not None:
        query.append(f"stored={'true' if stored else 'false'}")
    if from_datetime:
        query.append(f"from={quote(from_datetime, safe='')}")  # a `+00:00` offset must not arrive as a space
    return "/files/?" + "&".join(query)


def new_pool() -> urllib3.PoolManager:
    """A pooled connection manager for Uploadcare: the functions build one in their wiring, at cold start."""
    return urllib3.PoolManager(num_pools=4, maxsize=50, retries=False)


_pool: urllib3.PoolManager | None = None
_pool_lock = threading.Lock()


def shared_pool() -> urllib3.PoolManager:
    """One pooled connection manager per process for clients built without one (the ops CLI)."""
    global _pool  # noqa: PLW0603 - a process-wide pool is the point
    with _pool_lock:  # threads sharing it must not each build one
        if _pool is None:
            _pool = new_pool()
        return _pool


@dataclass(frozen=True)
class ApiResponse:
    """A 2xx answer: status, parsed JSON (None when empty or not JSON), `detail` and headers."""

    status: int
    data: Any
    detail: str
    headers: Mapping[str, str]


class UploadcareClient:
    def __init__(
        self,
        credentials: Credentials,
        api_url: str = "https://api.uploadcare.com/",
        *,
        pool: urllib3.PoolManager | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(api_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._base_path = parts.path.rstrip("/")
        self._credentials = credentials
        self._pool = pool or shared_pool()
        self._clock = clock
        self._user_agent = (
            f"{USER_AGENT_NAME}/{__version__}/{credentials.public_key} "
            f"({platform.python_implementation()}/{platform.python_version()})"
        )

    @property
    def public_key(self) -> str:
        return self._credentials.public_key

    def signed_headers(self, method: str, uri: str, body: bytes) -> dict[str, str]:
        date = email.utils.formatdate(self._clock(), usegmt=True)
        sig = request_signature(self._credentials.secret_key, method, body, CONTENT_TYPE, date, uri)
        return {
            "Accept": ACCEPT,
            "Content-Type": CONTENT_TYPE,
            "Date": date,
            "Authorization": f"Uploadcare {self._credentials.public_key}:{sig}",
            "User-Agent": self._user_agent,
        }

    def request(self, method: str, path: str, payload: Any = None, timeout: Timeout = DEFAULT_TIMEOUT) -> ApiResponse:
        """`path` is the API path with its query (`/files/?limit=1`); the signed URI includes any base path."""
        uri = self._base_path + path
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        headers = self.signed_headers(method, uri, body)
        try:
            response = self._pool.request(
                method, self._origin + uri, body=body or None, headers=headers, timeout=timeout, redirect=False
            )
        except urllib3.exceptions.NewConnectionError as error:  # a subclass of TimeoutError: refused, unreachable
            raise TransientFailure(Reason.CONNECTION, f"{method} {path}: {type(error).__name__}") from error
        except urllib3.exceptions.TimeoutError as error:
            raise TransientFailure(Reason.TIMEOUT, f"{method} {path}: {type(error).__name__}") from error
        except urllib3.exceptions.HTTPError as error:
            raise TransientFailure(Reason.CONNECTION, f"{method} {path}: {type(error).__name__}") from error
        request_id = response.headers.get("X-Uploadcare-Request-Id")
        text = response.data.decode("utf-8", errors="replace")
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        detail = data.get("detail", "") if isinstance(data, dict) else ""
        if not isinstance(detail, str):
            detail = json.dumps(detail)
        if not detail and response.status >= 300:
            detail = text[:200] or f"HTTP {response.status}"
        answer = ApiResponse(response.status, data, detail, response.headers)
        if not 200 <= response.status < 300:
            raise classify_error(response.status, detail, response.headers.get("Retry-After"), request_id)
        return answer

    def remote_copy(
        self, source: str, target: str, *, make_public: bool, pattern: str | None, timeout: Timeout = DEFAULT_TIMEOUT
    ) -> RemoteCopyResult:
        """`POST /files/remote_copy/`. `make_public` is always sent, and `pattern` unless it is None: Uploadcare's
        own defaults (public, the storage's pattern) would make the copy public and its key unpredictable, so only
        a copy spec that asks for the storage's own pattern (`"pattern": null`) leaves it out."""
        payload: dict[str, Any] = {"source": source, "target": target, "make_public": make_public}
        if pattern is not None:
            payload["pattern"] = pattern
        answer = self.request("POST", "/files/remote_copy/", payload, timeout)
        if answer.status not in (200, 201):
            raise PermanentFailure(
                Reason.BAD_REQUEST, f"unexpected HTTP {answer.status} from remote_copy", status=answer.status
            )
        raw = answer.data.get("result") if isinstance(answer.data, dict) else None
        location: S3Location | None = None
        if isinstance(raw, str):
            try:
                location = S3Location.parse(raw)
            except ValueError:
                location = None
        return RemoteCopyResult(
            status=CopyStatus.COPIED if answer.status == 201 else CopyStatus.ALREADY_EXISTS,
            location=location,
            raw_result=raw if isinstance(raw, str) else None,
            request_id=answer.headers.get("X-Uploadcare-Request-Id"),
        )

    def get_file(self, uuid: str, timeout: Timeout = DEFAULT_TIMEOUT) -> dict[str, Any]:
        return self.json_object(self.request("GET", f"/files/{uuid}/", timeout=timeout))

    def list_files_page(self, cursor: str, timeout: Timeout = DEFAULT_TIMEOUT) -> FilesPage:
        """One page of `GET /files/`; `cursor` is a path with query or a `next` URL from an earlier page."""
        parts = urlsplit(cursor)
        path = parts.path
        if parts.netloc and self._base_path and path.startswith(self._base_path):
            path = path[len(self._base_path) :]
        data = self.json_object(self.request("GET", path + (f"?{parts.query}" if parts.query else ""), timeout=timeout))
        files = data.get("results")
        if not isinstance(files, list):
            raise TransientFailure(Reason.SERVER_ERROR, "GET /files/ answered without a `results` list")
        next_url = data.get("next")
        return FilesPage(files=files, next_url=next_url if isinstance(next_url, str) and next_url else None)

    def iter_file_pages(
        self,
        *,
        from_datetime: str | None = None,
        stored: bool | None = None,
        limit: int = 100,
        timeout: Timeout = DEFAULT_TIMEOUT,
    ) -> Iterator[FilesPage]:
        """Pages of `GET /files/` in upload order, following `next` until the last page."""
        cursor: str | None = files_cursor(from_datetime=from_datetime, stored=stored, limit=limit)
        while cursor:
            page = self.list_files_page(cursor, timeout)
            yield page
            cursor = page.next_url

    @staticmethod
    def json_object(answer: ApiResponse) -> dict[str, Any]:
        if not isinstance(answer.data, dict):
            raise TransientFailure(Reason.SERVER_ERROR, f"expected a JSON object, got HTTP {answer.status}")
        return answer.data
