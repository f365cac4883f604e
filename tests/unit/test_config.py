"""The configuration contract: parsed once, every problem named in one error."""

from __future__ import annotations

import pytest

from uploadcare_s3_copy.copier.settings import load_copier_settings
from uploadcare_s3_copy.settings import DEFAULT_API_URL, ConfigError
from uploadcare_s3_copy.webhook.settings import load_webhook_settings

COPIER_ENV = {
    "UPLOADCARE_SECRET_ID": "uc-keys",
    "COPY_DLQ_URL": "http://localhost/q/dlq",
    "IDEMPOTENCY_TABLE": "idem",
    "COPY_LEDGER_TABLE": "ledger",
    "COPY_TARGET": "mystorage",
    "TARGET_BUCKET": "my-bucket",
}


def test_copier_defaults_apply_when_only_the_required_variables_are_set() -> None:
    settings = load_copier_settings(COPIER_ENV)

    assert settings.api_url == DEFAULT_API_URL
    (spec,) = settings.specs
    assert (spec.name, spec.target, spec.bucket) == ("original", "mystorage", "my-bucket")
    assert spec.pattern == "${default}"
    assert spec.make_public is False
    assert spec.prefix == ""
    assert spec.effects == ""
    assert settings.idempotency_ttl_seconds > 72 * 3600


def test_one_error_names_every_missing_variable() -> None:
    with pytest.raises(ConfigError) as raised:
        load_copier_settings({})

    message = str(raised.value)
    for name in COPIER_ENV:
        assert name in message
    assert len(raised.value.problems) == len(COPIER_ENV)


def test_malformed_values_are_named_with_what_was_expected() -> None:
    env = {
        **COPIER_ENV,
        "MAKE_PUBLIC": "maybe",
        "COPY_PATTERN": "${uuid}/${name}",
        "UPLOADCARE_API_URL": "ftp://x",
        "COPY_CONCURRENCY": "ten",
        "TARGET_BUCKET": "Not_A_Bucket",
        "IDEMPOTENCY_TTL_SECONDS": "3600",
    }

    with pytest.raises(ConfigError) as raised:
        load_copier_settings(env)

    problems = " | ".join(raised.value.problems)
    assert "MAKE_PUBLIC='maybe' is not true or false" in problems
    assert "COPY_PATTERN: unknown placeholder ${name}" in problems
    assert "UPLOADCARE_API_URL='ftp://x'" in problems
    assert "COPY_CONCURRENCY='ten'" in problems
    assert "TARGET_BUCKET='Not_A_Bucket'" in problems
    assert "IDEMPOTENCY_TTL_SECONDS must exceed" in problems


def test_api_url_gets_its_trailing_slash() -> None:
    settings = load_copier_settings({**COPIER_ENV, "UPLOADCARE_API_URL": "http://127.0.0.1:8080"})

    assert settings.api_url == "http://127.0.0.1:8080/"


def test_settings_are_frozen() -> None:
    settings = load_copier_settings(COPIER_ENV)

    with pytest.raises(AttributeError):
        settings.copy_queue_url = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        settings.specs[0].target = "other"  # type: ignore[misc]


def test_webhook_settings() -> None:
    settings = load_webhook_settings(
        {"UPLOADCARE_SECRET_ID": "s", "COPY_QUEUE_URL": "http://q", "SKIP_DERIVED": "TRUE"}
    )

    assert settings.skip_derived is True
    assert settings.max_body_bytes == 256 * 1024


def test_webhook_body_cap_is_at_most_one_mebibyte() -> None:
    with pytest.raises(ConfigError, match="WEBHOOK_MAX_BODY_BYTES"):
        load_webhook_settings({"UPLOADCARE_SECRET_ID": "s", "COPY_QUEUE_URL": "q", "WEBHOOK_MAX_BODY_BYTES": "2000000"})
