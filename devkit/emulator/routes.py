"""The emulator's HTTP answers: the signed REST API routes, checked as strictly as Uploadcare documents them,
and the unsigned admin API under `/__emulator__/`."""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import hashlib
import hmac
import json
import re
import threading
import urllib.error
import urllib.request
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from botocore.exceptions import BotoCoreError, ClientError

from devkit.emulator.state import (
    MAX_COPY_BYTES,
    PROJECT_ID,
    CopyStats,
    EmulatedFile,
    Fault,
    Project,
    RequestRecord,
    _boolean,
    _CopyArguments,
    _iso,
    _parse_datetime,
    _webhook_problems,
    file_content,
    parse_source,
    processed_content,
)
from uploadcare_s3_copy.patterns import PatternError, expand_pattern, validate_pattern
from uploadcare_s3_copy.uploadcare import ACCEPT, request_signature
from uploadcare_s3_copy.webhook.signing import sign

API_CONTENT_TYPE = ACCEPT  # answers are sent with the same media type the client asks for
ADMIN_PREFIX = "/__emulator__/"
UPLOAD_PATH = "/base/"  # the Upload API's direct upload (upload.uploadcare.com/base/), served on the same port
# The admin routes, as `python -m devkit.emulator --help` and `python -m devkit.up --help` print them.
ADMIN_ROUTES = """admin routes (unsigned, under the emulator's URL):
  GET    /__emulator__/                               state: url, project, storages, settings
  POST   /__emulator__/files                          add a file: {"original_filename": "a.jpg", "size": 1234,
                                                      "datetime_uploaded": "2025-01-02T03:04:05Z"} (all optional;
                                                      also "uuid", "mime_type", "stored", "source_file_uuid")
  GET    /__emulator__/files/<uuid>                   the file object
  DELETE /__emulator__/files/<uuid>                   mark it removed (deleted at Uploadcare); ?purge=true forgets it
  POST   /__emulator__/files/<uuid>/faults            inject faults for its next remote_copy calls:
                                                      {"faults": [{"kind": "throttled", "retry_after": 3}, ...]}
                                                      kinds: throttled, server_error (status), not_ready, slow
                                                      (seconds)
  PUT    /__emulator__/files/<uuid>/flags             {"wrong_size": true} and/or {"infected": true}
  GET    /__emulator__/files/<uuid>/webhook-body      ?target_url=...: the file.uploaded body Uploadcare would send
  GET    /__emulator__/counters                       requests by method and path, copies per file, webhook
                                                      deliveries made after uploads
  GET    /__emulator__/requests                       the request log
  PUT    /__emulator__/settings                       {"copy_delay": 0.3, "already_exists_with_result": true}
  POST   /__emulator__/secret-key                     {"secret_key": "..."}: rotate the project's secret key
Upload API (unsigned by default, as Uploadcare's; signed uploads checked when given):
  POST   /base/                                       multipart: UPLOADCARE_PUB_KEY, UPLOADCARE_STORE, file
                                                      (optional signature, expire); answers {"file": "<uuid>"}, then
                                                      delivers file.uploaded to every active webhook, signed"""
MAX_CLOCK_SKEW_SECONDS = 15 * 60  # "The date you provide MUST NOT exceed the 15-minute offset" (Authentication)
MAX_BODY_BYTES = 1024**2
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
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
    (re.compile(r"^/files/(?P<uuid>[^/]+)/storage/$"), "file_storage"),
    (re.compile(r"^/webhooks/unsubscribe/$"), "webhooks_unsubscribe"),
)
CDN_PREFIX = "/cdn/"  # the emulator's own CDN, for `audit --deep` (state.Project.use_own_cdn)
_NGINX_PAGES = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}


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


