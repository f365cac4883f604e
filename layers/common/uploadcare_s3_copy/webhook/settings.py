"""The webhook function's settings (docs/configuration.md), read once per cold start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from uploadcare_s3_copy.settings import EnvReader, parse_bool

# A file event is a few KiB; the cap is at most 1 MiB (docs/configuration.md).
DEFAULT_MAX_BODY_BYTES = 256 * 1024
MAX_BODY_BYTES_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class WebhookSettings:
    secret_id: str
    copy_queue_url: str
    skip_derived: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


def load_webhook_settings(environ: Mapping[str, str]) -> WebhookSettings:
    """Raises `ConfigError` naming every missing or malformed variable."""
    read = EnvReader(environ)
    settings = WebhookSettings(
        secret_id=read.required("UPLOADCARE_SECRET_ID"),
        copy_queue_url=read.required("COPY_QUEUE_URL"),
        skip_derived=read.parsed("SKIP_DERIVED", False, parse_bool, "true or false"),
        max_body_bytes=read.parsed("WEBHOOK_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, int, "a whole number of bytes"),
    )
    read.check(
        0 < settings.max_body_bytes <= MAX_BODY_BYTES_LIMIT,
        f"WEBHOOK_MAX_BODY_BYTES must be between 1 and {MAX_BODY_BYTES_LIMIT}",
    )
    read.done()
    return settings
