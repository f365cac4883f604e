"""`uploadcare-s3-copy audit` and `reconcile` end to end: Uploadcare's file list (the emulator over loopback HTTP)
against the copy ledger the copier wrote (the moto server), with S3 asked where the command says so."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.integration.copier_support import copier
from tests.integration.test_cli import Ops, ops, uploads
from uploadcare_s3_copy.ledger import DEFAULT_SPEC

__all__ = ["copier", "ops"]  # the fixtures
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def audit_json(ops: Ops, *options: str) -> tuple[int, dict[str, Any]]:
    ran = ops.run("audit", "--json", *options)
    assert ran.code in (0, 1), ran.text
    return ran.code, json.loads(ran.out)


def test_all_verified_exits_0_with_n_of_n_in_the_table_and_the_json(ops: Ops) -> None:
    # Given five files copied by the copier
    files = uploads(ops, 5)
    ops.copier.send(*files)
    ops.copier.drain()

    # When they are audited
    table = ops.run("audit")
    code, result = audit_json(ops)

    # Then every one is verified
    assert table.code == 0, table.text
    assert "5 of 5 files verified" in table.out
    assert code == 0
    assert result["files"] == 5
    assert result["verified"] == 5
    assert result["specs"] == [DEFAULT_SPEC]
    assert (result["missing"], result["mismatched"], result["dead_lettered"]) == ([], [], [])


def test_a_file_missing_from_the_ledger_exits_1_and_requeue_heals_it(ops: Ops) -> None:
    # Given four files of which three were copied (the fourth's webhook was lost)
    files = uploads(ops, 4)
    ops.copier.send(*files[:3])
    ops.copier.drain()

    # When they are audited, with --requeue
    code, result = audit_json(ops, "--requeue")

    # Then the fourth is missing, and a copy request for it (and only it) is queued
    assert code == 1
    assert (result["files"], result["verified"]) == (4, 3)
    assert result["missing"] == [{"uuid": files[3].uuid, "spec": DEFAULT_SPEC}]
    assert result["requeued"] == 1
    [queued] = ops.queued()
    assert (queued["uuid"], queued["origin"], queued["specs"]) == (files[3].uuid, "reconcile", [DEFAULT_SPEC])

    # And once the copier has run, the audit is clean
    ops.copier.drain()
    again = ops.run("audit")
    assert again.code == 0, again.text
    assert "4 of 4 files verified" in again.out


def test_an_object_deleted_or_replaced_in_s3_is_found_by_check_objects(ops: Ops) -> None:
    # Given three copied files, then one object deleted from the bucket and one overwritten with other bytes
    files = uploads(ops, 3)
    ops.copier.send(*files)
    ops.copier.drain()
    s3 = boto3.client("s3")
    s3.delete_object(Bucket=ops.copier.bucket, Key=ops.copier.key_of(files[0]))
    s3.put_object(Bucket=ops.copier.bucket, Key=ops.copier.key_of(files[1]), Body=b"not the file")

    # When they are audited from the ledger only, then with the objects checked
    ledger_only, _ = audit_json(ops)
    code, result = audit_json(ops, "--check-objects")

    # Then the ledger alone still says verified; head_object finds one gone and one of another size
    assert ledger_only == 0
    assert code == 1
    assert result["verified"] == 1
    assert result["objects_checked"] == 3
    problems = {entry["uuid"]: entry["problem"] for entry in result["mismatched"]}
    assert problems[files[0].uuid].startswith("object missing: s3://")
    assert "is 12 bytes, the ledger says 101" in problems[files[1].uuid]


def test_dead_lettered_files_exit_1_with_their_reason_and_the_report_has_every_row(ops: Ops, tmp_path: Path) -> None:
    # Given a copied file and one parked (its copy came out the wrong size)
    [good] = uploads(ops, 1)
    [bad] = uploads(ops, 1, wrong_size=True, start=good.datetime_uploaded)
    ops.copier.send(good, bad)
    ops.copier.drain()
    report = tmp_path / "audit.csv"

    # When they are audited with a CSV report
    code, result = audit_json(ops, "--report", str(report))

    # Then the parked one is listed with its reason, and the CSV holds both rows
    assert code == 1
    assert result["dead_lettered"] == [{"uuid": bad.uuid, "spec": DEFAULT_SPEC, "reason": "verification_failed"}]
    with report.open(newline="") as handle:
        rows = {row["uuid"]: row for row in csv.DictReader(handle)}
    assert rows[good.uuid]["status"] == "verified"
    assert rows[good.uuid]["key"] == ops.copier.key_of(good)
    assert rows[good.uuid]["size"] == str(good.size)
    assert (rows[bad.uuid]["status"], rows[bad.uuid]["detail"]) == ("dead_lettered", "verification_failed")


def test_deep_compares_the_content_of_sampled_files(ops: Ops) -> None:
    # Given two copied files, one of them overwritten in the bucket with other bytes of the same size
    ops.emulator.use_own_cdn()
    files = uploads(ops, 2)
    ops.copier.send(*files)
    ops.copier.drain()
    key = ops.copier.key_of(files[0])
    boto3.client("s3").put_object(Bucket=ops.copier.bucket, Key=key, Body=b"x" * files[0].size)

    # When both are compared with the CDN's original
    code, result = audit_json(ops, "--deep", "5")

    # Then the size and ETag check alone could have missed nothing here, but the content check names the one
    assert code == 1
    assert result["deep_checked"] == 2
    [mismatch] = result["mismatched"]
    assert mismatch["uuid"] == files[0].uuid
    assert mismatch["problem"].startswith("content differs")


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (["--spec", "thumbnail"], "no copy spec 'thumbnail'"),
        (["--from", "2024-02-01", "--to", "2024-01-01"], "--to is before --from"),
        (["--from", "last week"], "is not an ISO date"),
    ],
)
def test_usage_errors_exit_2_naming_the_problem(ops: Ops, options: list[str], problem: str) -> None:
    ran = ops.run("audit", *options)

    assert ran.code == 2
    assert problem in ran.err


def test_reconcile_from_the_cli_queues_the_gaps_once(ops: Ops) -> None:
    # Given three files, one of them copied
    files = uploads(ops, 3)
    ops.copier.send(files[0])
    ops.copier.drain()

    # When the reconciler's full run is made from the command line, twice, the copier running in between
    first = ops.run("reconcile", "--full", "--json")
    ops.copier.drain()
    second = ops.run("reconcile", "--full")

    # Then the first queued the two gaps, the second found all three verified
    assert first.code == 0, first.text
    summary = json.loads(first.out)
    assert (summary["checked"], summary["verified"], summary["queued"], summary["complete"]) == (3, 1, 2, True)
    assert second.code == 0, second.text
    assert "3 of 3 files verified; 0 queued" in second.out
    assert sum(ops.emulator.copies(file.uuid) for file in files) == 3


def test_copy_direct_writes_the_proof_skips_a_proven_file_and_force_copies_again(ops: Ops) -> None:
    # Given a file copied directly from the command line
    [file] = uploads(ops, 1)
    first = ops.run("copy", "--direct", file.uuid)

    # When it is copied directly again, then with --force, and --force is asked without --direct
    again = ops.run("copy", "--direct", file.uuid)
    forced = ops.run("copy", "--direct", "--force", file.uuid)
    queued_force = ops.run("copy", "--force", file.uuid)

    # Then the first wrote the proof, the second made no Uploadcare call, --force called again (already there)
    assert first.code == 0, first.text
    assert "in the ledger" in first.out
    item = ops.copier.ledger_item(file)
    assert item is not None
    assert (item.verified, item.origin, item.key) == (True, "manual", ops.copier.key_of(file))
    assert again.code == 0
    assert "already verified at" in again.out
    assert forced.code == 0
    assert "already_exists, verified, in the ledger" in forced.out
    assert ops.emulator.copy_calls(file.uuid) == 2
    assert queued_force.code == 2
    assert "--force needs --direct" in queued_force.err
    code, result = audit_json(ops)
    assert (code, result["verified"]) == (0, 1)
