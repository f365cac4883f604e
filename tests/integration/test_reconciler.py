"""The reconciler (uploadcare_s3_copy/reconciler/): what the webhooks missed is found in Uploadcare's file list and
queued, so every file ends verified. Both functions and the reconciler through their handlers, over real HTTP on
loopback: the Uploadcare emulator's GET /files/ and the moto server's DynamoDB and SQS. Every wait is real."""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from devkit.emulator import EmulatedFile, Fault
from devkit.flow import LocalFlow
from devkit.lambda_context import LambdaContext
from devkit.local_resources import read_queue
from uploadcare_s3_copy.copy_request import CopyRequest
from uploadcare_s3_copy.ledger import DEFAULT_SPEC, Ledger, LedgerStatus
from uploadcare_s3_copy.observability import metrics
from uploadcare_s3_copy.queueing import BatchSender
from uploadcare_s3_copy.reconciler import InvalidReconcileEvent, build_reconciler
from uploadcare_s3_copy.reconciler.app import ReconcileStoppedError
from uploadcare_s3_copy.reconciler.state import StateStore

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
SEED = 20261203


@pytest.fixture
def flow(aws: str) -> Iterator[LocalFlow]:
    with LocalFlow.start(aws, name=f"reconcile-{uuid.uuid4().hex[:8]}") as running:
        yield running
    metrics.clear_metrics()


def uploaded_hours_ago(flow: LocalFlow, count: int, hours: float = 2.0, **kwargs: object) -> list[EmulatedFile]:
    """`count` files uploaded `hours` ago, a second apart: older than the grace, inside the overlap."""
    start = datetime.now(UTC) - timedelta(hours=hours)
    return [flow.add_file(size=100 + n, datetime_uploaded=start + timedelta(seconds=n), **kwargs) for n in range(count)]


def ledger(flow: LocalFlow) -> Ledger:
    return Ledger(boto3.client("dynamodb"), flow.stack.ledger_table)


def queued_uuids(flow: LocalFlow) -> Counter[str]:
    """The copy requests waiting on the queue, by file (read, then made visible again)."""
    messages = read_queue(flow.stack.queue_url, release=True)
    return Counter(json.loads(message["Body"])["uuid"] for message in messages)


def forget_idempotency(flow: LocalFlow) -> int:
    dynamodb = boto3.client("dynamodb")
    items = dynamodb.scan(TableName=flow.stack.table)["Items"]
    for item in items:
        dynamodb.delete_item(TableName=flow.stack.table, Key={"id": item["id"]})
    return len(items)


def total_copy_calls(flow: LocalFlow, files: list[EmulatedFile]) -> int:
    return sum(flow.emulator.copy_calls(file.uuid) for file in files)


def test_lost_webhooks_are_healed_by_one_reconcile_run_and_a_second_run_queues_nothing(flow: LocalFlow) -> None:
    # Given 60 files whose webhooks were sent, except for 15 that never arrived, and the copier drained
    files = uploaded_hours_ago(flow, 60)
    lost = set(random.Random(SEED).sample(range(60), 15))
    for n, file in enumerate(files):
        if n not in lost:
            assert flow.deliver(flow.webhook_body(file)) == 202
    flow.run_copier()
    assert sum(flow.object_size(file) is not None for file in files) == 45

    # When the reconciler runs on its schedule, and the copier drains what it queued
    summary = flow.reconcile()
    flow.run_copier()

    # Then it found the 15 gaps among the 60, and every file is verified from exactly one copy each
    assert {k: summary[k] for k in ("checked", "verified", "queued", "dead_lettered", "skipped", "complete")} == {
        "checked": 60,
        "verified": 45,
        "queued": 15,
        "dead_lettered": 0,
        "skipped": 0,
        "complete": True,
    }
    assert all(outcome.state == "verified" for outcome in flow.outcomes(files).values())
    assert total_copy_calls(flow, files) == 60
    view = ledger(flow).get_many([(file.uuid, DEFAULT_SPEC) for file in files])
    assert all(item.verified for item in view.items.values())
    assert len(view.items) == 60
    healed = {file.uuid for n, file in enumerate(files) if n in lost}
    assert {uuid for (uuid, _), item in view.items.items() if item.origin == "reconcile"} == healed
    assert all(view.items[(file.uuid, DEFAULT_SPEC)].uploaded_at for file in files)

    # And the next run finds nothing to queue
    second = flow.reconcile()
    assert (second["checked"], second["verified"], second["queued"], second["stale"]) == (60, 60, 0, 0)
    assert flow.queue_depth() == 0