def _multipart(request: _Request) -> tuple[dict[str, str], dict[str, tuple[str, str, bytes]]]:
    """A multipart/form-data body: its plain fields, and its files by field name (filename, type, bytes)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return {}, {}
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request.body
    )
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            fields[name] = content.decode("utf-8", "replace")
        else:
            files[name] = (filename, part.get_content_type(), content)
    return fields, files


def _error(status: int, detail: str, **headers: str) -> _Reply:
    return _json_reply(status, {"detail": detail}, **headers)


class RestApi(Project):
    """`handle(request)` answers one HTTP request as Uploadcare (or the admin API) would."""

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
        if request.path.startswith(CDN_PREFIX):
            return self._cdn(request)
        if request.path == UPLOAD_PATH:
            reply: _Reply | None = self._upload(request)
            with self._lock:
                self._request_counts[f"{request.method} {request.path}"] += 1
            return reply
        reply = self._api(request)
        if reply is not None:
            request_id = dict(reply.headers).get("X-Uploadcare-Request-Id", "")
            with self._lock:
                self._request_counts[f"{request.method} {request.path}"] += 1
                self._requests.append(RequestRecord(request.method, request.uri, reply.status, request_id))
        return reply

    def _cdn(self, request: _Request) -> _Reply:
        """`GET /cdn/<uuid>/<anything>`: the file's bytes, as the CDN serves an original (see `use_own_cdn`)."""
        uuid = request.path[len(CDN_PREFIX) :].split("/", 1)[0]
        with self._lock:
            emulated = self._files.get(uuid)
            self._request_counts[f"{request.method} {CDN_PREFIX}"] += 1
        if request.method != "GET" or emulated is None or emulated.removed:
            return _Reply(404, b"Not found", "text/plain")
        return _Reply(200, file_content(emulated.uuid, emulated.size), emulated.mime_type)

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
            ("file_storage", "DELETE"): self._delete_file,
            ("webhooks_unsubscribe", "DELETE"): self._unsubscribe,
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
            own = self._target_faults.get((emulated.uuid, arguments.storage.name))
            if own:
                fault: Fault | None = own.popleft()
            else:
                fault = self._faults[emulated.uuid].popleft() if self._faults[emulated.uuid] else None
            delay = self._copy_delay
        if fault is not None:
            faulted = self._fault_reply(fault)
            if faulted is not None or self._stopping.is_set():
                return faulted
        if arguments.effects and not emulated.mime_type.startswith("image/"):
            return _error(400, BAD_SOURCE)  # the CDN's operations apply to images (what Uploadcare answers: unrecorded)
        if emulated.size > MAX_COPY_BYTES and not arguments.effects:
            return _error(400, TOO_LARGE)
        if delay and self._stopping.wait(delay):
            return None
        return self._copy_object(emulated, arguments, stats)

    def _copy_arguments(self, data: dict[str, Any]) -> _CopyArguments | str:
        """The validated body of a `remote_copy`, or the `detail` of the 400 that refuses it."""
        source, target = data.get("source"), data.get("target")
        found = parse_source(source) if isinstance(source, str) and source else None
        if found is not None and isinstance(target, str):
            with self._lock:
                self._target_calls[(found[0], target)] += 1
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
            if arguments.effects:  # a processed version: other bytes, of a size not known in advance
                written = processed_content(emulated.uuid, emulated.size, arguments.effects)
            else:
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
        if emulated is None or emulated.purged:
            return _error(404, NOT_FOUND)
        return _json_reply(200, self._file_info(emulated, request.api_root))

    def _get_project(self, _request: _Request, _params: dict[str, str]) -> _Reply:
        project = {"name": self.project_name, "pub_key": self.public_key, "autostore_enabled": True}
        return _json_reply(200, {**project, "collaborators": []})

    def _list_files(self, request: _Request, _params: dict[str, str]) -> _Reply | None:
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
            fault = self._listing_faults.popleft() if self._listing_faults else None
            delay = self._list_delay
        if fault is not None:
            faulted = self._fault_reply(fault)
            if faulted is not None or self._stopping.is_set():
                return faulted
        if delay and self._stopping.wait(delay):
            return None
        with self._lock:
            # insertion order breaks ties of equal times
            everything = list(enumerate(f for f in self._files.values() if not f.purged))
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

    def _delete_file(self, request: _Request, params: dict[str, str]) -> _Reply:
        """`DELETE /files/<uuid>/storage/`: the file is removed; the answer is its file info."""
        uuid = params["uuid"]
        with self._lock:
            emulated = self._files.get(uuid)
        if emulated is None:
            return _error(404, NOT_FOUND)
        if not emulated.removed:
            self.remove_file(uuid)
        return _json_reply(200, self.file_info(uuid, request.api_root))

    def _unsubscribe(self, request: _Request, _params: dict[str, str]) -> _Reply:
        """`DELETE /webhooks/unsubscribe/` with `target_url`: every webhook of that URL is deleted; 204."""
        data, refused = self._form(request)
        if refused is not None:
            return refused
        target = str(data.get("target_url") or "")
        if not target:
            return _error(400, "target_url: This field is required.")
        with self._lock:
            self._webhooks[:] = [hook for hook in self._webhooks if hook["target_url"] != target]
        return _Reply(204, b"", "application/json")

    # -- the Upload API (upload.uploadcare.com) -------------------------------------------------------------------

    def _upload(self, request: _Request) -> _Reply:
        """`POST /base/`, multipart: `UPLOADCARE_PUB_KEY`, `UPLOADCARE_STORE`, optional `signature` and `expire`
        (signed uploads: HMAC-SHA256 of `expire` with the secret key), and the file under any field name, which the
        answer maps to the new UUID: `{"file": "<uuid>"}`. Then each active file.uploaded webhook is delivered,
        signed, from a thread (as Uploadcare delivers after the upload)."""
        if request.method != "POST":
            return _json_reply(405, {"error": "Method not allowed."}, content_type="application/json")
        fields, files = _multipart(request)
        if fields.get("UPLOADCARE_PUB_KEY") != self.public_key:
            return _json_reply(403, {"error": "UPLOADCARE_PUB_KEY is invalid."}, content_type="application/json")
        if "signature" in fields or "expire" in fields:
            expected = hmac.new(self.secret_key.encode(), fields.get("expire", "").encode(), hashlib.sha256).hexdigest()
            expire = fields.get("expire", "")
            fresh = expire.isdigit() and int(expire) > self.clock()
            if not fresh or not hmac.compare_digest(expected, fields.get("signature", "")):
                return _json_reply(403, {"error": "Invalid signature."}, content_type="application/json")
        if not files:
            return _json_reply(400, {"error": "No files uploaded."}, content_type="application/json")
        answer = {}
        for field_name, (filename, content_type, content) in files.items():
            emulated = self.add_file(
                original_filename=filename or "file",
                size=len(content),
                mime_type=content_type or None,
                stored=fields.get("UPLOADCARE_STORE", "auto") in ("1", "auto"),
            )
            answer[field_name] = emulated.uuid
            threading.Thread(target=self.deliver_webhooks, args=(emulated.uuid,), daemon=True).start()
        return _json_reply(200, answer, content_type="application/json")

    def deliver_webhooks(self, uuid: str, event: str = "file.uploaded") -> list[int]:
        """POSTs the `event` body for `uuid` to every active webhook of that event, signed with its secret;
        returns the status codes (0: no answer). Each delivery is recorded in `deliveries`."""
        with self._lock:
            hooks = [dict(h) for h in self._webhooks if h["event"] == event and h["is_active"]]
        statuses = []
        for hook in hooks:
            body = json.dumps(
                self.file_uploaded_body(uuid, target_url=hook["target_url"], event=event), separators=(",", ":")
            ).encode()
            headers = {"Content-Type": "application/json", "User-Agent": "uploadcare-emulator-webhook"}
            if hook["signing_secret"]:
                headers["X-Uc-Signature"] = sign(hook["signing_secret"], body)
            delivery = urllib.request.Request(hook["target_url"], data=body, headers=headers, method="POST")  # noqa: S310
            try:
                with urllib.request.urlopen(delivery, timeout=10) as answer:  # noqa: S310 - a registered target
                    status = answer.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError:
                status = 0
            statuses.append(status)
            with self._lock:
                self._deliveries.append(
                    {"uuid": uuid, "event": event, "target_url": hook["target_url"], "status": status}
                )
        return statuses

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
        """The unsigned admin API, for an emulator running in another process (ADMIN_ROUTES lists the routes)."""
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
            return _json_reply(200, {"requests": self.request_counts(), "files": files, "deliveries": self.deliveries})
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
            if _boolean(request.query.get("purge", ["false"])[-1]):
                self.forget_file(uuid)
                return _json_reply(200, {"purged": uuid})
            self.remove_file(uuid)
            return _json_reply(200, self.file_info(uuid, request.api_root))
        if (method, rest) == ("POST", "/faults"):
            faults = data.get("faults")
            if not isinstance(faults, list) or not all(isinstance(f, dict) for f in faults):
                raise ValueError('expected {"faults": [{"kind": ...}, ...]}')
            self.script(uuid, *(Fault.from_json(f) for f in faults))
            return _json_reply(200, {"pending": [f.to_json() for f in self.pending_faults(uuid)]})
        if (method, rest) == ("PUT", "/flags"):
            flags = {name: _boolean(data[name]) for name in ("wrong_size", "infected") if name in data}
            if not flags or None in flags.values():
                raise ValueError("give wrong_size and/or infected, each true or false")
            if "wrong_size" in flags:
                self.set_wrong_size(uuid, bool(flags["wrong_size"]))
            if "infected" in flags:
                self.infect_file(uuid, bool(flags["infected"]))
            return _json_reply(200, flags)
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
