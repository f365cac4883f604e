"""The copier function's settings (docs/configuration.md), read once per cold start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from uploadcare_s3_copy.copier.patterns import PatternError, validate_pattern
from uploadcare_s3_copy.settings import BUCKET_NAME, DEFAULT_API_URL, EnvReader, parse_bool, parse_url

DEFAULT_PATTERN = "${default}"
# Uploadcare retries a webhook for up to 72 hours; an idempotency record must outlive that window.
UPLOADCARE_RETRY_WINDOW_SECONDS = 72 * 3600
DEFAULT_IDEMPOTENCY_TTL_SECONDS = 96 * 3600
DEFAULT_COPY_CONCURRENCY = 10


@dataclass(frozen=True)
class CopierSettings:
    secret_id: str
    dlq_url: str
    idempotency_table: str
    copy_target: str
    target_bucket: str
    api_url: str = DEFAULT_API_URL
    copy_queue_url: str = (
        ""  # optional: lets the copier bring given-back records back sooner than the visibility timeout
    )
    target_prefix: str = ""
    copy_pattern: str = DEFAULT_PATTERN
    make_public: bool = False
    copy_concurrency: int = DEFAULT_COPY_CONCURRENCY
    idempotency_ttl_seconds: int = DEFAULT_IDEMPOTENCY_TTL_SECONDS
    ledger_table: str = ""  # required of the copier's environment; the CLI's direct copy does not use it


def load_copier_settings(environ: Mapping[str, str]) -> CopierSettings:
    """Raises `ConfigError` naming every missing or malformed variable."""
    read = EnvReader(environ)
    pattern = read.optional("COPY_PATTERN", DEFAULT_PATTERN) or DEFAULT_PATTERN
    try:
        validate_pattern(pattern)
    except PatternError as error:
        read.check(False, f"COPY_PATTERN: {error}")
    bucket = read.required("TARGET_BUCKET")
    read.check(not bucket or bool(BUCKET_NAME.match(bucket)), f"TARGET_BUCKET={bucket!r} is not an S3 bucket name")
    settings = CopierSettings(
        secret_id=read.required("UPLOADCARE_SECRET_ID"),
        dlq_url=read.required("COPY_DLQ_URL"),
        idempotency_table=read.required("IDEMPOTENCY_TABLE"),
        ledger_table=read.required("COPY_LEDGER_TABLE"),
        copy_target=read.required("COPY_TARGET"),
        target_bucket=bucket,
        api_url=read.parsed("UPLOADCARE_API_URL", DEFAULT_API_URL, parse_url, "an http(s) URL"),
        copy_queue_url=read.optional("COPY_QUEUE_URL", ""),
        target_prefix=read.optional("TARGET_PREFIX", ""),
        copy_pattern=pattern,
        make_public=read.parsed("MAKE_PUBLIC", False, parse_bool, "true or false"),
        copy_concurrency=read.parsed("COPY_CONCURRENCY", DEFAULT_COPY_CONCURRENCY, int, "a whole number"),
        idempotency_ttl_seconds=read.parsed(
            "IDEMPOTENCY_TTL_SECONDS", DEFAULT_IDEMPOTENCY_TTL_SECONDS, int, "a whole number of seconds"
        ),
    )
    read.check(1 <= settings.copy_concurrency <= 50, "COPY_CONCURRENCY must be between 1 and 50")
    read.check(
        settings.idempotency_ttl_seconds > UPLOADCARE_RETRY_WINDOW_SECONDS,
        "IDEMPOTENCY_TTL_SECONDS must exceed Uploadcare's 72-hour retry window (259200)",
    )
    read.done()
    return settings