def test_after_the_idempotency_records_expired_everything_queued_again_costs_no_uploadcare_call(
    flow: LocalFlow,
) -> None:
    # Given 30 files copied through their webhooks, and their idempotency records gone (TTL, after 96 hours)
    files = uploaded_hours_ago(flow, 30)
    for file in files:
        flow.deliver(flow.webhook_body(file))
    flow.run_copier()
    assert forget_idempotency(flow) == 30

    # When a full reconcile runs, and every file is queued again anyway (a backfill over the same range)
    summary = flow.reconcile({"full": True})
    requests = [
        CopyRequest.from_file_info(flow.emulator.file_info(f.uuid), event="file.uploaded", origin="backfill")
        for f in files
    ]
    BatchSender(boto3.client("sqs"), flow.stack.queue_url).send_all([r.to_message() for r in requests])
    flow.run_copier()

    # Then the reconciler queued nothing, and the ledger settled all 30 requests: no second remote_copy
    assert (summary["checked"], summary["verified"], summary["queued"]) == (30, 30, 0)
    assert total_copy_calls(flow, files) == 30
    assert flow.queue_depth() == 0


def test_a_run_cut_by_its_deadline_saves_its_cursor_and_the_next_run_goes_on_queueing_each_file_at_most_twice(
    flow: LocalFlow,
) -> None:
    # Given 60 files no webhook announced, and a listing that takes half a second a page of 10
    files = uploaded_hours_ago(flow, 60)
    flow.emulator.list_delay = 0.5
    app = build_reconciler(os.environ, page_size=10, page_seconds=0.6, finish_seconds=0.3)

    # When a run has 2.5 s: time for about three pages before it must stop and save
    first = app.handle({}, LambdaContext(function_name="ReconcilerFunction", timeout_seconds=2.5))
    state = StateStore(boto3.client("dynamodb"), flow.stack.ledger_table).load()
    # and the next scheduled run has the time it needs
    second = app.handle({}, LambdaContext(function_name="ReconcilerFunction", timeout_seconds=60))

    # Then the first stopped for its deadline with a cursor saved, the second went on from it and finished
    assert (first["complete"], first["stopped_by"]) == (False, "deadline")
    assert 0 < first["queued"] < 60
    assert state.cursor is not None
    assert state.watermark is None
    assert second["complete"] is True
    assert (second["from"], second["to"]) == (first["from"], first["to"])  # the same window, gone on with
    queued = queued_uuids(flow)
    assert set(queued) == {file.uuid for file in files}
    assert max(queued.values()) <= 2
    assert first["queued"] + second["queued"] == sum(queued.values())
    finished = StateStore(boto3.client("dynamodb"), flow.stack.ledger_table).load()
    assert (finished.cursor, finished.watermark) == (None, second["to"])

    # And after a drain every file is verified from one copy
    flow.emulator.list_delay = 0
    flow.run_copier()
    assert all(outcome.state == "verified" for outcome in flow.outcomes(files).values())
    assert total_copy_calls(flow, files) == 60


