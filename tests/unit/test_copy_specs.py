"""COPY_SPECS: parsed into frozen specs at cold start, every problem named in one error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from uploadcare_s3_copy.copier.settings import load_copier_settings
from uploadcare_s3_copy.reconciler.settings import load_reconciler_settings
from uploadcare_s3_copy.settings import ConfigError
from uploadcare_s3_copy.specs import CopySpec, CopySpecsError, parse_copy_specs

BASE_ENV = {
    "UPLOADCARE_SECRET_ID": "uploadcare",
    "COPY_DLQ_URL": "http://localhost/dlq",
    "IDEMPOTENCY_TABLE": "idempotency",
    "COPY_LEDGER_TABLE": "ledger",
}
ORIGINAL = {"name": "original", "target": "backup", "bucket": "backup-bucket"}
WEB = {"name": "web", "target": "cdn", "bucket": "cdn-bucket", "effects": "-/resize/1200x/-/format/webp/"}


def problems_of(value: Any) -> list[str]:
    with pytest.raises(CopySpecsError) as raised:
        parse_copy_specs(value if isinstance(value, str) else json.dumps(value))
    return raised.value.problems


def test_two_specs_parse_with_their_defaults() -> None:
    original, web = parse_copy_specs(json.dumps([ORIGINAL, WEB]))

    assert original == CopySpec("original", "backup", "backup-bucket")
    assert original.pattern == "${default}"
    assert not original.processed
    assert original.mime_types == ()
    assert web.processed
    assert web.mime_types == ("image/*",)
    assert web.source("3e8a90a4-4b3a-4b6b-b7d5-8b6f4b4e0f0a") == (
        "3e8a90a4-4b3a-4b6b-b7d5-8b6f4b4e0f0a/-/resize/1200x/-/format/webp/"
    )


def test_effects_without_the_final_slash_are_completed() -> None:
    (spec,) = parse_copy_specs(json.dumps([{**WEB, "effects": "-/preview/500x500"}]))

    assert spec.effects == "-/preview/500x500/"


def test_pattern_null_is_kept_as_none_and_predicts_nothing() -> None:
    (spec,) = parse_copy_specs(json.dumps([{**ORIGINAL, "pattern": None}]))

    assert spec.pattern is None
    assert spec.predicted_key("3e8a90a4-4b3a-4b6b-b7d5-8b6f4b4e0f0a", "a.jpg") is None
    assert spec.idempotency_key("u")["pattern"] == ""


def test_predicted_key_of_a_processed_version_carries_the_effects() -> None:
    (spec,) = parse_copy_specs(json.dumps([{**WEB, "prefix": "web/", "pattern": "${uuid}/${auto_filename}"}]))

    key = spec.predicted_key("3e8a90a4-4b3a-4b6b-b7d5-8b6f4b4e0f0a", "photo.jpg")

    assert key == "web/3e8a90a4-4b3a-4b6b-b7d5-8b6f4b4e0f0a/photo-/resize/1200x/-/format/webp/.jpg"


@pytest.mark.parametrize(
    ("mime_types", "mime_type", "copied"),
    [
        (["image/*"], "image/jpeg", True),
        (["image/*"], "application/pdf", False),
        (["image/*"], "IMAGE/PNG; charset=binary", True),
        (["application/pdf"], "application/pdf", True),
        (["*/*"], "video/mp4", True),
        (["image/*"], "", True),  # unknown type: tried, Uploadcare decides
    ],
)
def test_mime_types_choose_the_files_a_spec_copies(mime_types: list[str], mime_type: str, copied: bool) -> None:
    (spec,) = parse_copy_specs(json.dumps([{**WEB, "mime_types": mime_types}]))

    assert spec.applies_to(mime_type) is copied


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("not json", "COPY_SPECS is not JSON"),
        ({"name": "x"}, "not a JSON array"),
        ([], "has 0 copy specs"),
        ([{**ORIGINAL, "name": f"s{n}", "target": f"t{n}"} for n in range(11)], "has 11 copy specs"),
        (["original"], "COPY_SPECS[0] is not a JSON object"),
        ([{**ORIGINAL, "name": "Bad_Name"}], "name 'Bad_Name' is not a spec name"),
        ([{**ORIGINAL, "name": "-lead"}], "name '-lead' is not a spec name"),
        ([ORIGINAL, {**ORIGINAL, "target": "other"}], "names copy spec 'original' twice"),
        ([{**ORIGINAL, "pattern": "${uuid}/${size}"}], "unknown placeholder ${size}"),
        ([{**ORIGINAL, "pattern": 7}], "pattern 7 is not a string or null"),
        ([{**ORIGINAL, "effects": "resize/100x"}], "are not CDN operations"),
        ([{**ORIGINAL, "effects": "-/resize/100x/?x=1"}], "are not CDN operations"),
        ([{**ORIGINAL, "bucket": "Not_A_Bucket"}], "bucket 'Not_A_Bucket' is not an S3 bucket name"),
        ([{**ORIGINAL, "bucket": None}], "bucket None is not an S3 bucket name"),
        ([{"name": "original", "bucket": "b-bucket"}], "target None is not an Uploadcare custom storage name"),
        ([{**ORIGINAL, "make_public": "yes"}], "make_public 'yes' is not true or false"),
        ([{**ORIGINAL, "mime_types": "image/*"}], "mime_types 'image/*' is not a list"),
        ([{**ORIGINAL, "prefix": "a*"}], "prefix 'a*' is not a key prefix"),
        ([{**ORIGINAL, "colour": "red"}], "unknown field colour"),
        ([ORIGINAL, {**ORIGINAL, "name": "again"}], "'original' and 'again' make the same copy"),
    ],
)
def test_each_bad_value_is_named(value: Any, named: str) -> None:
    problems = problems_of(value)

    assert any(named in problem for problem in problems), problems


def test_every_problem_of_every_spec_is_named_at_once() -> None:
    problems = problems_of([{**ORIGINAL, "bucket": "B"}, {**WEB, "name": "web", "effects": "nope", "target": ""}])

    assert len(problems) == 3
    assert "COPY_SPECS[0] (original): bucket" in problems[0]
    assert all(problem.startswith("COPY_SPECS[1] (web)") for problem in problems[1:])


def test_copier_cold_start_fails_with_one_error_naming_each_problem() -> None:
    env = {**BASE_ENV, "COPY_SPECS": json.dumps([{**ORIGINAL, "bucket": "B"}, {**WEB, "effects": "x"}])}
    del env["COPY_DLQ_URL"]

    with pytest.raises(ConfigError) as raised:
        load_copier_settings(env)

    text = str(raised.value)
    assert "COPY_DLQ_URL is required" in text
    assert "bucket 'B'" in text
    assert "effects 'x'" in text


def test_copy_specs_replace_the_single_copy_variables() -> None:
    settings = load_copier_settings({**BASE_ENV, "COPY_SPECS": json.dumps([ORIGINAL, WEB])})

    assert settings.spec_names == ("original", "web")
    assert settings.spec("web") is not None
    assert settings.spec("nope") is None


def test_without_copy_specs_the_single_copy_variables_are_required() -> None:
    with pytest.raises(ConfigError) as raised:
        load_copier_settings(BASE_ENV)

    assert raised.value.problems == ["COPY_TARGET is required", "TARGET_BUCKET is required"]


def test_the_reconciler_reads_the_spec_names_and_their_filters() -> None:
    env = {"UPLOADCARE_SECRET_ID": "s", "COPY_QUEUE_URL": "http://q", "COPY_LEDGER_TABLE": "ledger"}

    assert [spec.name for spec in load_reconciler_settings(env).specs] == ["original"]
    specs = load_reconciler_settings({**env, "COPY_SPECS": json.dumps([ORIGINAL, WEB])}).specs
    assert [(spec.name, spec.mime_types) for spec in specs] == [("original", ()), ("web", ("image/*",))]
    with pytest.raises(ConfigError, match="COPY_SPECS is not JSON"):
        load_reconciler_settings({**env, "COPY_SPECS": "["})
