"""A stand-in for the stack's API Gateway HTTP API on 127.0.0.1, for local runs that need a real webhook URL.

Each `POST /webhooks/uploadcare` becomes the HTTP API payload 2.0 event API Gateway would build (the body, the
`x-uc-signature` header) and is handed to the webhook handler in this process; the handler's answer (status and
body) is the HTTP response. The emulator's Upload API delivers its file.uploaded webhooks here, signed, as
Uploadcare would deliver them to the deployed stack.
"""

from __future__ import annotations

import json
import threading
import traceback
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
        except Exception:  # API Gateway answers a failed invocation with 500
            traceback.print_exc()  # the function's crash, in the gateway's log (as in CloudWatch)
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


def main(argv: list[str] | None = None) -> int:
    """`python -m devkit.webhook_gateway --port P --state-dir DIR`: the gateway as a process for `make up`, serving
    the webhook function with the local stack's environment (DIR/state.json) until SIGTERM or SIGINT."""
    import argparse  # noqa: PLC0415 - only the process needs these
    import os  # noqa: PLC0415
    import signal  # noqa: PLC0415
    import sys  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415
    from types import FrameType  # noqa: PLC0415

    from devkit.servers import aws_env  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m devkit.webhook_gateway", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True, help="the folder of `make up`'s state.json")
    args = parser.parse_args(argv)
    state = json.loads((args.state_dir / "state.json").read_text(encoding="utf-8"))
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update({**state["environments"]["WebhookFunction"], **aws_env(state["aws_endpoint"])})
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"  # no X-Ray daemon here
    import handle_webhook  # noqa: PLC0415 - once the environment is the stack's
    from uploadcare_s3_copy.observability import metrics  # noqa: PLC0415

    metrics.namespace = os.environ["POWERTOOLS_METRICS_NAMESPACE"]  # read at import, maybe before this environment

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with WebhookGateway(handle_webhook.lambda_handler, port=args.port) as gateway:
        print(gateway.url, flush=True)
        while not stop.wait(0.5):
            pass
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
