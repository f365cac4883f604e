"""The reconciler function's settings (docs/configuration.md), read once per cold start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from uploadcare_s3_copy.ledger import DEFAULT_SPEC
from uploadcare_s3_copy.settings import DEFAULT_API_URL, EnvReader, parse_bool, parse_url
from uploadcare_s3_copy.source_changes import SourcePolicy, parse_policy
from uploadcare_s3_copy.specs import CopySpec, read_copy_specs

DEFAULT_OVERLAP_SECONDS = 86400  # each scheduled run looks a day further back than where the last one ended
DEFAULT_GRACE_SECONDS = 900  # files younger than this are the webhook path's
MAX_OVERLAP_SECONDS = 31 * 86400
MAX_GRACE_SECONDS = 86400


@dataclass(frozen=True)
class ReconcilerSettings:
    secret_id: str
    copy_queue_url: str
    ledger_table: str
    api_url: str = DEFAULT_API_URL
    skip_derived: bool = False
    overlap_seconds: int = DEFAULT_OVERLAP_SECONDS
    grace_seconds: int = DEFAULT_GRACE_SECONDS
    # every copy spec of the deployment (the names, and which files each copies)
    specs: tuple[CopySpec, ...] = (CopySpec(DEFAULT_SPEC, "", ""),)
    # other than keep: removed files of the window are looked for too, and copies still standing get a file.deleted
    on_source_delete: SourcePolicy = SourcePolicy.KEEP


def load_reconciler_settings(environ: Mapping[str, str]) -> ReconcilerSettings:
    """Raises `ConfigError` naming every missing or malformed variable."""
    read = EnvReader(environ)
    specs = read_copy_specs(read, single_required=False)
    settings = ReconcilerSettings(
        specs=specs,
        secret_id=read.required("UPLOADCARE_SECRET_ID"),
        copy_queue_url=read.required("COPY_QUEUE_URL"),
        ledger_table=read.required("COPY_LEDGER_TABLE"),
        api_url=read.parsed("UPLOADCARE_API_URL", DEFAULT_API_URL, parse_url, "an http(s) URL"),
        skip_derived=read.parsed("SKIP_DERIVED", False, parse_bool, "true or false"),
        overlap_seconds=read.parsed(
            "RECONCILE_OVERLAP_SECONDS", DEFAULT_OVERLAP_SECONDS, int, "a whole number of seconds"
        ),
        grace_seconds=read.parsed("RECONCILE_GRACE_SECONDS", DEFAULT_GRACE_SECONDS, int, "a whole number of seconds"),
        on_source_delete=read.parsed("ON_SOURCE_DELETE", SourcePolicy.KEEP, parse_policy, "keep, tag or delete"),
    )
    read.check(
        0 <= settings.overlap_seconds <= MAX_OVERLAP_SECONDS,
        f"RECONCILE_OVERLAP_SECONDS must be between 0 and {MAX_OVERLAP_SECONDS}",
    )
    read.check(
        0 <= settings.grace_seconds <= MAX_GRACE_SECONDS,
        f"RECONCILE_GRACE_SECONDS must be between 0 and {MAX_GRACE_SECONDS}",
    )
    read.done()
    return settings