def test_parked_files_are_counted_not_queued_and_young_files_are_left_to_the_webhook(flow: LocalFlow) -> None:
    # Given a file parked in the DLQ (its copy came out the wrong size), one verified, and one uploaded a minute ago
    [parked] = uploaded_hours_ago(flow, 1, hours=3, wrong_size=True)
    [copied] = uploaded_hours_ago(flow, 1, hours=2)
    for file in (parked, copied):
        flow.deliver(flow.webhook_body(file))
    flow.run_copier()
    flow.add_file(size=9, datetime_uploaded=datetime.now(UTC) - timedelta(minutes=1))

    # When the reconciler runs
    summary = flow.reconcile()

    # Then the parked file waits for `dlq redrive` (counted, not queued) and the young one was not looked at
    assert (summary["checked"], summary["verified"], summary["dead_lettered"], summary["queued"]) == (2, 1, 1, 0)
    item = ledger(flow).get(parked.uuid, DEFAULT_SPEC)
    assert item is not None
    assert item.status is LedgerStatus.DEAD_LETTERED
    assert flow.queue_depth() == 0


def test_a_file_still_unverified_after_a_run_queued_it_is_stale_for_the_alarm(flow: LocalFlow) -> None:
    # Given a file no webhook announced, queued by a first run, and a copier that is not running
    [file] = uploaded_hours_ago(flow, 1)
    first = flow.reconcile()
    assert (first["queued"], first["stale"]) == (1, 0)

    # When the next scheduled run finds it still unverified
    second = flow.reconcile()

    # Then it is queued again and counted stale: a run already covered it (the ReconcileStale alarm's metric)
    assert (second["queued"], second["stale"]) == (1, 1)
    assert queued_uuids(flow) == Counter({file.uuid: 2})
    flow.run_copier()
    assert flow.emulator.copies(file.uuid) == 1


def test_a_throttled_listing_waits_retry_after_and_goes_on(flow: LocalFlow) -> None:
    # Given a listing that answers 429 with Retry-After: 2 once
    files = uploaded_hours_ago(flow, 3)
    flow.emulator.script_listing(Fault.throttled(retry_after=2))

    # When the reconciler runs
    started = time.monotonic()
    summary = flow.reconcile()

    # Then it waited what Uploadcare asked and finished the run
    assert time.monotonic() - started >= 2
    assert (summary["complete"], summary["queued"]) == (True, 3)
    assert flow.emulator.request_count("GET", "/files/") == 2
    assert set(queued_uuids(flow)) == {file.uuid for file in files}


def test_a_listing_that_keeps_failing_stops_the_run_as_an_error_and_the_next_run_goes_on(flow: LocalFlow) -> None:
    # Given 25 files on three pages of 10, and a listing whose second page fails on the first try and both retries
    files = uploaded_hours_ago(flow, 25)
    app = build_reconciler(os.environ, page_size=10)
    flow.emulator.script_listing(Fault.slow(0), *[Fault.server_error(503)] * 3)
    context = LambdaContext(function_name="ReconcilerFunction", timeout_seconds=300)

    # When the scheduled run meets it (waiting 2 s and 5 s between the tries)
    started = time.monotonic()
    with pytest.raises(ReconcileStoppedError, match="server_error"):
        app.handle({}, context)

    # Then it gave up after the retries, with the first page queued and the second page's cursor saved
    assert time.monotonic() - started >= 7
    assert flow.emulator.request_count("GET", "/files/") == 4
    assert sum(queued_uuids(flow).values()) == 10
    state = StateStore(boto3.client("dynamodb"), flow.stack.ledger_table).load()
    assert state.cursor is not None
    assert state.watermark is None

    # And the next run goes on from the second page: every file ends queued once
    second = app.handle({}, context)
    assert (second["complete"], second["queued"]) == (True, 15)
    assert queued_uuids(flow) == Counter({file.uuid: 1 for file in files})


