"""The emulator on a socket: a threading HTTP server in front of `routes.RestApi`, started and stopped in-process."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import parse_qs, urlsplit

from devkit.emulator.routes import (
    MAX_BODY_BYTES,
    RestApi,
    _error,
    _Reply,
    _Request,
)

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


class UploadcareEmulator(RestApi):
    """An Uploadcare project on loopback: one key pair, custom storages backed by S3 (moto), files, webhooks."""

    _server: _Server | None = None
    _thread: threading.Thread | None = None

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

    def _bound_address(self) -> tuple[str, int] | None:
        if self._server is None:
            return None
        host, port = self._server.server_address[:2]
        return str(host), int(port)
