"""Deletions and infections end to end: the stack's own template parameters (OnSourceDelete), signed webhooks
through the webhook handler, the copier over the queue, the moto server and the emulator, all on loopback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from devkit.flow import LocalFlow
from uploadcare_s3_copy.ledger import LedgerStatus
from uploadcare_s3_copy.observability import metrics


@pytest.fixture(params=["keep", "tag", "delete"])
def flow(aws: str, request: pytest.FixtureRequest) -> Iterator[LocalFlow]:
    parameters = {"OnSourceDelete": str(request.param)}
    with LocalFlow.start(aws, name=f"deletions-{uuid.uuid4().hex[:8]}", parameters=parameters) as running:
        running.reset_functions()
        yield running
    metrics.clear_metrics()


def tags(flow: LocalFlow, key: str) -> dict[str, str]:
    try:
        answer = flow.s3.get_object_tagging(Bucket=flow.stack.bucket, Key=key)
    except ClientError:
        return {}
    return {tag["Key"]: tag["Value"] for tag in answer["TagSet"]}


def test_each_policy_from_the_webhook_to_the_bucket(flow: LocalFlow) -> None:
    policy = flow.stack.copier_env()["ON_SOURCE_DELETE"]
    removed, kept, infected = (flow.add_file(size=700 + n, original_filename=f"f{n}.jpg") for n in range(3))
    for file in (removed, kept, infected):
        assert flow.deliver(flow.webhook_body(file)) == 202
    flow.run_copier()

    # Uploadcare removes one file and says so; a forged file.deleted names a file still there; ClamAV flags one
    flow.emulator.remove_file(removed.uuid)
    flow.emulator.infect_file(infected.uuid)
    answers = [
        flow.deliver(flow.webhook_body(removed, event="file.deleted")),
        flow.deliver(flow.webhook_body(kept, event="file.deleted")),
        flow.deliver(flow.webhook_body(infected, event="file.info_updated")),
    ]
    flow.run_copier()

    assert answers == [202, 202, 202]
    gone = flow.ledger_item(removed.uuid)
    assert gone is not None
    expected = {"keep": LedgerStatus.SOURCE_DELETED, "tag": LedgerStatus.OBJECT_TAGGED}
    assert gone.status is expected.get(policy, LedgerStatus.OBJECT_DELETED)
    assert (flow.object_size(removed) is None) is (policy == "delete")
    assert ("uploadcare-deleted" in tags(flow, flow.key_of(removed))) is (policy == "tag")
    # the forged one touched nothing and waits in the DLQ with its reason
    [parked] = flow.dead_letters()
    assert parked["MessageAttributes"]["reason"]["StringValue"] == "not_deleted_at_source"
    assert flow.object_size(kept) == kept.size
    assert flow.ledger_item(kept.uuid).verified  # type: ignore[union-attr]
    # the infected one is tagged whatever the policy
    assert tags(flow, flow.key_of(infected)) == {"uploadcare-infected": "true"}
    assert flow.ledger_item(infected.uuid).infected  # type: ignore[union-attr]
    assert flow.queue_depth() == 0