def test_window_and_full_runs_check_what_they_name_and_save_nothing(flow: LocalFlow) -> None:
    # Given a file from three days ago (before the first scheduled run's overlap) and one from two hours ago
    [old] = uploaded_hours_ago(flow, 1, hours=72)
    [recent] = uploaded_hours_ago(flow, 1, hours=2)
    day_before = (datetime.now(UTC) - timedelta(hours=80)).isoformat()
    after_old = (datetime.now(UTC) - timedelta(hours=60)).isoformat()

    # When a window around the old file, a scheduled run and a full run are made
    window = flow.reconcile({"from": day_before, "to": after_old})
    scheduled = flow.reconcile()
    full = flow.reconcile({"full": True})

    # Then each checked what it names: the window the old file, the schedule the recent one, full both
    assert (window["checked"], window["queued"]) == (1, 1)
    assert (scheduled["checked"], scheduled["queued"]) == (1, 1)
    assert (full["checked"], full["queued"], full["from"]) == (2, 2, None)
    assert queued_uuids(flow) == Counter({old.uuid: 2, recent.uuid: 2})
    state = StateStore(boto3.client("dynamodb"), flow.stack.ledger_table).load()
    assert state.watermark == scheduled["to"]  # only the scheduled run moved the watermark


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"form": "2025-01-01"}, "unknown keys form"),
        ({"from": "yesterday"}, "not an ISO date"),
        ({"from": "2025-02-01", "to": "2025-01-01"}, "to is before from"),
        ({"to": "2025-01-01"}, "to needs a from"),
        ({"full": "yes"}, "full is not true or false"),
        ({"full": True, "from": "2025-01-01"}, "takes no from"),
        ([1], "not a JSON object"),
    ],
)
def test_an_event_it_does_not_understand_is_refused_naming_the_problem(
    flow: LocalFlow, event: object, problem: str
) -> None:
    with pytest.raises(InvalidReconcileEvent, match=problem):
        flow.reconcile(event)  # type: ignore[arg-type]
    assert flow.queue_depth() == 0


@pytest.mark.parametrize("policy", ["tag", "delete"])
def test_a_deletion_whose_webhook_was_lost_is_found_and_applied(
    flow: LocalFlow, monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    # Given five copied files, two of them deleted at Uploadcare with their file.deleted webhooks lost
    monkeypatch.setenv("ON_SOURCE_DELETE", policy)
    flow.reset_functions()
    files = uploaded_hours_ago(flow, 5)
    for file in files:
        assert flow.deliver(flow.webhook_body(file)) == 202
    flow.run_copier()
    gone = files[:2]
    for file in gone:
        flow.emulator.remove_file(file.uuid)

    # When the reconciler runs on its schedule and the copier drains what it queued, and then it runs again
    summary = flow.reconcile()
    flow.run_copier()
    second = flow.reconcile()

    # Then exactly the two deletions were queued (as file.deleted, origin reconcile) and applied; the rest untouched
    assert (summary["deletions_queued"], summary["complete"], summary["checked"]) == (2, True, 3)  # 3 not removed
    expected = LedgerStatus.OBJECT_TAGGED if policy == "tag" else LedgerStatus.OBJECT_DELETED
    for file in gone:
        item = flow.ledger_item(file.uuid)
        assert item is not None
        assert item.status is expected
        assert item.why.startswith("file.deleted confirmed (datetime_removed ")
        assert (flow.object_size(file) is None) is (policy == "delete")
    for file in files[2:]:
        item = flow.ledger_item(file.uuid)
        assert item is not None
        assert item.verified
        assert flow.object_size(file) == file.size
    assert second["deletions_queued"] == 0
    assert flow.dead_letters() == []


def test_with_keep_the_reconciler_does_not_look_for_deletions(flow: LocalFlow) -> None:
    files = uploaded_hours_ago(flow, 2)
    for file in files:
        flow.deliver(flow.webhook_body(file))
    flow.run_copier()
    flow.emulator.remove_file(files[0].uuid)
    listings_before = flow.emulator.request_counts().get("GET /files/", 0)

    summary = flow.reconcile()

    assert summary["deletions_queued"] == 0
    assert flow.emulator.request_counts().get("GET /files/", 0) - listings_before == summary["pages"]
    assert flow.ledger_item(files[0].uuid).verified  # type: ignore[union-attr]
    assert flow.queue_depth() == 0
