"""(Re)writes the webhook sample events in events/, deterministically: `python -m devkit.make_events [--check]`.

Each event is an API Gateway HTTP API (payload format 2.0) request for `POST /webhooks/uploadcare`, exactly as
`sam local invoke -e` passes it to the webhook function. The bodies are Uploadcare v0.7 webhook payloads, signed
with the documented sample signing secret `SAMPLE_SIGNING_SECRET` (events/README.md). Only the webhook events
are written here; other files in events/ are left alone. `--check` writes nothing and fails when a file differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "layers" / "common") not in sys.path:  # `python -m devkit.make_events` from the project root
    sys.path.insert(0, str(ROOT / "layers" / "common"))

from devkit.sqs_poller import to_lambda_record  # noqa: E402 - needs the path above
from uploadcare_s3_copy.webhook.rules import copy_request_from  # noqa: E402
from uploadcare_s3_copy.webhook.signing import sign  # noqa: E402

EVENTS_DIR = ROOT / "events"
SAMPLE_SIGNING_SECRET = "demo-signing-secret"  # noqa: S105 - a published sample, never a real secret
WRONG_SIGNING_SECRET = "not-the-demo-signing-secret"  # noqa: S105 - signs the bad-signature sample
SAMPLE_PUBLIC_KEY = "demopublickey"
SAMPLE_CDN = "https://1s4oyld5dc.ucarecd.net"  # the CDN prefix Uploadcare derives from `demopublickey`
SAMPLE_FILE_UUID = "9f3e6b2a-4c1d-4e8f-a5b7-0d2c8e6f1a43"
SAMPLE_FILE_SIZE = 482113
SAMPLE_FILENAME = "harbour-at-dusk.jpg"
ROUTE = "POST /webhooks/uploadcare"
PATH = "/webhooks/uploadcare"
UPLOADED_AT = "2025-10-05T15:38:08.075064Z"
STORED_AT = "2025-10-05T15:38:09.412305Z"
RECEIVED_AT = "2025-10-05T15:38:08.512Z"


def _file_info(*, stored: bool) -> dict[str, Any]:
    """A file object as `GET /files/<uuid>/` and a v0.7 webhook's `data` carry it."""
    return {
        "datetime_removed": None,
        "datetime_stored": STORED_AT if stored else None,
        "datetime_uploaded": UPLOADED_AT,
        "is_image": True,
        "is_ready": True,
        "mime_type": "image/jpeg",
        "original_file_url": f"{SAMPLE_CDN}/{SAMPLE_FILE_UUID}/{SAMPLE_FILENAME}",
        "original_filename": SAMPLE_FILENAME,
        "size": SAMPLE_FILE_SIZE,
        "url": f"https://api.uploadcare.com/files/{SAMPLE_FILE_UUID}/",
        "uuid": SAMPLE_FILE_UUID,
        "variations": None,
        "content_info": {
            "mime": {"mime": "image/jpeg", "type": "image", "subtype": "jpeg"},
            "image": {
                "color_mode": "RGB",
                "format": "JPEG",
                "height": 1280,
                "width": 1920,
                "orientation": 1,
                "dpi": [72, 72],
                "geo_location": None,
                "datetime_original": "2025-10-04T19:12:40",
                "sequence": False,
            },
        },
        "metadata": {},
        "appdata": {},
    }


REMOVED_AT = "2025-10-07T08:02:11.530117Z"
CLAMAV_VERDICT = {  # appdata of the ClamAV add-on (REST API v0.7 `application_data`) for an infected file
    "uc_clamav_virus_scan": {
        "data": {"infected": True, "infected_with": "Win.Test.EICAR_HDB-1"},
        "version": "0.104.2",
        "datetime_created": "2025-10-05T15:38:10.101302Z",
        "datetime_updated": "2025-10-05T15:38:10.101302Z",
    }
}


def webhook_payload(
    event: str, *, hook_id: int, stored: bool = False, removed: bool = False, infected: bool = False
) -> dict[str, Any]:
    """A v0.7 webhook body (docs/uploadcare-protocol.md, "Webhooks") for the sample file. For file.deleted the
    file object is assumed to carry `datetime_removed` (unrecorded: the copier asks Uploadcare anyway)."""
    data = _file_info(stored=stored)
    if removed:
        data["datetime_removed"] = REMOVED_AT
    if infected:
        data["appdata"] = CLAMAV_VERDICT
    return {
        "initiator": {
            "type": "api",
            "detail": {
                "request_id": "5c0b0f4e-8b0a-4d1b-9a3e-2f6c7d8e9a10",
                "addon_name": None,
                "source_file_uuid": None,
            },
        },
        "hook": {
            "id": hook_id,
            "project_id": 42797,
            "project_pub_key": SAMPLE_PUBLIC_KEY,
            "event": event,
            "target": "https://abcd123456.execute-api.us-east-1.amazonaws.com/webhooks/uploadcare",
            "is_active": True,
            "version": "0.7",
            "created_at": "2025-10-01T09:00:00.000000Z",
            "updated_at": "2025-10-01T09:00:00.000000Z",
        },
        "data": data,
        "file": f"{SAMPLE_CDN}/{SAMPLE_FILE_UUID}/",
    }


