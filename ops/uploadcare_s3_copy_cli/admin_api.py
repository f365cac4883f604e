"""The Uploadcare REST calls only an operator makes (project, webhooks), on top of the functions' signed client.

No Lambda function needs these, so they live with the command line and never reach the Lambda layer.
"""

from __future__ import annotations

from typing import Any

from uploadcare_s3_copy.reasons import Reason, TransientFailure
from uploadcare_s3_copy.uploadcare import DEFAULT_TIMEOUT, Timeout, UploadcareClient

WEBHOOK_VERSION = "0.7"


class AdminClient(UploadcareClient):
    """`UploadcareClient` plus `GET /project/`, `GET /webhooks/` and `POST /webhooks/`."""

    def get_project(self, timeout: Timeout = DEFAULT_TIMEOUT) -> dict[str, Any]:
        return self.json_object(self.request("GET", "/project/", timeout=timeout))

    def list_webhooks(self, timeout: Timeout = DEFAULT_TIMEOUT) -> list[dict[str, Any]]:
        data = self.request("GET", "/webhooks/", timeout=timeout).data
        if not isinstance(data, list):
            raise TransientFailure(Reason.SERVER_ERROR, "GET /webhooks/ did not answer a list")
        return data

    def create_webhook(
        self,
        target_url: str,
        *,
        signing_secret: str,
        event: str = "file.uploaded",
        is_active: bool = True,
        timeout: Timeout = DEFAULT_TIMEOUT,
    ) -> dict[str, Any]:
        """`POST /webhooks/` with `version` 0.7 sent explicitly (requests without it were treated as older)."""
        payload = {
            "target_url": target_url,
            "event": event,
            "is_active": is_active,
            "signing_secret": signing_secret,
            "version": WEBHOOK_VERSION,
        }
        return self.json_object(self.request("POST", "/webhooks/", payload, timeout))
