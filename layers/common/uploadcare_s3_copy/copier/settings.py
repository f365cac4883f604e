"""The copier function's settings (docs/configuration.md), read once per cold start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from uploadcare_s3_copy.settings import DEFAULT_API_URL, EnvReader, parse_url
from uploadcare_s3_copy.source_changes import SourcePolicy, parse_policy
from uploadcare_s3_copy.specs import CopySpec, read_copy_specs

# Uploadcare retries a webhook for up to 72 hours; an idempotency record must outlive that window.
UPLOADCARE_RETRY_WINDOW_SECONDS = 72 * 3600
DEFAULT_IDEMPOTENCY_TTL_SECONDS = 96 * 3600
DEFAULT_COPY_CONCURRENCY = 10


@dataclass(frozen=True)
class CopierSettings:
    secret_id: str
    dlq_url: str
    idempotency_table: str
    specs: tuple[CopySpec, ...]  # every copy of each file (uploadcare_s3_copy/specs.py); at least one
    api_url: str = DEFAULT_API_URL
    copy_queue_url: str = (
        ""  # optional: lets the copier bring given-back records back sooner than the visibility timeout
    )
    copy_concurrency: int = DEFAULT_COPY_CONCURRENCY
    idempotency_ttl_seconds: int = DEFAULT_IDEMPOTENCY_TTL_SECONDS
    ledger_table: str = ""  # required of the copier's environment; the CLI's direct copy does not use it
    on_source_delete: SourcePolicy = SourcePolicy.KEEP  # what a confirmed file.deleted does to the copies

    def spec(self, name: str) -> CopySpec | None:
        return next((spec for spec in self.specs if spec.name == name), None)

    @property
    def spec_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.specs)


def load_copier_settings(environ: Mapping[str, str]) -> CopierSettings:
    """Raises `ConfigError` naming every missing or malformed variable."""
    read = EnvReader(environ)
    specs = read_copy_specs(read)
    settings = CopierSettings(
        secret_id=read.required("UPLOADCARE_SECRET_ID"),
        dlq_url=read.required("COPY_DLQ_URL"),
        idempotency_table=read.required("IDEMPOTENCY_TABLE"),
        ledger_table=read.required("COPY_LEDGER_TABLE"),
        specs=specs,
        api_url=read.parsed("UPLOADCARE_API_URL", DEFAULT_API_URL, parse_url, "an http(s) URL"),
        copy_queue_url=read.optional("COPY_QUEUE_URL", ""),
        copy_concurrency=read.parsed("COPY_CONCURRENCY", DEFAULT_COPY_CONCURRENCY, int, "a whole number"),
        idempotency_ttl_seconds=read.parsed(
            "IDEMPOTENCY_TTL_SECONDS", DEFAULT_IDEMPOTENCY_TTL_SECONDS, int, "a whole number of seconds"
        ),
        on_source_delete=read.parsed("ON_SOURCE_DELETE", SourcePolicy.KEEP, parse_policy, "keep, tag or delete"),
    )
    read.check(1 <= settings.copy_concurrency <= 50, "COPY_CONCURRENCY must be between 1 and 50")
    read.check(
        settings.idempotency_ttl_seconds > UPLOADCARE_RETRY_WINDOW_SECONDS,
        "IDEMPOTENCY_TTL_SECONDS must exceed Uploadcare's 72-hour retry window (259200)",
    )
    read.done()
    return settings
