"""The operations CLI and deletions at the source: `webhook register --events`, doctor's deletion-webhook and
versioning checks, and `audit` with files flagged infected. In-process against the moto server and the emulator."""

from __future__ import annotations

import json

import boto3

from tests.integration.copier_support import copier
from tests.integration.test_cli import JANUARY, WEBHOOK_URL, Ops, ops
from uploadcare_s3_copy.copy_request import CopyRequest

__all__ = ["copier", "ops"]  # the fixtures


def test_webhook_register_subscribes_each_event_once_with_one_signing_secret(ops: Ops) -> None:
    first = ops.run("webhook", "register")
    second = ops.run("webhook", "register", "--events", "file.uploaded,file.deleted,file.infected")
    third = ops.run("webhook", "register", "--events", "file.deleted")

    hooks = ops.emulator.webhooks()
    assert (first.code, second.code, third.code) == (0, 0, 0)
    assert sorted(hook["event"] for hook in hooks) == ["file.deleted", "file.infected", "file.uploaded"]
    assert {hook["target_url"] for hook in hooks} == {WEBHOOK_URL}
    assert {hook["signing_secret"] for hook in hooks} == {ops.secret()["webhook_signing_secret"]}
    assert "Already registered: webhook #1" in second.out
    assert "Registered webhook #2" in second.out
    assert "Already registered" in third.out
    assert "Registered" not in third.out.replace("Already registered", "")


def test_webhook_register_refuses_an_unknown_event_naming_the_valid_ones(ops: Ops) -> None:
    ran = ops.run("webhook", "register", "--events", "file.uploaded,file.removed")

    assert ran.code == 2
    assert "'file.removed': the events are file.uploaded, file.deleted, file.infected, file.info_updated" in ran.err
    assert ops.emulator.webhooks() == []


def test_doctor_says_tag_needs_the_file_deleted_webhook_and_how_to_register_it(ops: Ops) -> None:
    assert ops.run("webhook", "register").code == 0
    environ = {**ops.environ, "ON_SOURCE_DELETE": "tag"}

    missing = ops.run("doctor", environ=environ)
    ops.run("webhook", "register", "--events", "file.deleted", environ=environ)
    listings = ops.emulator.request_counts().get("GET /webhooks/", 0)
    registered = ops.run("doctor", environ=environ)

    assert missing.code == 1
    assert (
        f"✗ deletion webhook   no file.deleted webhook for {WEBHOOK_URL}: ON_SOURCE_DELETE=tag needs one" in missing.out
    )
    assert "fix: uploadcare-s3-copy webhook register --events file.uploaded,file.deleted" in missing.out
    assert registered.code == 0, registered.text
    assert "✓ deletion webhook   webhook #2" in registered.out
    assert "for ON_SOURCE_DELETE=tag" in registered.out
    assert "versioning" not in registered.out  # asked only with delete
    assert ops.emulator.request_counts().get("GET /webhooks/", 0) - listings == 1  # one listing for both checks


def test_doctor_warns_that_delete_cannot_be_undone_without_versioning(ops: Ops) -> None:
    ops.run("webhook", "register", "--events", "file.uploaded,file.deleted")
    environ = {**ops.environ, "ON_SOURCE_DELETE": "delete"}
    bucket = ops.copier.bucket

    without = ops.run("doctor", environ=environ)
    boto3.client("s3").put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    with_versions = ops.run("doctor", environ=environ)

    assert without.code == 1
    assert f"✗ versioning         {bucket} keeps no versions: ON_SOURCE_DELETE=delete cannot be undone there" in (
        without.out
    )
    assert f"aws s3api put-bucket-versioning --bucket {bucket}" in without.out
    assert with_versions.code == 0, with_versions.text
    assert f"✓ versioning         {bucket} keeps versions" in with_versions.out


def test_a_bad_policy_is_a_usage_error(ops: Ops) -> None:
    ran = ops.run("doctor", environ={**ops.environ, "ON_SOURCE_DELETE": "shred"})

    assert ran.code == 2
    assert "on_source_delete 'shred' is not keep, tag or delete" in ran.err


def test_audit_counts_a_file_flagged_infected_apart_and_is_not_failed_by_it(ops: Ops) -> None:
    good = ops.emulator.add_file(original_filename="a.jpg", size=300, datetime_uploaded=JANUARY)
    bad = ops.emulator.add_file(original_filename="b.jpg", size=301, datetime_uploaded=JANUARY.replace(minute=1))
    ops.copier.send(good, bad)
    ops.copier.drain()
    ops.emulator.infect_file(bad.uuid)
    infected = CopyRequest.from_file_info(ops.emulator.file_info(bad.uuid), event="file.infected", origin="webhook")
    ops.copier.send_body(infected.to_message())
    ops.copier.drain()

    ran = ops.run("audit", "--from", "2024-01-01", "--to", "2024-01-02", "--json")
    text = ops.run("audit", "--from", "2024-01-01", "--to", "2024-01-02")

    result = json.loads(ran.out)
    assert ran.code == 0, ran.text
    assert (result["files"], result["verified"]) == (2, 1)
    assert result["infected"] == [{"uuid": bad.uuid, "spec": "original"}]
    assert result["missing"] == []
    assert "1 of 2 files verified, 1 flagged infected at Uploadcare (tagged, or never copied)" in text.out
    header = next(line for line in text.out.splitlines() if "spec" in line and "files" in line)
    assert header.rstrip(" ┃").endswith("infected")


def test_copy_direct_does_not_copy_a_file_the_ledger_says_is_infected_unless_forced(ops: Ops) -> None:
    file = ops.emulator.add_file(original_filename="eicar.jpg", size=68)
    ops.emulator.infect_file(file.uuid)
    infected = CopyRequest.from_file_info(ops.emulator.file_info(file.uuid), event="file.infected", origin="webhook")
    ops.copier.send_body(infected.to_message())  # flagged before any copy: never copied
    ops.copier.drain()

    refused = ops.run("copy", "--direct", file.uuid)
    forced = ops.run("copy", "--direct", "--force", file.uuid)

    assert refused.code == 0, refused.text
    assert f"· {file.uuid}  not copied: the ledger says file.infected confirmed" in refused.out
    assert "--force copies anyway" in refused.out
    assert ops.emulator.copy_calls(file.uuid) == 1  # only the forced copy
    assert forced.code == 0, forced.text
    assert ops.copier.object_size(ops.copier.key_of(file)) == 68
