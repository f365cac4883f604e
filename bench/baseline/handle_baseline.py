"""BASELINE FOR THE BENCHMARK ONLY — not product code, never deployed. `make bench` compares the product against it.

A webhook function written the obvious way, as the Powertools and pyuploadcare documentation would lead one to:
an `APIGatewayHttpResolver` with validation and a Pydantic model of the payload, Logger/Tracer/Metrics like the
product (so both carry the same observability), the signature checked in the route, then the copy done right
there in the request: pyuploadcare's remote copy (synchronous) and boto3 `head_object` to prove it. One file per
request, no queue, no idempotency. Clients are created at import, settings read from the environment at import.

It is functional (the benchmark checks every answer) but deliberately not hardened: it is the thing to beat.
pyuploadcare is pointed at the Uploadcare emulator by its `api_base` setting and signs with the keys read from the
same secret as the product's (`Uploadcare` scheme, `pyuploadcare.api.auth.UploadcareAuth`).

`source` is the bare file UUID, through the client's `files_api.remote_copy`: `File.create_remote_copy` sends
`<uuid>/` (its CDN path), which the local emulator refuses as a bad source (it accepts a UUID or a CDN URL only).
The two calls are otherwise the same single `POST /files/remote_copy/`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any
from urllib.parse import urlsplit

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field
from pyuploadcare import Uploadcare  # type: ignore[import-untyped]

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver(enable_validation=True)

SECRET_ID = os.environ["UPLOADCARE_SECRET_ID"]
API_URL = os.environ.get("UPLOADCARE_API_URL", "https://api.uploadcare.com/")
COPY_TARGET = os.environ["COPY_TARGET"]
TARGET_BUCKET = os.environ["TARGET_BUCKET"]
COPY_PATTERN = os.environ.get("COPY_PATTERN", "${default}")
s3 = boto3.client("s3")
_uploadcare: Uploadcare | None = None


class FileData(BaseModel):
    uuid: str = Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    size: int = Field(ge=0)
    original_filename: str | None = None
    mime_type: str | None = None


class Hook(BaseModel):
    event: str


class UploadcareWebhook(BaseModel):
    hook: Hook
    data: FileData
    file: str | None = None


def _secret() -> dict[str, str]:
    value: dict[str, str] = parameters.get_secret(SECRET_ID, transform="json")
    return value


def uploadcare() -> Uploadcare:
    global _uploadcare  # noqa: PLW0603 - one client per container
    if _uploadcare is None:
        keys = _secret()
        _uploadcare = Uploadcare(public_key=keys["public_key"], secret_key=keys["secret_key"], api_base=API_URL)
    return _uploadcare


def _json(status: int, body: str) -> Response[str]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


@app.post("/webhooks/uploadcare")
def webhook(payload: UploadcareWebhook) -> Response[str]:
    raw = app.current_event.decoded_body or ""
    expected = "v1=" + hmac.new(_secret()["webhook_signing_secret"].encode(), raw.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(app.current_event.headers.get("x-uc-signature", ""), expected):
        return _json(401, '{"status": "rejected"}')
    if payload.hook.event != "file.uploaded":
        return _json(200, '{"status": "ignored"}')
    answer = uploadcare().files_api.remote_copy(
        source=payload.data.uuid, target=COPY_TARGET, make_public=False, pattern=COPY_PATTERN
    )
    location = urlsplit(str(answer.result))  # s3://bucket/key
    head = s3.head_object(Bucket=location.netloc, Key=location.path.lstrip("/"))
    if location.netloc != TARGET_BUCKET or head["ContentLength"] != payload.data.size:
        return _json(502, '{"status": "verification_failed"}')
    metrics.add_metric(name="CopySucceeded", unit=MetricUnit.Count, value=1)
    return _json(200, '{"status": "copied"}')


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
