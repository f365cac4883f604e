"""A stand-in for the stack's API Gateway HTTP API on 127.0.0.1, for local runs that need a real webhook URL.

Each `POST /webhooks/uploadcare` becomes the HTTP API payload 2.0 event API Gateway would build (the body, the
`x-uc-signature` header) and is handed to the webhook handler in this process; the handler's answer (status and
body) is the HTTP response. The emulator's Upload API delivers its file.uploaded webhooks here, signed, as
Uploadcare would deliver them to the deployed stack.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from devkit.lambda_context import LambdaContext
from devkit.make_events import PATH, http_api_event

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
MAX_BODY_BYTES = 1024 * 1024


class WebhookGateway:
    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self._handler = handler
        gateway = self

        class _Request(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, MAX_BODY_BYTES))
                if self.path != PATH:
                    self._answer(404, b'{"message":"Not Found"}')
                    return
                status, answer = gateway.invoke(body.decode("utf-8", "replace"), self.headers.get("X-Uc-Signature"))
                self._answer(status, answer)

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), _Request)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.invocations = 0

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{PATH}"

    def invoke(self, body: str, signature: str | None) -> tuple[int, bytes]:
        """The handler's answer to one delivery, as API Gateway turns it into HTTP (a crash is a 500)."""
        self.invocations += 1
        event = http_api_event(body, signature)
        try:
            answer = self._handler(event, LambdaContext(function_name="WebhookFunction", timeout_seconds=10))
        except Exception:
            return 500, b'{"message":"Internal Server Error"}'
        text = answer.get("body") or ""
        return int(answer.get("statusCode", 200)), (text if isinstance(text, str) else json.dumps(text)).encode()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
