"""A local Uploadcare REST API v0.7 emulator for the tests, the demo and the benchmarks. Never deployed.

It serves the endpoints this project uses (`POST /files/remote_copy/`, `GET /files/`, `GET /files/<uuid>/`,
`GET /project/`, `GET`/`POST /webhooks/`) over real HTTP and checks requests as strictly as Uploadcare documents
them (REST API reference, "Authentication" and the endpoint pages; summed up in docs/uploadcare-protocol.md):

* a route that does not exist, including a path without its trailing slash: 404 `{"detail": "Not found."}`;
* `Accept` other than `application/vnd.uploadcare-v0.7+json`: 406, the one answer sent as `application/json`;
* `Authorization: Uploadcare <public_key>:<signature>`, signature checked with the project's own
  `uploadcare_s3_copy.uploadcare.auth.request_signature`, and a `Date` (RFC 2822) at most 15 minutes off the
  emulator's clock, else 401; `Uploadcare.Simple` over plain HTTP: 400, as Uploadcare answers it.

A remote copy writes the file's deterministic bytes (`content(uuid)`) into the storage's bucket with boto3, so the
copy can be verified with `head_object` against the same moto server. Faults can be scripted per file, and
counters and a request log say what the client did.

Two ways to use it:

* in-process: `with UploadcareEmulator(storages=[Storage("mytarget", "bucket")]) as emulator: ...`;
* as a process (`PYTHONPATH=layers/common:.`):
  `python -m devkit.emulator --port 8765 --storage mytarget=bucket/prefix/ --aws-endpoint http://localhost:5000`
  prints its URL on the first line of stdout and serves until SIGTERM or SIGINT. It is then driven through the
  unsigned admin API under `/__emulator__/` (see `_admin`).

Choices where Uploadcare's behaviour is undocumented (docs/uploadcare-protocol.md marks them open): `${effects}`
renders as the operations exactly as written in the CDN URL (`-/resize/200x/`); a webhook created without
`version` is stored with version `""` (such requests have been treated as older versions); `previous` links of
`GET /files/` are always null.
"""

from __future__ import annotations

import argparse
import contextlib
import email.utils
import hashlib
import hmac
import json
import mimetypes
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid as uuidlib
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Literal, Self, cast
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from uploadcare_s3_copy.copier.patterns import PatternError, expand_pattern, validate_pattern
from uploadcare_s3_copy.copy_request import UUID_PATTERN
from uploadcare_s3_copy.uploadcare import ACCEPT, request_signature

API_CONTENT_TYPE = ACCEPT  # answers are sent with the same media type the client asks for
ADMIN_PREFIX = "/__emulator__/"
MAX_COPY_BYTES = 5 * 1024**3  # "File size MUST NOT exceed 5 GB." (remote_copy endpoint page)
MAX_CONTENT_BYTES = 64 * 1024**2  # bytes the emulator is willing to generate for one file
MAX_CLOCK_SKEW_SECONDS = 15 * 60  # "The date you provide MUST NOT exceed the 15-minute offset" (Authentication)
MAX_BODY_BYTES = 1024**2
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
PROJECT_ID = 4242
DEMO_PUBLIC_KEY = "demopublickey"
DEMO_SECRET_KEY = "demosecretkey"  # noqa: S105 - the emulator's made-up default, guarding nothing
WEBHOOK_EVENTS = ("file.uploaded", "file.infected", "file.stored", "file.deleted", "file.info_updated")

# `detail` texts as Uploadcare writes them (the REST API reference and docs/uploadcare-protocol.md).
NOT_FOUND = "Not found."
BAD_ACCEPT = "Incorrect Accept header provided. Make sure to specify API version. Refer to REST API docs for details."
BAD_CREDENTIALS = "Incorrect authentication credentials."
BAD_SIGNATURE = "Invalid signature. Please check your Secret key."
SIMPLE_AUTH_OVER_HTTP = "Simple authentication over HTTP is forbidden. Please, use HTTPS or signed requests instead."
SOURCE_REQUIRED = "`source` parameter is required."
BAD_SOURCE = "Bad `source` parameter. Use UUID or CDN URL."
NO_STORAGE = "Project has no storage with provided name."
NOT_READY = "File is not ready yet."
TOO_LARGE = "Copying of large files is not supported at the moment."

_ROUTES = (
    (re.compile(r"^/files/$"), "files"),
    (re.compile(r"^/files/remote_copy/$"), "remote_copy"),
    (re.compile(r"^/files/(?P<uuid>[^/]+)/$"), "file"),
    (re.compile(r"^/project/$"), "project"),
    (re.compile(r"^/webhooks/$"), "webhooks"),
)
_CDN_SOURCE = re.compile(
    r"^https?://[^/?#]+/(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:/(?P<rest>[^?#]*))?$"
)
_NGINX_PAGES = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}


# ---------------------------------------------------------------------------------------------------------------
# What the emulator holds


@dataclass(frozen=True)
class Storage:
    """A custom storage of the project: the `target` name, its bucket, key prefix and default pattern."""

    name: str
    bucket: str
    prefix: str = ""
    pattern: str = "${default}"

    @classmethod
    def parse(cls, spec: str) -> Storage:
        """`NAME=BUCKET[/PREFIX]`; the prefix is kept as written (a folder prefix ends in `/`)."""
        name, sep, location = spec.partition("=")
        bucket, _, prefix = location.partition("/")
        if not sep or not name or not bucket:
            raise ValueError(f"storage {spec!r} is not NAME=BUCKET[/PREFIX]")
        return cls(name=name, bucket=bucket, prefix=prefix)


