"""What the emulated Uploadcare project holds: storages, files, scripted faults, counters and webhooks."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import threading
import time
import uuid as uuidlib
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import boto3

from uploadcare_s3_copy.copy_request import UUID_PATTERN

MAX_COPY_BYTES = 5 * 1024**3  # "File size MUST NOT exceed 5 GB." (remote_copy endpoint page)
MAX_CONTENT_BYTES = 64 * 1024**2  # bytes the emulator is willing to generate for one file
PROJECT_ID = 4242
DEMO_PUBLIC_KEY = "demopublickey"
DEMO_SECRET_KEY = "demosecretkey"  # noqa: S105 - the emulator's made-up default, guarding nothing
WEBHOOK_EVENTS = ("file.uploaded", "file.infected", "file.stored", "file.deleted", "file.info_updated")


_CDN_SOURCE = re.compile(
    r"^https?://[^/?#]+/(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:/(?P<rest>[^?#]*))?$"
)


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
    infected: bool = False  # the ClamAV add-on's verdict, in appdata.uc_clamav_virus_scan
    purged: bool = False  # unknown to the REST API (404), as if never uploaded

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


def processed_content(uuid: str, size: int, effects: str) -> bytes:
    """A processed version's deterministic bytes: a third of the original's size (at least one byte)."""
    return hashlib.shake_256(f"{uuid}{effects}".encode()).digest(max(1, size // 3))


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


class Project:
    """An Uploadcare project's state: one key pair, custom storages backed by S3 (moto), files, webhooks.

    The Python face the tests use; `routes.RestApi` adds the HTTP answers and `server.UploadcareEmulator` serves them.
    """

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
        self._target_faults: defaultdict[tuple[str, str], deque[Fault]] = defaultdict(deque)
        self._target_calls: Counter[tuple[str, str]] = Counter()
        self._listing_faults: deque[Fault] = deque()
        self._list_delay = 0.0
        self._stats: dict[str, CopyStats] = {}
        self._request_counts: Counter[str] = Counter()
        self._requests: deque[RequestRecord] = deque(maxlen=10_000)
        self._webhooks: list[dict[str, Any]] = []
        self._deliveries: list[dict[str, Any]] = []  # webhook deliveries made after uploads
        self._last_uploaded: datetime | None = None
        self._stopping = threading.Event()

    def _bound_address(self) -> tuple[str, int] | None:
        """Where the HTTP face listens; None while it is not serving (the server module overrides this)."""
        return None

    @property
    def url(self) -> str:
        """The API root, `http://<host>:<port>/`, to give the client as its `api_url`."""
        bound = self._bound_address()
        if bound is None:
            raise RuntimeError("the emulator is not running")
        host, port = bound
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
    def list_delay(self) -> float:
        """Seconds every `GET /files/` page takes before it answers (a slow listing, for deadline tests)."""
        return self._list_delay

    @list_delay.setter
    def list_delay(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("list_delay cannot be negative")
        self._list_delay = seconds

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
        """Marks a file deleted: `GET /files/<uuid>/` shows `datetime_removed`, `remote_copy` answers 404, listings
        leave it out unless `removed=true`."""
        with self._lock:
            emulated = self._file(uuid)
            self._files[uuid] = replace(emulated, datetime_removed=datetime.fromtimestamp(self.clock(), UTC))

    def forget_file(self, uuid: str) -> None:
        """A file Uploadcare no longer knows at all (purged long ago, or never of this project): 404 from every
        REST route and out of every listing. The tests' own view (`get`, `copies`) keeps it."""
        with self._lock:
            emulated = self._file(uuid)
            removed = emulated.datetime_removed or datetime.fromtimestamp(self.clock(), UTC)
            self._files[uuid] = replace(emulated, datetime_removed=removed, purged=True)

    def infect_file(self, uuid: str, infected: bool = True) -> None:
        """The ClamAV add-on's verdict: `appdata.uc_clamav_virus_scan.data.infected` in the file's info."""
        with self._lock:
            self._files[uuid] = replace(self._file(uuid), infected=infected)

    def use_own_cdn(self) -> None:
        """Files' `original_file_url` (and a webhook's `file`) point at the emulator's own `/cdn/<uuid>/...`, which
        serves each file's bytes, so the content of a copy can be compared with its original over loopback."""
        self.cdn_base = self.url + "cdn/"

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

    def script(self, uuid: str, *faults: Fault, target: str | None = None) -> None:
        """Queues faults for the next `remote_copy` calls of this file, one per call, in order; with `target`, only
        for calls to that storage (a copy spec), before the file's own faults."""
        with self._lock:
            self._file(uuid)
            if target is None:
                self._faults[uuid].extend(faults)
            else:
                self._target_faults[(uuid, target)].extend(faults)

    def script_listing(self, *faults: Fault) -> None:
        """Queues faults for the next `GET /files/` calls, one per call, in order (`not_ready` is not one)."""
        if any(fault.kind == "not_ready" for fault in faults):
            raise ValueError("a listing is never 'not ready'")
        with self._lock:
            self._listing_faults.extend(faults)

    def pending_faults(self, uuid: str) -> list[Fault]:
        with self._lock:
            self._file(uuid)
            return list(self._faults[uuid])

    # -- counters -----------------------------------------------------------------------------------------------

    def copy_calls(self, uuid: str, target: str | None = None) -> int:
        """`remote_copy` requests that named this file (faulted and 200 answers included); with `target`, those
        to that storage only (an unknown storage's calls included)."""
        if target is not None:
            with self._lock:
                return self._target_calls[(uuid, target)]
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

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """Webhook deliveries made (uuid, event, target_url, status; 0: no answer)."""
        with self._lock:
            return [dict(delivery) for delivery in self._deliveries]

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
        return self.url if self._bound_address() is not None else f"http://{self._host}:{self._port}/"

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
            "appdata": _clamav(emulated) if emulated.infected else {},
            "variations": None,
        }


def _clamav(emulated: EmulatedFile) -> dict[str, Any]:
    """The ClamAV add-on's appdata for an infected file (REST API v0.7 `application_data`)."""
    when = _iso(emulated.datetime_uploaded)
    return {
        "uc_clamav_virus_scan": {
            "data": {"infected": True, "infected_with": "Win.Test.EICAR_HDB-1"},
            "version": "0.104.2",
            "datetime_created": when,
            "datetime_updated": when,
        }
    }
