"""AWS faults injected in front of the moto server: a small HTTP proxy on loopback that forwards every AWS API call
to moto, except the calls a rule picks, which it answers the way AWS fails (a throttle, a 5xx, a dropped connection)
or holds back before forwarding (a slow call).

The code under test is not touched: its boto3 clients simply have the proxy as their endpoint (AWS_ENDPOINT_URL),
so botocore's own retries, timeouts and error parsing run as they would against AWS. Used by the integration tests
(tests/integration/test_aws_outages.py) and by `make soak SOAK_ARGS="--aws-faults"` (devkit/soak.py).

A call is named `service:Operation`, from the signature's credential scope and the `X-Amz-Target` header (DynamoDB,
SQS, Secrets Manager: JSON protocols) or the method (S3: HEAD is `s3:HeadObject`).
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_S3_OPERATIONS = {"HEAD": "HeadObject", "GET": "GetObject", "PUT": "PutObject", "DELETE": "DeleteObject"}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass(frozen=True)
class Call:
    """One AWS API call as the proxy sees it."""

    service: str
    operation: str
    path: str
    body: bytes

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}"

    def mentions(self, text: str) -> bool:
        return text.encode() in self.body or text in self.path

    def uuids(self) -> set[str]:
        return {match.decode() for match in _UUID.findall(self.body + self.path.encode())}


@dataclass(frozen=True)
class Fault:
    """What the proxy does to a call a rule picked."""

    kind: str  # throttled | server_error | unavailable | dropped | slow
    seconds: float = 0.0  # slow: held back this long, then forwarded

    @classmethod
    def throttled(cls) -> Fault:
        return cls("throttled")

    @classmethod
    def server_error(cls) -> Fault:
        return cls("server_error")

    @classmethod
    def unavailable(cls) -> Fault:
        return cls("unavailable")

    @classmethod
    def dropped(cls) -> Fault:
        return cls("dropped")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls("slow", seconds)


@dataclass
class Rule:
    operation: str  # `service:Operation`, as `Call.name`
    fault: Fault
    when: Callable[[Call], bool] = lambda call: True
    times: int | None = None  # how many matching calls it faults; None: until removed
    hits: int = 0

    def picks(self, call: Call) -> bool:
        return call.name == self.operation and (self.times is None or self.hits < self.times) and bool(self.when(call))


@dataclass(frozen=True)
class Hit:
    call: Call
    fault: Fault
    at: float  # time.monotonic()


@dataclass
class AwsFaultProxy:
    """Forwards to `upstream` (the moto server); `url` is what boto3 clients should use as their endpoint."""

    upstream: str
    rules: list[Rule] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the proxy is not running"
        # A host name, not an IP: moto's S3 parses bucket names out of the Host header otherwise (as for moto itself).
        return f"http://localhost:{self._server.server_address[1]}"

    def add(
        self,
        operation: str,
        fault: Fault,
        *,
        when: Callable[[Call], bool] = lambda call: True,
        times: int | None = None,
    ) -> Rule:
        rule = Rule(operation, fault, when, times)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def hits_of(self, operation: str) -> list[Hit]:
        with self._lock:
            return [hit for hit in self.hits if hit.call.name == operation]

    def pick(self, call: Call) -> Fault | None:
        with self._lock:
            self.calls[call.name] += 1
            for rule in self.rules:
                if rule.picks(call):
                    rule.hits += 1
                    self.hits.append(Hit(call, rule.fault, time.monotonic()))
                    return rule.fault
        return None

    @contextmanager
    def running(self) -> Iterator[AwsFaultProxy]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        thread = threading.Thread(target=server.serve_forever, name="aws-fault-proxy", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            self._server = None


def identify(method: str, path: str, headers: Any, body: bytes) -> Call:
    scope = _SCOPE.search(headers.get("Authorization", ""))
    service = scope.group(1) if scope else "unknown"
    target = headers.get("X-Amz-Target", "")
    if target:
        operation = target.rsplit(".", 1)[-1]
    elif service == "s3":
        operation = _S3_OPERATIONS.get(method, method)
    else:  # a query-protocol call: Action=... in the form body or the query string
        form = parse_qs(body.decode("utf-8", errors="replace")) or parse_qs(urlsplit(path).query)
        operation = form.get("Action", [method])[0]
    return Call(service, operation, path, body)


def _error_answer(call: Call, fault: Fault) -> tuple[int, dict[str, str], bytes]:
    """The answer AWS gives for `fault`, in the call's protocol."""
    status, code, message = {
        "throttled": (400, "ThrottlingException", "Rate exceeded"),
        "server_error": (500, "InternalServerError", "Internal server error"),
        "unavailable": (503, "ServiceUnavailable", "Service unavailable"),
    }[fault.kind]
    if call.service == "dynamodb" and fault.kind == "throttled":
        code = "ProvisionedThroughputExceededException"
    if call.service == "s3":
        status = 503 if fault.kind == "throttled" else status
        code = "SlowDown" if fault.kind == "throttled" else code
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
        return status, {"Content-Type": "application/xml"}, body
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}
    if call.service == "sqs":
        headers["x-amzn-query-error"] = f"{code};Sender"
    return status, headers, json.dumps({"__type": code, "message": message}).encode()


def _handler_for(proxy: AwsFaultProxy) -> type[BaseHTTPRequestHandler]:
    upstream = urlsplit(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            call = identify(self.command, self.path, self.headers, body)
            fault = proxy.pick(call)
            if fault is not None and fault.kind == "dropped":
                self.close_connection = True
                self.connection.close()
                return
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.seconds)
            elif fault is not None:
                self._answer(*_error_answer(call, fault))
                return
            self._forward(body)

        def _forward(self, body: bytes) -> None:
            connection = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port, timeout=60)
            try:
                headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                data = response.read()
                answer_headers = {
                    name: value for name, value in response.getheaders() if name.lower() not in _HOP_BY_HOP
                }
            finally:
                connection.close()
            self._answer(response.status, answer_headers, data, keep_length=self.command == "HEAD")

        def _answer(self, status: int, headers: dict[str, str], body: bytes, *, keep_length: bool = False) -> None:
            try:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                given = {name.lower(): value for name, value in headers.items()}.get("content-length")
                self.send_header("Content-Length", given if keep_length and given else str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (its read timeout): fine
                self.close_connection = True

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

    return Handler
