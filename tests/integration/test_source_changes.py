"""Deletions and infections at the source, through the real copier handler, the moto server and the emulator:
ON_SOURCE_DELETE keep / tag / delete, the forged delete, the infected tag, and the races between a copy and a
deletion (docs/design.md, "Deletions at the source")."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

import handle_copy
from devkit.emulator import EmulatedFile
from tests.integration.copier_support import CopierHarness, copier, reason_of
from tests.integration.test_copy_specs import Specs, specs
from uploadcare_s3_copy.copy_request import CopyRequest
from uploadcare_s3_copy.ledger import LedgerStatus

__all__ = ["copier", "specs"]  # the fixtures


def policy(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("ON_SOURCE_DELETE", value)
    handle_copy.app.cache_clear()  # a cold start with that policy


def event_request(copier: CopierHarness, file: EmulatedFile, event: str, info: dict[str, Any] | None = None) -> str:
    info = info or copier.emulator.file_info(file.uuid)
    return CopyRequest.from_file_info(info, event=event, origin="webhook").to_message()


def copied(copier: CopierHarness, **kwargs: Any) -> EmulatedFile:
    """A file copied and verified, as after its file.uploaded."""
    file = copier.add_file(**kwargs)
    copier.send(file)
    copier.drain()
    item = copier.ledger_item(file)
    assert item is not None
    assert item.verified
    return file


def tags_of(copier: CopierHarness, file: EmulatedFile) -> dict[str, str]:
    answer = boto3.client("s3").get_object_tagging(Bucket=copier.bucket, Key=copier.key_of(file))
    return {tag["Key"]: tag["Value"] for tag in answer["TagSet"]}


def exists(copier: CopierHarness, file: EmulatedFile) -> bool:
    try:
        boto3.client("s3").head_object(Bucket=copier.bucket, Key=copier.key_of(file))
    except ClientError:
        return False
    return True


def deleted_at_source(copier: CopierHarness, file: EmulatedFile) -> None:
    """Uploadcare removes the file and sends file.deleted."""
    copier.emulator.remove_file(file.uuid)
    copier.send_body(event_request(copier, file, "file.deleted"))
    copier.drain()


# --- the three policies ---------------------------------------------------------------------------------------


def test_keep_records_the_deletion_and_leaves_the_copy(copier: CopierHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    policy(monkeypatch, "keep")
    file = copied(copier, size=500)

    deleted_at_source(copier, file)

    item = copier.ledger_item(file)
    assert item is not None
    assert item.status is LedgerStatus.SOURCE_DELETED
    assert (item.key, item.size) == (copier.key_of(file), 500)
    assert item.removed_at
    assert item.acted_at
    assert "file.deleted confirmed (datetime_removed " in item.why
    assert "copy kept (ON_SOURCE_DELETE=keep)" in item.why
    assert copier.object_size(copier.key_of(file)) == 500
    assert copier.dead_letters() == []


def test_tag_adds_the_deleted_tag_and_keeps_the_objects_other_tags(
    copier: CopierHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy(monkeypatch, "tag")
    file = copied(copier, size=300)
    boto3.client("s3").put_object_tagging(
        Bucket=copier.bucket, Key=copier.key_of(file), Tagging={"TagSet": [{"Key": "team", "Value": "media"}]}
    )

    deleted_at_source(copier, file)

    tags = tags_of(copier, file)
    item = copier.ledger_item(file)
    assert tags["team"] == "media"
    assert tags["uploadcare-deleted"] == "true"  # a lifecycle rule can match it
    assert item is not None
    assert item.status is LedgerStatus.OBJECT_TAGGED
    assert "tagged uploadcare-deleted=true (ON_SOURCE_DELETE=tag)" in item.why
    assert copier.object_size(copier.key_of(file)) == 300


def test_delete_removes_the_copy_and_records_it(copier: CopierHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    policy(monkeypatch, "delete")
    file = copied(copier, size=200)

    deleted_at_source(copier, file)

    item = copier.ledger_item(file)
    assert not exists(copier, file)
    assert item is not None
    assert item.status is LedgerStatus.OBJECT_DELETED
    assert (item.key, item.size) == (copier.key_of(file), 200)  # what was deleted stays on record
    assert copier.dead_letters() == []


def test_delete_acts_on_a_404_from_uploadcare_too(copier: CopierHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    policy(monkeypatch, "delete")
    file = copied(copier, size=210)
    body = event_request(copier, file, "file.deleted")
    copier.emulator.forget_file(file.uuid)  # purged: GET /files/<uuid>/ answers 404

    copier.send_body(body)
    copier.drain()

    item = copier.ledger_item(file)
    assert not exists(copier, file)
    assert item is not None
    assert item.status is LedgerStatus.OBJECT_DELETED
    assert "answered 404" in item.why


# --- nothing on the webhook's word ----------------------------------------------------------------------------


def test_a_forged_delete_touches_nothing_and_is_parked_with_its_reason(
    copier: CopierHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy(monkeypatch, "delete")
    file = copied(copier, size=400)

    copier.send_body(event_request(copier, file, "file.deleted"))  # the file is still there at Uploadcare
    copier.drain()

    [parked] = copier.dead_letters()
    item = copier.ledger_item(file)
    assert reason_of(parked) == "not_deleted_at_source"
    assert "datetime_removed is null" in parked["MessageAttributes"]["detail"]["StringValue"]
    assert json.loads(parked["Body"])["event"] == "file.deleted"
    assert copier.object_size(copier.key_of(file)) == 400
    assert item is not None
    assert item.verified


def test_a_forged_infection_touches_nothing_and_is_parked_with_its_reason(copier: CopierHarness) -> None:
    file = copied(copier, size=410)

    copier.send_body(event_request(copier, file, "file.infected"))
    copier.drain()

    [parked] = copier.dead_letters()
    assert reason_of(parked) == "not_infected_at_source"
    assert tags_of(copier, file) == {}
    assert copier.ledger_item(file).verified  # type: ignore[union-attr]


@pytest.mark.parametrize("on_delete", ["keep", "tag", "delete"])
def test_an_infected_file_is_always_tagged(
    copier: CopierHarness, monkeypatch: pytest.MonkeyPatch, on_delete: str
) -> None:
    policy(monkeypatch, on_delete)
    file = copied(copier, size=420)
    copier.emulator.infect_file(file.uuid)

    copier.send_body(event_request(copier, file, "file.infected"))
    copier.drain()

    item = copier.ledger_item(file)
    assert tags_of(copier, file) == {"uploadcare-infected": "true"}
    assert item is not None
    assert (item.status, item.infected) == (LedgerStatus.OBJECT_TAGGED, True)
    assert copier.object_size(copier.key_of(file)) == 420
    assert copier.dead_letters() == []


# --- order and races ------------------------------------------------------------------------------------------


def test_a_delete_before_its_copy_ran_leaves_nothing_to_copy(
    copier: CopierHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy(monkeypatch, "delete")
    file = copier.add_file(size=120)
    upload = copier.request_for(file).to_message()
    copier.emulator.remove_file(file.uuid)

    copier.send_body(event_request(copier, file, "file.deleted"))  # overtakes its file.uploaded
    copier.drain()
    copier.send_body(upload)
    copier.drain()

    item = copier.ledger_item(file)
    assert item is not None
    assert item.status is LedgerStatus.SOURCE_DELETED
    assert "removed before any copy was made" in item.why
    assert copier.emulator.copy_calls(file.uuid) == 0
    assert not exists(copier, file)
    assert copier.dead_letters() == []


def test_a_copy_request_for_a_file_already_removed_ends_source_deleted(copier: CopierHarness) -> None:
    file = copier.add_file(size=130)
    upload = copier.request_for(file).to_message()
    copier.emulator.remove_file(file.uuid)

    copier.send_body(upload)
    copier.drain()
    copier.send_body(upload)  # Uploadcare's retry of the same webhook
    copier.drain()

    item = copier.ledger_item(file)
    assert item is not None
    assert item.status is LedgerStatus.SOURCE_DELETED
    assert "removed before it was copied" in item.why
    assert copier.emulator.copy_calls(file.uuid) == 0  # the emulator refuses a removed source before counting
    assert copier.dead_letters() == []
    assert copier.queue_depth() == 0


def test_a_redelivered_delete_changes_nothing_more(copier: CopierHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    policy(monkeypatch, "tag")
    file = copied(copier, size=140)
    deleted_at_source(copier, file)
    first = copier.ledger_item(file)

    copier.send_body(event_request(copier, file, "file.deleted"))
    copier.drain()

    assert copier.ledger_item(file) == first
    assert list(tags_of(copier, file)) == ["uploadcare-deleted"]
    assert copier.dead_letters() == []


def test_a_delete_for_a_file_never_copied_is_recorded_and_ends(
    copier: CopierHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy(monkeypatch, "delete")
    file = copier.add_file(size=150)
    copier.emulator.remove_file(file.uuid)

    copier.send_body(event_request(copier, file, "file.deleted"))
    copier.drain()

    item = copier.ledger_item(file)
    assert item is not None
    assert (item.status, item.key) == (LedgerStatus.SOURCE_DELETED, "")
    assert copier.dead_letters() == []
    assert copier.queue_depth() == 0


def test_an_infection_before_the_copy_means_it_is_never_copied(copier: CopierHarness) -> None:
    file = copier.add_file(size=160)
    copier.emulator.infect_file(file.uuid)

    copier.send_body(event_request(copier, file, "file.infected"))
    copier.drain()
    copier.send(file)  # its file.uploaded, late
    copier.drain()

    item = copier.ledger_item(file)
    assert item is not None
    assert (item.status, item.infected) == (LedgerStatus.INFECTED, True)
    assert copier.emulator.copy_calls(file.uuid) == 0
    assert not exists(copier, file)


# --- several copy specs ---------------------------------------------------------------------------------------


def test_delete_applies_to_every_specs_copy(specs: Specs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ON_SOURCE_DELETE", "delete")
    specs.use(specs.original(), specs.web())
    file = specs.image()
    specs.send(file)
    specs.drain()
    assert specs.size_at(specs.cdn_bucket, specs.web_key(file))

    specs.emulator.remove_file(file.uuid)
    info = specs.emulator.file_info(file.uuid)
    body = CopyRequest.from_file_info(info, event="file.deleted", origin="webhook").to_message()
    boto3.client("sqs").send_message(QueueUrl=specs.stack.queue_url, MessageBody=body)
    specs.drain()

    assert specs.size_at(specs.bucket, specs.original_key(file)) is None
    assert specs.size_at(specs.cdn_bucket, specs.web_key(file)) is None
    for name in ("original", "web"):
        item = specs.item(file, name)
        assert item is not None
        assert item.status is LedgerStatus.OBJECT_DELETED


def test_each_source_change_is_counted_in_metrics(
    copier: CopierHarness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    policy(monkeypatch, "delete")
    deleted, infected = copied(copier, size=10), copied(copier, size=11)
    never = copier.add_file(size=12)
    for file in (deleted, never):
        copier.emulator.remove_file(file.uuid)
    copier.emulator.infect_file(infected.uuid)
    capsys.readouterr()

    copier.send_body(event_request(copier, deleted, "file.deleted"))
    copier.send_body(event_request(copier, never, "file.deleted"))
    copier.send_body(event_request(copier, infected, "file.infected"))
    copier.drain()

    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    totals = {
        name: sum(sum(blob[name]) for blob in blobs if name in blob and "spec" not in blob)
        for name in ("ObjectDeleted", "SourceDeleted", "ObjectTagged", "CopyLatency", "BytesCopied")
    }
    assert totals == {"ObjectDeleted": 1, "SourceDeleted": 1, "ObjectTagged": 1, "CopyLatency": 0, "BytesCopied": 0}
    by_spec = {
        (name, b["spec"]) for b in blobs if "spec" in b for name in ("ObjectDeleted", "ObjectTagged") if name in b
    }
    assert by_spec == {("ObjectDeleted", "original"), ("ObjectTagged", "original")}
