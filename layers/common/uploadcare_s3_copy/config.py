"""The configuration contract (design.md, "Configuration contract"), read once per cold start.

Each function has its own frozen settings object. Loading collects every problem first and raises one
`ConfigError` that names all of them, so a misconfigured stack is fixed in one deploy, not one per variable.
Logic receives these values as arguments and never reads `os.environ` itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from uploadcare_s3_copy.patterns import PatternError, validate_pattern

DEFAULT_API_URL = "https://api.uploadcare.com/"
DEFAULT_PATTERN = "${default}"
# Uploadcare retries a webhook for up to 72 hours; an idempotency record must outlive that window.
UPLOADCARE_RETRY_WINDOW_SECONDS = 72 * 3600
DEFAULT_IDEMPOTENCY_TTL_SECONDS = 96 * 3600
# A file event is a few KiB; design.md caps the body at 1 MiB at most.
DEFAULT_MAX_BODY_BYTES = 256 * 1024
MAX_BODY_BYTES_LIMIT = 1024 * 1024
DEFAULT_COPY_CONCURRENCY = 10

_T = TypeVar("_T")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


class ConfigError(Exception):
    """One or more environment variables are missing or malformed; the message names every one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class WebhookSettings:
    secret_id: str
    copy_queue_url: str
    skip_derived: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


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


class _Reader:
    """Reads variables from an environment mapping, collecting every problem instead of stopping at the first."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.problems: list[str] = []

    def required(self, name: str) -> str:
        value = self._environ.get(name, "").strip()
        if not value:
            self.problems.append(f"{name} is required")
        return value

    def optional(self, name: str, default: str) -> str:
        return self._environ.get(name, default).strip()

    def parsed(self, name: str, default: _T, parse: Callable[[str], _T], expected: str) -> _T:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            return parse(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not {expected}")
            return default

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)

    def done(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


def parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"true", "1", "yes"}:
        return True
    if lowered in {"false", "0", "no"}:
        return False
    raise ValueError(raw)


def _parse_url(raw: str) -> str:
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", raw):
        raise ValueError(raw)
    return raw if raw.endswith("/") else raw + "/"


def load_webhook_settings(environ: Mapping[str, str]) -> WebhookSettings:
    read = _Reader(environ)
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


def load_copier_settings(environ: Mapping[str, str]) -> CopierSettings:
    read = _Reader(environ)
    pattern = read.optional("COPY_PATTERN", DEFAULT_PATTERN) or DEFAULT_PATTERN
    try:
        validate_pattern(pattern)
    except PatternError as error:
        read.check(False, f"COPY_PATTERN: {error}")
    bucket = read.required("TARGET_BUCKET")
    read.check(not bucket or bool(_BUCKET_NAME.match(bucket)), f"TARGET_BUCKET={bucket!r} is not an S3 bucket name")
    settings = CopierSettings(
        secret_id=read.required("UPLOADCARE_SECRET_ID"),
        dlq_url=read.required("COPY_DLQ_URL"),
        idempotency_table=read.required("IDEMPOTENCY_TABLE"),
        copy_target=read.required("COPY_TARGET"),
        target_bucket=bucket,
        api_url=read.parsed("UPLOADCARE_API_URL", DEFAULT_API_URL, _parse_url, "an http(s) URL"),
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
