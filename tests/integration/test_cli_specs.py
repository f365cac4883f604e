"""The operations CLI with several copy specs (COPY_SPECS): `--spec` on copy, backfill and audit, and doctor's
check of every spec. In-process through `main(argv)`, against the moto server and the emulator over loopback, with
two specs: the original into the stack's bucket and a processed web version into a second bucket."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devkit.emulator import EmulatedFile
from devkit.local_resources import read_queue
from tests.integration.test_copy_specs import Specs, specs
from uploadcare_s3_copy_cli.app import main

__all__ = ["specs"]  # the fixture

WEBHOOK_URL = "https://specs.execute-api.localhost/webhooks/uploadcare"
JANUARY = datetime(2024, 1, 1, tzinfo=UTC)


class Cli:
    def __init__(self, specs: Specs, cache: Path) -> None:
        self.specs = specs
        self.environ = {
            **specs.stack.webhook_env(),
            **specs.stack.copier_env(specs.emulator.url),
            "COPY_SPECS": json.dumps([specs.original(), specs.web()]),
            "EXTRA_TARGET_BUCKETS": specs.cdn_bucket,
            "WEBHOOK_URL": WEBHOOK_URL,
            "XDG_CACHE_HOME": str(cache),
        }

    def run(self, *argv: str, **changes: str) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), environ={**self.environ, **changes}, out=out, err=err, sleep=lambda _s: None)
        return code, out.getvalue() + err.getvalue()

    def images(self, count: int) -> list[EmulatedFile]:
        return [
            self.specs.emulator.add_file(
                original_filename=f"photo-{n}.jpg",
                size=3000 + n,
                mime_type="image/jpeg",
                datetime_uploaded=JANUARY + timedelta(minutes=n),
            )
            for n in range(count)
        ]

    def queued(self) -> list[dict[str, Any]]:
        return [json.loads(message["Body"]) for message in read_queue(self.specs.stack.queue_url)]


@pytest.fixture
def cli(specs: Specs, tmp_path: Path) -> Cli:
    return Cli(specs, tmp_path / "cache")


def test_copy_direct_with_a_spec_copies_only_that_spec_and_records_its_proof(cli: Cli) -> None:
    (file,) = cli.images(1)

    code, text = cli.run("copy", "--direct", "--spec", "web", file.uuid)

    web_key = cli.specs.web_key(file)
    assert code == 0, text
    assert f"✓ {file.uuid} web  s3://{cli.specs.cdn_bucket}/{web_key}  " in text
    assert "in the ledger" in text
    assert cli.specs.emulator.copy_calls(file.uuid, "cdn") == 1
    assert cli.specs.emulator.copy_calls(file.uuid, "backup") == 0
    web = cli.specs.item(file, "web")
    assert web is not None
    assert (web.verified, web.bucket, web.key) == (True, cli.specs.cdn_bucket, web_key)
    assert cli.specs.item(file, "original") is None


def test_copy_direct_without_a_spec_copies_every_spec_in_order_and_skips_what_a_spec_does_not_copy(cli: Cli) -> None:
    (photo,) = cli.images(1)
    pdf = cli.specs.emulator.add_file(original_filename="report.pdf", size=900, mime_type="application/pdf")

    code, text = cli.run("copy", "--direct", photo.uuid, pdf.uuid)

    lines = [line for line in text.splitlines() if line[:1] in "✓✗·"]
    assert code == 0, text
    assert [line.split("  ")[0] for line in lines] == [
        f"✓ {photo.uuid} original",
        f"✓ {photo.uuid} web",
        f"✓ {pdf.uuid} original",
        f"· {pdf.uuid} web",
    ]
    assert "application/pdf is not a type copy spec web copies" in text
    assert cli.specs.emulator.copy_calls(pdf.uuid, "cdn") == 0


def test_copy_queues_requests_naming_the_chosen_specs_and_refuses_an_unknown_one(cli: Cli) -> None:
    (file,) = cli.images(1)

    code, text = cli.run("copy", "--spec", "web", file.uuid)
    unknown, refusal = cli.run("copy", "--spec", "web,thumbnail", file.uuid)

    assert code == 0, text
    assert f"✓ {file.uuid}  queued (photo-0.jpg, 3,000 bytes, copy specs web)" in text
    assert [request["specs"] for request in cli.queued()] == [["web"]]
    assert unknown == 2
    assert "no copy spec 'thumbnail': this deployment has original, web" in refusal


def test_backfill_with_a_spec_queues_requests_for_that_spec_only(cli: Cli) -> None:
    files = cli.images(3)

    code, text = cli.run("backfill", "--from", "2024-01-01", "--to", "2024-01-01", "--spec", "original")

    assert code == 0, text
    queued = cli.queued()
    assert sorted(request["uuid"] for request in queued) == sorted(file.uuid for file in files)
    assert all(request["specs"] == ["original"] for request in queued)


def test_audit_counts_each_spec_and_requeues_only_the_missing_spec(cli: Cli) -> None:
    files = cli.images(2)
    cli.run("copy", "--direct", "--spec", "original", *(file.uuid for file in files))
    cli.run("copy", "--direct", "--spec", "web", files[0].uuid)

    code, text = cli.run("audit", "--from", "2024-01-01", "--to", "2024-01-02", "--json")
    only_original, _ = cli.run("audit", "--from", "2024-01-01", "--to", "2024-01-02", "--spec", "original", "--json")
    requeued, _ = cli.run("audit", "--from", "2024-01-01", "--to", "2024-01-02", "--requeue")

    result = json.loads(text)
    assert code == 1
    assert result["specs"] == ["original", "web"]
    assert result["missing"] == [{"uuid": files[1].uuid, "spec": "web"}]
    assert only_original == 0
    assert requeued == 1
    assert [(request["uuid"], request["specs"]) for request in cli.queued()] == [(files[1].uuid, ["web"])]


def test_doctor_checks_every_spec_bucket_and_makes_a_test_copy_per_spec(cli: Cli) -> None:
    assert cli.run("webhook", "register")[0] == 0
    (file,) = cli.images(1)

    code, text = cli.run("doctor", "--test-copy", file.uuid)

    assert code == 0, text
    assert f"✓ bucket             {cli.specs.bucket} (copy specs original) is reachable" in text
    assert f"✓ bucket             {cli.specs.cdn_bucket} (copy specs web) is reachable" in text
    assert f"✓ test copy original {file.uuid} → s3://{cli.specs.bucket}/{cli.specs.original_key(file)}" in text
    assert f"{file.uuid} → s3://{cli.specs.cdn_bucket}/{cli.specs.web_key(file)}" in text
    assert cli.specs.emulator.copy_calls(file.uuid) == 2


def test_doctor_says_a_spec_bucket_the_copier_may_not_verify_in_and_how_to_allow_it(cli: Cli) -> None:
    assert cli.run("webhook", "register")[0] == 0

    code, text = cli.run("doctor", EXTRA_TARGET_BUCKETS="")

    assert code == 1
    assert (
        f"✗ bucket             {cli.specs.cdn_bucket} (copy specs web) is neither TargetBucketName nor in "
        "ExtraTargetBuckets: the copier may not verify there"
    ) in text
    assert f"add {cli.specs.cdn_bucket} to the stack's ExtraTargetBuckets parameter (--extra-buckets)" in text
    assert text.splitlines()[-1] == "1 problem found."


def test_doctor_names_the_spec_whose_storage_is_missing(cli: Cli) -> None:
    assert cli.run("webhook", "register")[0] == 0
    (file,) = cli.images(1)
    ghost = {"name": "ghost", "target": "no-such-storage", "bucket": cli.specs.bucket, "prefix": "g/"}
    copy_specs = json.dumps([cli.specs.original(), ghost])

    code, text = cli.run("doctor", "--test-copy", file.uuid, COPY_SPECS=copy_specs)

    assert code == 1
    assert f"✓ test copy original {file.uuid}" in text
    assert "✗ test copy ghost" in text
    assert "check the storage name 'no-such-storage' against the project's storages" in text