@dataclass(frozen=True)
class EmulatedFile:
    uuid: str
    original_filename: str
    size: int
    mime_type: str
    stored: bool
    datetime_uploaded: datetime
    source_file_uuid: str | None = None  # set for a file made from another one (a derived file)
    wrong_size: bool = False  # a copy writes size + 1 bytes and still answers 201
    datetime_removed: datetime | None = None

    @property
    def removed(self) -> bool:
        return self.datetime_removed is not None


FaultKind = Literal["throttled", "server_error", "not_ready", "slow"]


@dataclass(frozen=True)
class Fault:
    """One scripted answer to one `remote_copy` of a file; build them with the class methods."""

    kind: FaultKind
    retry_after: int = 10
    status: int = 500
    seconds: float = 0.0

    @classmethod
    def throttled(cls, retry_after: int = 10) -> Fault:
        """429 with `Retry-After: <retry_after>`."""
        return cls("throttled", retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        """A 5xx: JSON for 500, nginx's own HTML page for 502, 503 and 504 (as a gateway in front would send)."""
        if not 500 <= status <= 599:
            raise ValueError(f"a server error is a 5xx status, not {status}")
        return cls("server_error", status=status)

    @classmethod
    def not_ready(cls) -> Fault:
        """400 `File is not ready yet.`"""
        return cls("not_ready")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Wait `seconds`, then copy as usual (a client with a shorter read timeout sees a timeout)."""
        return cls("slow", seconds=seconds)

    def to_json(self) -> dict[str, Any]:
        extras: dict[str, dict[str, Any]] = {
            "throttled": {"retry_after": self.retry_after},
            "server_error": {"status": self.status},
            "slow": {"seconds": self.seconds},
        }
        return {"kind": self.kind, **extras.get(self.kind, {})}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        kind = data.get("kind")
        if kind == "throttled":
            return cls.throttled(int(data.get("retry_after", 10)))
        if kind == "server_error":
            return cls.server_error(int(data.get("status", 500)))
        if kind == "not_ready":
            return cls.not_ready()
        if kind == "slow":
            return cls.slow(float(data["seconds"]))
        raise ValueError(f"unknown fault kind {kind!r} (throttled, server_error, not_ready, slow)")


@dataclass
class CopyStats:
    calls: int = 0  # remote_copy requests that named this file (after validation), faulted ones included
    copies: int = 0  # 201 answers: objects written
    already_exists: int = 0  # 200 answers


@dataclass(frozen=True)
class RequestRecord:
    method: str
    uri: str  # path and query as sent
    status: int
    request_id: str


@dataclass(frozen=True)
class _Request:
    method: str
    uri: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    api_root: str  # `http://<Host>/`: absolute URLs in answers point back the way the client came


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = API_CONTENT_TYPE
    headers: tuple[tuple[str, str], ...] = ()


def _json_reply(status: int, data: Any, *, content_type: str = API_CONTENT_TYPE, **headers: str) -> _Reply:
    body = json.dumps(data, ensure_ascii=False).encode()
    return _Reply(status, body, content_type, tuple((k.replace("_", "-"), v) for k, v in headers.items()))


def _error(status: int, detail: str, **headers: str) -> _Reply:
    return _json_reply(status, {"detail": detail}, **headers)


def _iso(moment: datetime) -> str:
    """Uploadcare's timestamps: UTC with microseconds and a `Z` (`2022-10-05T15:38:08.075064Z`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_datetime(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    return None


@dataclass(frozen=True)
class _CopyArguments:
    uuid: str
    effects: str
    storage: Storage
    make_public: bool
    pattern: str


def _webhook_problems(data: Mapping[str, Any]) -> Iterator[str]:
    """What is wrong with a `POST /webhooks/` body, first problem first."""
    target_url = data.get("target_url")
    if not target_url:
        yield "`target_url` is missing."
    elif not isinstance(target_url, str) or not target_url.startswith(("http://", "https://")):
        yield "`target_url` is not a valid URL."
    elif len(target_url) > 255:
        yield "`target_url` must be at most 255 characters."
    if data.get("event") not in WEBHOOK_EVENTS:
        yield f"`event` must be one of: {', '.join(WEBHOOK_EVENTS)}."
    if _boolean(data.get("is_active", True)) is None:
        yield "`is_active` must be either true or false."
    signing_secret = data.get("signing_secret") or ""
    if not isinstance(signing_secret, str) or len(signing_secret) > 32:
        yield "`signing_secret` must be a string of at most 32 characters."
    if data.get("version", "") not in ("", "0.7"):
        yield "`version` must be 0.7."


def file_content(uuid: str, size: int) -> bytes:
    """Deterministic bytes for a file: the first `size` bytes of SHAKE-256 over its UUID."""
    return hashlib.shake_256(uuid.encode()).digest(size) if size else b""


def parse_source(source: str) -> tuple[str, str] | None:
    """(uuid, effects) of a `remote_copy` `source`: a bare UUID, a CDN path (`<uuid>/`, `<uuid>/-/resize/200x/` —
    what pyuploadcare's `File.create_remote_copy` sends), or a CDN URL, maybe with operations."""
    if UUID_PATTERN.match(source):
        return source, ""
    found = _CDN_SOURCE.match(source if "://" in source else f"https://ucarecdn.com/{source}")
    if not found:
        return None
    rest = found.group("rest") or ""
    effects = rest[: rest.rfind("/") + 1]  # what follows the last `/` is a file name
    if effects and not effects.startswith("-/"):
        return None
    return found.group("uuid"), effects


# ---------------------------------------------------------------------------------------------------------------
# The emulator


class UploadcareEmulator:
    """An Uploadcare project on loopback: one key pair, custom storages backed by S3 (moto), files, webhooks."""

    def __init__(
        self,
        *,
        public_key: str = DEMO_PUBLIC_KEY,
        secret_key: str = DEMO_SECRET_KEY,
        storages: Iterable[Storage] = (),
        aws_endpoint: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        already_exists_with_result: bool = False,
        copy_delay: float = 0.0,
        project_name: str = "emulator",
        cdn_base: str = "https://ucarecdn.com/",
        clock: Callable[[], float] = time.time,
        verbose: bool = False,
    ) -> None:
        self.public_key = public_key
        self._secret_key = secret_key
        self._storages = {storage.name: storage for storage in storages}
        self._host = host
        self._port = port
        self.project_name = project_name
        self.cdn_base = cdn_base if cdn_base.endswith("/") else cdn_base + "/"
        self.clock = clock
        self.verbose = verbose
        self._already_exists_with_result = already_exists_with_result
        self._copy_delay = copy_delay
        endpoint = aws_endpoint or os.environ.get("AWS_ENDPOINT_URL")
        if not endpoint:
            raise ValueError(
                "no S3 endpoint (aws_endpoint or AWS_ENDPOINT_URL): the emulator writes only to a local one"
            )
        self._s3: Any = boto3.client("s3", endpoint_url=endpoint)
        self._lock = threading.Lock()
        self._files: dict[str, EmulatedFile] = {}
        self._faults: dict[str, deque[Fault]] = {}
        self._stats: dict[str, CopyStats] = {}
        self._request_counts: Counter[str] = Counter()
        self._requests: deque[RequestRecord] = deque(maxlen=10_000)
        self._webhooks: list[dict[str, Any]] = []
        self._last_uploaded: datetime | None = None
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._stopping.clear()
        self._server = _Server((self._host, self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="uploadcare-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving, wakes slow answers (they end without answering) and closes open connections."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The API root, `http://<host>:<port>/`, to give the client as its `api_url`."""
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        host, port = self._server.server_address[:2]
        host = str(host)
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        return f"http://{host}:{port}/"

    # -- configuration ------------------------------------------------------------------------------------------

    @property
    def storages(self) -> dict[str, Storage]:
        return dict(self._storages)

    def add_storage(self, storage: Storage) -> None:
        with self._lock:
            self._storages[storage.name] = storage

    @property
    def already_exists_with_result(self) -> bool:
        """Whether a 200 "already exists" answer carries `result` (the docs allow both readings)."""
        return self._already_exists_with_result

    @already_exists_with_result.setter
    def already_exists_with_result(self, value: bool) -> None:
        self._already_exists_with_result = value

    @property
    def copy_delay(self) -> float:
        """Seconds every remote copy takes before it answers (a realistic per-file latency for benchmarks)."""
        return self._copy_delay

    @copy_delay.setter
    def copy_delay(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("copy_delay cannot be negative")
        self._copy_delay = seconds

    @property
    def secret_key(self) -> str:
        """The project's current secret key (playing Uploadcare, the emulator knows it)."""
        with self._lock:
            return self._secret_key

    def rotate_secret_key(self, new_secret_key: str) -> None:
        """Switches to a new secret key at once: requests signed with the old one get 401, as on Uploadcare."""
        if not new_secret_key:
            raise ValueError("the secret key cannot be empty")
        with self._lock:
            self._secret_key = new_secret_key

    # -- files --------------------------------------------------------------------------------------------------

    def add_file(
        self,
        *,
        uuid: str | None = None,
        original_filename: str = "file.bin",
        size: int = 1024,
        mime_type: str | None = None,
        stored: bool = True,
        datetime_uploaded: datetime | None = None,
        source_file_uuid: str | None = None,
        wrong_size: bool = False,
    ) -> EmulatedFile:
        """Registers an uploaded file. `datetime_uploaded` defaults to now, strictly after the previous file's."""
        uuid = uuid or str(uuidlib.uuid4())
        for name, value in (("uuid", uuid), ("source_file_uuid", source_file_uuid)):
            if value is not None and not UUID_PATTERN.match(value):
                raise ValueError(f"{name} {value!r} is not a lowercase canonical UUID")
        if isinstance(size, bool) or size < 0:
            raise ValueError(f"size must be a non-negative integer, not {size!r}")
        if MAX_CONTENT_BYTES < size <= MAX_COPY_BYTES:
            raise ValueError(
                f"size {size} is over the emulator's {MAX_CONTENT_BYTES} bytes; only files over 5 GB "
                "(refused by remote_copy, never written) may be larger"
            )
        if datetime_uploaded is not None and datetime_uploaded.tzinfo is None:
            raise ValueError("datetime_uploaded must be timezone-aware")
        with self._lock:
            if uuid in self._files:
                raise ValueError(f"file {uuid} is already registered")
            if datetime_uploaded is None:
                datetime_uploaded = datetime.fromtimestamp(self.clock(), UTC)
                if self._last_uploaded is not None and datetime_uploaded <= self._last_uploaded:
                    datetime_uploaded = self._last_uploaded + timedelta(milliseconds=1)
            if self._last_uploaded is None or datetime_uploaded > self._last_uploaded:
                self._last_uploaded = datetime_uploaded
            emulated = EmulatedFile(
                uuid=uuid,
                original_filename=original_filename,
                size=size,
                mime_type=mime_type or mimetypes.guess_type(original_filename)[0] or "application/octet-stream",
                stored=stored,
                datetime_uploaded=datetime_uploaded,
                source_file_uuid=source_file_uuid,
                wrong_size=wrong_size,
            )
            self._files[uuid] = emulated
            self._faults[uuid] = deque()
            self._stats[uuid] = CopyStats()
        return emulated

    def get(self, uuid: str) -> EmulatedFile:
        with self._lock:
            return self._file(uuid)

    def remove_file(self, uuid: str) -> None:
        """Marks a file deleted: `remote_copy` answers 404, listings leave it out unless `removed=true`."""
        with self._lock:
            emulated = self._file(uuid)
            self._files[uuid] = replace(emulated, datetime_removed=datetime.fromtimestamp(self.clock(), UTC))

    def set_wrong_size(self, uuid: str, wrong_size: bool = True) -> None:
        with self._lock:
            self._files[uuid] = replace(self._file(uuid), wrong_size=wrong_size)

    def content(self, uuid: str) -> bytes:
        """The bytes a correct copy of the file holds."""
        emulated = self.get(uuid)
        if emulated.size > MAX_CONTENT_BYTES:
            raise ValueError(f"file {uuid} is a size-only file of {emulated.size} bytes")
        return file_content(uuid, emulated.size)

    def file_info(self, uuid: str, api_root: str | None = None) -> dict[str, Any]:
        """The file object of `GET /files/<uuid>/` (REST API v0.7 `file` schema)."""
        return self._file_info(self.get(uuid), api_root or self.url)

    def script(self, uuid: str, *faults: Fault) -> None:
        """Queues faults for the next `remote_copy` calls of this file, one per call, in order."""
        with self._lock:
            self._file(uuid)
            self._faults[uuid].extend(faults)

    def pending_faults(self, uuid: str) -> list[Fault]:
        with self._lock:
            self._file(uuid)
            return list(self._faults[uuid])

    # -- counters -----------------------------------------------------------------------------------------------

    def copy_calls(self, uuid: str) -> int:
        """`remote_copy` requests that named this file (faulted and 200 answers included)."""
        return self.copy_stats(uuid).calls

    def copies(self, uuid: str) -> int:
        """Objects written for this file (201 answers)."""
        return self.copy_stats(uuid).copies

    def copy_stats(self, uuid: str) -> CopyStats:
        with self._lock:
            self._file(uuid)
            return replace(self._stats[uuid])

    def request_count(self, method: str, path: str) -> int:
        with self._lock:
            return self._request_counts[f"{method} {path}"]

    def request_counts(self) -> dict[str, int]:
        """API requests by `"<METHOD> <path>"` (path without query), whatever their answer."""
        with self._lock:
            return dict(self._request_counts)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def webhooks(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(hook) for hook in self._webhooks]

    # -- webhook bodies -----------------------------------------------------------------------------------------

    def file_uploaded_body(
        self, uuid: str, *, target_url: str = "https://example.com/uploadcare", event: str = "file.uploaded"
    ) -> dict[str, Any]:
        """A webhook delivery body (v0.7: `initiator`, `hook`, `data`, `file`) for a registered file.

        `hook` is the registered webhook with this target and event when there is one, else a made-up one.
        """
        emulated = self.get(uuid)
        with self._lock:
            hook = next((h for h in self._webhooks if h["target_url"] == target_url and h["event"] == event), None)
        now = _iso(datetime.fromtimestamp(self.clock(), UTC))
        detail: dict[str, Any] = {"request_id": str(uuidlib.uuid4()), "addon_name": None}
        if emulated.source_file_uuid:
            detail["source_file_uuid"] = emulated.source_file_uuid
        data = self._file_info(emulated, self._url_or_default())
        return {
            "initiator": {"type": "api", "detail": detail},
            "hook": {
                "id": hook["id"] if hook else 1,
                "project_id": PROJECT_ID,
                "project_pub_key": self.public_key,
                "event": event,
                "target": target_url,
                "is_active": hook["is_active"] if hook else True,
                "version": "0.7",
                "created_at": hook["created"] if hook else now,
                "updated_at": hook["updated"] if hook else now,
            },
            "data": data,
            "file": data["original_file_url"],
        }

    # -- internals shared by the Python and HTTP faces ----------------------------------------------------------

    def _url_or_default(self) -> str:
        return self.url if self._server is not None else f"http://{self._host}:{self._port}/"

    def _file(self, uuid: str) -> EmulatedFile:
        """Caller holds the lock."""
        try:
            return self._files[uuid]
        except KeyError:
            raise KeyError(f"no file {uuid} is registered") from None

    def _file_info(self, emulated: EmulatedFile, api_root: str) -> dict[str, Any]:
        kind, _, subtype = emulated.mime_type.partition("/")
        cdn_url = f"{self.cdn_base}{emulated.uuid}/{quote(emulated.original_filename)}"
        return {
            "uuid": emulated.uuid,
            "size": emulated.size,
            "original_filename": emulated.original_filename,
            "mime_type": emulated.mime_type,
            "is_ready": True,
            "is_image": kind == "image",
            "datetime_uploaded": _iso(emulated.datetime_uploaded),
            "datetime_stored": _iso(emulated.datetime_uploaded) if emulated.stored else None,
            "datetime_removed": _iso(emulated.datetime_removed) if emulated.datetime_removed else None,
            "original_file_url": None if emulated.removed else cdn_url,
            "url": f"{api_root}files/{emulated.uuid}/",
            "content_info": {"mime": {"mime": emulated.mime_type, "type": kind, "subtype": subtype}},
            "metadata": {},
            "appdata": {},
            "variations": None,
        }

    def _date_is_fresh(self, date: str) -> bool:
        try:
            sent = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            return False
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=UTC)
        return abs(sent.timestamp() - self.clock()) <= MAX_CLOCK_SKEW_SECONDS

    def _authenticate(self, request: _Request) -> _Reply | None:
        scheme, _, param = request.headers.get("authorization", "").strip().partition(" ")
        if scheme == "Uploadcare.Simple":
            return _error(400, SIMPLE_AUTH_OVER_HTTP)
        public_key, colon, sent_signature = param.strip().partition(":")
        if scheme != "Uploadcare" or not colon or not public_key or not sent_signature:
            return _error(401, BAD_CREDENTIALS)
        if public_key != self.public_key:
            return _error(401, f"Public key {public_key} not found.")
        date = request.headers.get("date", "")
        if not self._date_is_fresh(date):
            return _error(401, BAD_CREDENTIALS)
        with self._lock:
            secret_key = self._secret_key
        content_type = request.headers.get("content-type", "")
        expected = request_signature(secret_key, request.method, request.body, content_type, date, request.uri)
        if not hmac.compare_digest(expected.encode(), sent_signature.encode("utf-8", "replace")):
            return _error(401, BAD_SIGNATURE)
        return None

    @staticmethod
    def _accepts_v07(accept: str) -> bool:
        return any(part.split(";")[0].strip() == ACCEPT for part in accept.split(","))

    def handle(self, request: _Request) -> _Reply | None:
        """One HTTP request; None means "close without answering" (the emulator is stopping)."""
        if request.path.startswith(ADMIN_PREFIX):
            return self._admin(request)
        reply = self._api(request)
        if reply is not None:
            request_id = dict(reply.headers).get("X-Uploadcare-Request-Id", "")
            with self._lock:
                self._request_counts[f"{request.method} {request.path}"] += 1
                self._requests.append(RequestRecord(request.method, request.uri, reply.status, request_id))
        return reply

    def _api(self, request: _Request) -> _Reply | None:
        request_id = str(uuidlib.uuid4())
        reply = self._api_answer(request)
        if reply is None:
            return None
        return replace(reply, headers=(*reply.headers, ("X-Uploadcare-Request-Id", request_id)))

    def _api_answer(self, request: _Request) -> _Reply | None:
        # The order of Django REST framework, which Uploadcare's API shows signs of: URL resolution, content
        # negotiation (406), authentication (401), then the method (405) and the view.
        route: str | None = None
        params: dict[str, str] = {}
        for pattern, name in _ROUTES:
            found = pattern.match(request.path)
            if found:
                route, params = name, found.groupdict()
                break
        if route is None:
            return _error(404, NOT_FOUND)
        if not self._accepts_v07(request.headers.get("accept", "")):
            return _json_reply(406, {"detail": BAD_ACCEPT}, content_type="application/json")
        refused = self._authenticate(request)
        if refused is not None:
            return refused
        views: dict[tuple[str, str], Callable[[_Request, dict[str, str]], _Reply | None]] = {
            ("files", "GET"): self._list_files,
            ("remote_copy", "POST"): self._remote_copy,
            ("file", "GET"): self._get_file,
            ("project", "GET"): self._get_project,
            ("webhooks", "GET"): self._list_webhooks,
            ("webhooks", "POST"): self._create_webhook,
        }
        view = views.get((route, request.method))
        if view is None:
            return _error(405, f'Method "{request.method}" not allowed.')
        return view(request, params)

    @staticmethod
    def _form(request: _Request) -> tuple[dict[str, Any], _Reply | None]:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not request.body:
            return {}, None
        if content_type == "application/json":
            try:
                data = json.loads(request.body)
            except ValueError as error:
                return {}, _error(400, f"JSON parse error - {error}")
            if not isinstance(data, dict):
                return {}, _error(400, f"Invalid data. Expected a dictionary, but got {type(data).__name__}.")
            return data, None
        if content_type == "application/x-www-form-urlencoded":
            form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
            return {name: values[-1] for name, values in form.items()}, None
        return {}, _error(415, f'Unsupported media type "{content_type}" in request.')

    # -- API views ----------------------------------------------------------------------------------------------

    def _remote_copy(self, request: _Request, _params: dict[str, str]) -> _Reply | None:
        data, refused = self._form(request)
        if refused is not None:
            return refused
        arguments = self._copy_arguments(data)
        if isinstance(arguments, str):
            return _error(400, arguments)
        with self._lock:
            emulated = self._files.get(arguments.uuid)
            if emulated is None or emulated.removed:
                return _error(404, NOT_FOUND)
            stats = self._stats[emulated.uuid]
            stats.calls += 1
            fault = self._faults[emulated.uuid].popleft() if self._faults[emulated.uuid] else None
            delay = self._copy_delay
        if fault is not None:
            faulted = self._fault_reply(fault)
            if faulted is not None or self._stopping.is_set():
                return faulted
        if emulated.size > MAX_COPY_BYTES:
            return _error(400, TOO_LARGE)
        if delay and self._stopping.wait(delay):
            return None
        return self._copy_object(emulated, arguments, stats)

    def _copy_arguments(self, data: dict[str, Any]) -> _CopyArguments | str:
        """The validated body of a `remote_copy`, or the `detail` of the 400 that refuses it."""
        source = data.get("source")
        if source is None or source == "":
            return SOURCE_REQUIRED
        parsed = parse_source(source) if isinstance(source, str) else None
        if parsed is None:
            return BAD_SOURCE
        target = data.get("target")
        if target is None or target == "":
            return "`target` parameter is required."
        with self._lock:
            storage = self._storages.get(target) if isinstance(target, str) else None
        if storage is None:
            return NO_STORAGE
        make_public = _boolean(data.get("make_public", True))
        if make_public is None:
            return "`make_public` must be either true or false."
        pattern = data.get("pattern")
        if pattern is None:
            pattern = storage.pattern  # omitted: the storage's own pattern
        try:
            validate_pattern(pattern if isinstance(pattern, str) else "")
        except PatternError as error:
            return f"Invalid pattern provided: {error}"
        return _CopyArguments(parsed[0], parsed[1], storage, make_public, pattern)

    def _copy_object(self, emulated: EmulatedFile, arguments: _CopyArguments, stats: CopyStats) -> _Reply:
        storage = arguments.storage
        key = storage.prefix + expand_pattern(
            arguments.pattern, emulated.uuid, emulated.original_filename, arguments.effects
        )
        result = f"s3://{storage.bucket}/{key}"
        try:
            if self._object_exists(storage.bucket, key):
                with self._lock:
                    stats.already_exists += 1
                body = {"type": "url", "result": result} if self._already_exists_with_result else {"type": "url"}
                return _json_reply(200, body)
            written = file_content(emulated.uuid, emulated.size + 1 if emulated.wrong_size else emulated.size)
            acl = {"ACL": "public-read"} if arguments.make_public else {}
            self._s3.put_object(Bucket=storage.bucket, Key=key, Body=written, ContentType=emulated.mime_type, **acl)
        except (BotoCoreError, ClientError) as error:
            return _error(500, f"The emulator could not write to S3: {error}")
        with self._lock:
            stats.copies += 1
        return _json_reply(201, {"type": "url", "result": result})

    def _fault_reply(self, fault: Fault) -> _Reply | None:
        """The scripted answer, or None to go on with the copy (after a slow fault's wait)."""
        if fault.kind == "throttled":
            unit = "second" if fault.retry_after == 1 else "seconds"
            detail = f"Request was throttled. Expected available in {fault.retry_after} {unit}."
            return _error(429, detail, Retry_After=str(fault.retry_after))
        if fault.kind == "not_ready":
            return _error(400, NOT_READY)
        if fault.kind == "server_error":
            if fault.status in _NGINX_PAGES:
                title = f"{fault.status} {_NGINX_PAGES[fault.status]}"
                page = f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>"
                page += "\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
                return _Reply(fault.status, page.encode(), "text/html")
            return _error(fault.status, "A server error occurred.")
        self._stopping.wait(fault.seconds)
        return None

    def _object_exists(self, bucket: str, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def _get_file(self, request: _Request, params: dict[str, str]) -> _Reply:
        with self._lock:
            emulated = self._files.get(params["uuid"])
        if emulated is None:
            return _error(404, NOT_FOUND)
        return _json_reply(200, self._file_info(emulated, request.api_root))

    def _get_project(self, _request: _Request, _params: dict[str, str]) -> _Reply:
        project = {"name": self.project_name, "pub_key": self.public_key, "autostore_enabled": True}
        return _json_reply(200, {**project, "collaborators": []})

    def _list_files(self, request: _Request, _params: dict[str, str]) -> _Reply:
        """`GET /files/`: filtered by `stored`/`removed`, ordered by upload time, bounded by `from`/`to` (inclusive).

        `next` moves the bound to the first file not yet listed, plus `offset` files with that same time already
        listed, as Uploadcare's own `next` links do (`?from=...&limit=...&offset=0`).
        """
        query = {name: values[-1] for name, values in request.query.items()}
        try:
            limit = min(int(query.get("limit", DEFAULT_PAGE_SIZE)), MAX_PAGE_SIZE)
            offset = int(query.get("offset", 0))
        except ValueError:
            return _error(400, "`limit` and `offset` must be integers.")
        if limit < 1 or offset < 0:
            return _error(400, "`limit` must be positive and `offset` not negative.")
        ordering = query.get("ordering", "datetime_uploaded")
        if ordering not in ("datetime_uploaded", "-datetime_uploaded"):
            return _error(400, "`ordering` must be datetime_uploaded or -datetime_uploaded.")
        stored = _boolean(query["stored"]) if "stored" in query else None
        removed = _boolean(query.get("removed", "false"))
        if removed is None or ("stored" in query and stored is None):
            return _error(400, "`stored` and `removed` must be true or false.")
        try:
            lower = _parse_datetime(query["from"]) if "from" in query else None
            upper = _parse_datetime(query["to"]) if "to" in query else None
        except ValueError:
            return _error(400, "`from` and `to` must be ISO 8601 date-times (YYYY-MM-DDTHH:MM:SSZ).")

        with self._lock:
            everything = list(enumerate(self._files.values()))  # insertion order breaks ties of equal times
        kept = [(n, f) for n, f in everything if f.removed == removed and (stored is None or f.stored == stored)]
        descending = ordering.startswith("-")
        kept.sort(key=lambda item: (item[1].datetime_uploaded, item[0]), reverse=descending)
        window = [
            f
            for _, f in kept
            if (lower is None or f.datetime_uploaded >= lower) and (upper is None or f.datetime_uploaded <= upper)
        ]
        page = window[offset : offset + limit]
        next_url: str | None = None
        if len(window) > offset + limit:
            first_unlisted = window[offset + limit].datetime_uploaded
            listed_at_that_time = sum(1 for f in window[: offset + limit] if f.datetime_uploaded == first_unlisted)
            cursor = {**query, ("to" if descending else "from"): first_unlisted.isoformat()}
            cursor.update(limit=str(limit), offset=str(listed_at_that_time))
            next_url = f"{request.api_root}files/?{urlencode(cursor)}"
        present = [f for _, f in everything if not f.removed]
        return _json_reply(
            200,
            {
                "next": next_url,
                "previous": None,
                "total": len(kept),
                "totals": {
                    "removed": sum(1 for _, f in everything if f.removed),
                    "stored": sum(1 for f in present if f.stored),
                    "unstored": sum(1 for f in present if not f.stored),
                },
                "per_page": limit,
                "results": [self._file_info(f, request.api_root) for f in page],
            },
        )

    def _list_webhooks(self, _request: _Request, _params: dict[str, str]) -> _Reply:
        return _json_reply(200, self.webhooks())

    def _create_webhook(self, request: _Request, _params: dict[str, str]) -> _Reply:
        data, refused = self._form(request)
        if refused is not None:
            return refused
        problem = next(_webhook_problems(data), None)
        if problem is not None:
            return _error(400, problem)
        now = _iso(datetime.fromtimestamp(self.clock(), UTC))
        with self._lock:
            if any(h["target_url"] == data["target_url"] and h["event"] == data["event"] for h in self._webhooks):
                return _error(400, "A webhook with this target URL and event already exists.")
            hook = {
                "id": len(self._webhooks) + 1,
                "project": PROJECT_ID,
                "created": now,
                "updated": now,
                "event": data["event"],
                "target_url": data["target_url"],
                "is_active": _boolean(data.get("is_active", True)),
                "signing_secret": data.get("signing_secret") or "",
                "version": data.get("version", ""),  # omitted: stored as an older version would be
            }
            self._webhooks.append(hook)
        return _json_reply(201, dict(hook))

    # -- admin API (unsigned) -----------------------------------------------------------------------------------

    def _admin(self, request: _Request) -> _Reply:
        """The unsigned admin API, for an emulator running in another process:

        GET    /__emulator__/                               state: url, project, storages, settings
        POST   /__emulator__/files                          register a file (add_file's arguments as JSON)
        GET    /__emulator__/files/<uuid>                   the file object
        DELETE /__emulator__/files/<uuid>                   mark it deleted
        POST   /__emulator__/files/<uuid>/faults            {"faults": [{"kind": "throttled", "retry_after": 3}, ...]}
        PUT    /__emulator__/files/<uuid>/flags             {"wrong_size": true}
        GET    /__emulator__/files/<uuid>/webhook-body      ?target_url=...: a file.uploaded delivery body
        GET    /__emulator__/counters                       requests by method and path, copies per file
        GET    /__emulator__/requests                       the request log
        PUT    /__emulator__/settings                       {"copy_delay": 0.3, "already_exists_with_result": true}
        POST   /__emulator__/secret-key                     {"secret_key": "..."}: rotate
        """
        path = "/" + request.path[len(ADMIN_PREFIX) :].strip("/")
        data: dict[str, Any] = {}
        if request.body:
            try:
                loaded = json.loads(request.body)
            except ValueError as error:
                return _error(400, f"JSON parse error - {error}")
            if not isinstance(loaded, dict):
                return _error(400, "expected a JSON object")
            data = loaded
        file_route = re.match(r"^/files/(?P<uuid>[^/]+)(?P<rest>/[a-z-]+)?$", path)
        try:
            if file_route:
                return self._admin_file(request, file_route.group("uuid"), file_route.group("rest") or "", data)
            return self._admin_project(request, path, data)
        except KeyError as error:
            return _error(404, str(error.args[0]) if error.args else NOT_FOUND)
        except (TypeError, ValueError) as error:
            return _error(400, str(error))

    def _admin_project(self, request: _Request, path: str, data: dict[str, Any]) -> _Reply:
        method = request.method
        if (method, path) == ("GET", "/"):
            return _json_reply(200, self._state())
        if (method, path) == ("POST", "/files"):
            uploaded = data.pop("datetime_uploaded", None)
            if uploaded is not None:
                data["datetime_uploaded"] = _parse_datetime(str(uploaded))
            emulated = self.add_file(**data)
            return _json_reply(201, self._file_info(emulated, request.api_root))
        if (method, path) == ("GET", "/counters"):
            with self._lock:
                files = {uuid: asdict(stats) for uuid, stats in self._stats.items()}
            return _json_reply(200, {"requests": self.request_counts(), "files": files})
        if (method, path) == ("GET", "/requests"):
            return _json_reply(200, [asdict(record) for record in self.requests])
        if (method, path) == ("PUT", "/settings"):
            if "copy_delay" in data:
                self.copy_delay = float(data["copy_delay"])
            if "already_exists_with_result" in data:
                flag = _boolean(data["already_exists_with_result"])
                if flag is None:
                    raise ValueError("already_exists_with_result must be true or false")
                self.already_exists_with_result = flag
            return _json_reply(200, self._state())
        if (method, path) == ("POST", "/secret-key"):
            self.rotate_secret_key(str(data.get("secret_key") or ""))
            return _json_reply(200, {"rotated": True})
        return _error(404, NOT_FOUND)

    def _admin_file(self, request: _Request, uuid: str, rest: str, data: dict[str, Any]) -> _Reply:
        method = request.method
        if (method, rest) == ("GET", ""):
            return _json_reply(200, self.file_info(uuid, request.api_root))
        if (method, rest) == ("DELETE", ""):
            self.remove_file(uuid)
            return _json_reply(200, self.file_info(uuid, request.api_root))
        if (method, rest) == ("POST", "/faults"):
            faults = data.get("faults")
            if not isinstance(faults, list) or not all(isinstance(f, dict) for f in faults):
                raise ValueError('expected {"faults": [{"kind": ...}, ...]}')
            self.script(uuid, *(Fault.from_json(f) for f in faults))
            return _json_reply(200, {"pending": [f.to_json() for f in self.pending_faults(uuid)]})
        if (method, rest) == ("PUT", "/flags"):
            flag = _boolean(data.get("wrong_size"))
            if flag is None:
                raise ValueError("wrong_size must be true or false")
            self.set_wrong_size(uuid, flag)
            return _json_reply(200, {"wrong_size": flag})
        if (method, rest) == ("GET", "/webhook-body"):
            options = {name: values[-1] for name, values in request.query.items()}
            return _json_reply(200, self.file_uploaded_body(uuid, **options))
        return _error(404, NOT_FOUND)

    def _state(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "project": {"name": self.project_name, "pub_key": self.public_key},
            "storages": [asdict(storage) for storage in self.storages.values()],
            "copy_delay": self.copy_delay,
            "already_exists_with_result": self.already_exists_with_result,
        }


# ---------------------------------------------------------------------------------------------------------------
# HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: UploadcareEmulator) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Ends idle keep-alive connections, so no handler thread outlives the emulator."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a pooled client expects
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall
    timeout = 60  # an idle keep-alive connection is closed after this

    def version_string(self) -> str:
        return "nginx"

    def setup(self) -> None:
        super().setup()
        cast(_Server, self.server).track(self.connection, open_=True)

    def finish(self) -> None:
        cast(_Server, self.server).track(self.connection, open_=False)
        with contextlib.suppress(ConnectionError):  # the client has gone; nothing left to flush
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        if cast(_Server, self.server).emulator.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        if self.headers.get("Transfer-Encoding"):
            self._write(_error(411, "A Content-Length is required."), close=True)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._write(_error(400, "Bad Content-Length."), close=True)
            return
        if not 0 <= length <= MAX_BODY_BYTES:
            self._write(_error(413, "Request body too large."), close=True)
            return
        body = self.rfile.read(length)  # read it all first: an early answer must not leave bytes on a kept connection
        parts = urlsplit(self.path)
        emulator = cast(_Server, self.server).emulator
        request = _Request(
            method=self.command,
            uri=self.path,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            api_root=f"http://{self.headers['Host']}/" if self.headers.get("Host") else emulator.url,
        )
        reply = emulator.handle(request)
        if reply is None:
            self.close_connection = True
            return
        self._write(reply)

    def _write(self, reply: _Reply, *, close: bool = False) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                self.send_header(name, value)
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(reply.body)
        except ConnectionError:
            self.close_connection = True  # the client gave up (a read timeout): nobody to answer


# ---------------------------------------------------------------------------------------------------------------
# As a process


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.emulator", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (a Docker bridge address works too)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--public-key", default=DEMO_PUBLIC_KEY)
    parser.add_argument(
        "--secret-key",
        default=os.environ.get("EMULATOR_SECRET_KEY", DEMO_SECRET_KEY),
        help="default: $EMULATOR_SECRET_KEY, else demosecretkey",
    )
    parser.add_argument(
        "--storage", action="append", default=[], type=Storage.parse, help="NAME=BUCKET[/PREFIX], repeatable"
    )
    parser.add_argument("--aws-endpoint", default=os.environ.get("AWS_ENDPOINT_URL"), help="S3 endpoint (moto)")
    parser.add_argument("--already-exists-with-result", action="store_true")
    parser.add_argument("--copy-delay", type=float, default=0.0, help="seconds every remote copy takes")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    if not args.aws_endpoint:
        parser.error("--aws-endpoint (or AWS_ENDPOINT_URL) is required: the emulator writes copies to S3 there")
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(name, value)  # moto accepts anything; boto3 needs something
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emulator = UploadcareEmulator(
        public_key=args.public_key,
        secret_key=args.secret_key,
        storages=args.storage,
        aws_endpoint=args.aws_endpoint,
        host=args.host,
        port=args.port,
        already_exists_with_result=args.already_exists_with_result,
        copy_delay=args.copy_delay,
        verbose=args.verbose,
    )
    with emulator:
        print(emulator.url, flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