def body_text(payload: dict[str, Any]) -> str:
    """The body as sent on the wire: compact JSON, UTF-8 (like the captured deliveries in tests/vectors)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def http_api_event(
    body: str, signature: str | None, *, method: str = "POST", is_base64_encoded: bool = False
) -> dict[str, Any]:
    """An HTTP API payload 2.0 event carrying `body` (already base64 text when `is_base64_encoded`)."""
    user_agent = "uploadcare-webhook-sample"  # Uploadcare's real User-Agent is not documented
    headers = {
        "accept-encoding": "gzip",
        "content-length": str(len(body.encode("utf-8"))),
        "content-type": "application/json",
        "host": "abcd123456.execute-api.us-east-1.amazonaws.com",
        "user-agent": user_agent,
        "x-amzn-trace-id": "Root=1-68e29190-4b1e2f0a9c3d5e7f01234567",
        "x-forwarded-for": "203.0.113.10",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if signature is not None:
        headers["x-uc-signature"] = signature
    route = f"{method} {PATH}"
    return {
        "version": "2.0",
        "routeKey": route if method == "POST" else "$default",
        "rawPath": PATH,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcd123456",
            "domainName": "abcd123456.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abcd123456",
            "http": {
                "method": method,
                "path": PATH,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": user_agent,
            },
            "requestId": "Rb7sdjV3IAMEVxw=",
            "routeKey": route if method == "POST" else "$default",
            "stage": "$default",
            "time": "05/Oct/2025:15:38:08 +0000",
            "timeEpoch": 1759678688000,
        },
        "body": body,
        "isBase64Encoded": is_base64_encoded,
    }


def signed_event(payload: dict[str, Any], secret: str = SAMPLE_SIGNING_SECRET) -> dict[str, Any]:
    text = body_text(payload)
    return http_api_event(text, sign(secret, text.encode("utf-8")))


def sqs_event(payload: dict[str, Any]) -> dict[str, Any]:
    """The Lambda SQS event the copier gets for the sample upload: the webhook's own copy request, as queued."""
    request = replace(copy_request_from(payload), received_at=RECEIVED_AT)
    return {
        "Records": [
            to_lambda_record(
                {
                    "MessageId": "3c1a2b4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                    "ReceiptHandle": "AQEBsample-receipt-handle",
                    "Body": request.to_message(),
                    "Attributes": {
                        "ApproximateReceiveCount": "1",
                        "SentTimestamp": "1759678688512",
                        "SenderId": "AROAEXAMPLE:WebhookFunction",
                        "ApproximateFirstReceiveTimestamp": "1759678688600",
                    },
                },
                "arn:aws:sqs:us-east-1:123456789012:uploadcare-s3-copy-CopyQueue",
            )
        ]
    }


def render_events() -> dict[str, str]:
    """File name in events/ -> its exact content."""
    uploaded = webhook_payload("file.uploaded", hook_id=1283756)
    stored = webhook_payload("file.stored", hook_id=1283757, stored=True)
    events = {
        "webhook-file-uploaded.json": signed_event(uploaded),
        "webhook-bad-signature.json": signed_event(uploaded, WRONG_SIGNING_SECRET),
        "webhook-other-event.json": signed_event(stored),
        "webhook-file-deleted.json": signed_event(
            webhook_payload("file.deleted", hook_id=1283758, stored=True, removed=True)
        ),
        "webhook-file-infected.json": signed_event(
            webhook_payload("file.infected", hook_id=1283759, stored=True, infected=True)
        ),
        "webhook-file-info-updated-infected.json": signed_event(
            webhook_payload("file.info_updated", hook_id=1283760, stored=True, infected=True)
        ),
        "sqs-copy-request.json": sqs_event(uploaded),
    }
    return {name: json.dumps(event, indent=2, ensure_ascii=False) + "\n" for name, event in events.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    parser.add_argument("--dir", type=Path, default=EVENTS_DIR, help="where to write (default: events/)")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render_events().items():
        path: Path = args.dir / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    verb = "out of date" if args.check else "written"
    print(f"{verb}: {', '.join(stale)}" if stale else "events are up to date")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
