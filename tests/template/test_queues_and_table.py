"""The copy queue, the dead-letter queue, the idempotency table and the copy ledger: nothing accepted is lost,
nothing copied twice, the proof kept."""

from __future__ import annotations

import pytest

from tests.template.support import parameter, stack, template
from uploadcare_s3_copy.copier.rules import DEFAULT_MAX_RECEIVES, retry_budget_seconds

FOURTEEN_DAYS = 14 * 24 * 3600


def test_copy_queue_hands_failing_requests_to_the_dead_letter_queue() -> None:
    redrive = template()["Resources"]["CopyQueue"]["Properties"]["RedrivePolicy"]

    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    assert parameter("MaxReceiveCount")["MinValue"] >= 1


def test_the_default_retry_budget_rides_out_an_hour_and_the_parameter_says_so() -> None:
    default = int(parameter("MaxReceiveCount")["Default"])
    budget = retry_budget_seconds(default)

    assert default == DEFAULT_MAX_RECEIVES
    assert budget >= 3600
    assert f"{budget:,} s" in parameter("MaxReceiveCount")["Description"]


@pytest.mark.parametrize("timeout", [str(value) for value in parameter("CopierTimeoutSeconds")["AllowedValues"]])
def test_visibility_timeout_is_at_least_six_copier_timeouts_plus_the_batching_window(timeout: str) -> None:
    # Given a deployment with one of the allowed copier timeouts
    deployed = stack(CopierTimeoutSeconds=timeout)

    # When CloudFormation resolves the queue and the function
    visibility = int(deployed.resolve(deployed.properties("CopyQueue")["VisibilityTimeout"]))
    function_timeout = int(deployed.resolve(deployed.properties("CopierFunction")["Timeout"]))

    # Then a record is not redelivered while an invocation may still be working on it (AWS's rule for SQS sources)
    longest_window = int(parameter("CopyBatchWindowSeconds")["MaxValue"])
    assert function_timeout == int(timeout)
    assert visibility >= 6 * function_timeout + longest_window
    assert visibility <= 43200  # the SQS maximum


def test_copier_timeout_is_one_of_the_values_the_visibility_mapping_knows() -> None:
    declaration = parameter("CopierTimeoutSeconds")

    assert declaration["Default"] in declaration["AllowedValues"]
    assert {str(value) for value in declaration["AllowedValues"]} == set(template()["Mappings"]["CopierTimeouts"])


def test_dead_letter_queue_keeps_requests_fourteen_days() -> None:
    deployed = stack()

    assert deployed.properties("DeadLetterQueue")["MessageRetentionPeriod"] == FOURTEEN_DAYS
    # A moved message keeps its first enqueue time, so the source queue's retention bounds its stay in the DLQ too.
    assert deployed.properties("CopyQueue")["MessageRetentionPeriod"] == FOURTEEN_DAYS


@pytest.mark.parametrize("queue", ["CopyQueue", "DeadLetterQueue"])
def test_queues_are_encrypted_at_rest(queue: str) -> None:
    assert stack().properties(queue)["SqsManagedSseEnabled"] is True


def test_idempotency_table_matches_powertools_and_expires_its_records() -> None:
    table = stack().properties("IdempotencyTable")

    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}


def test_the_copy_ledger_is_keyed_by_file_and_spec_never_expires_and_outlives_the_stack() -> None:
    resource = template()["Resources"]["CopyLedgerTable"]
    table = stack().properties("CopyLedgerTable")

    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [
        {"AttributeName": "uuid", "KeyType": "HASH"},
        {"AttributeName": "spec", "KeyType": "RANGE"},
    ]
    assert "TimeToLiveSpecification" not in table  # the proof lasts
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert resource["DeletionPolicy"] == "Retain"
    assert resource["UpdateReplacePolicy"] == "Retain"


def test_the_copier_is_given_the_ledger_table() -> None:
    variables = template()["Resources"]["CopierFunction"]["Properties"]["Environment"]["Variables"]

    assert variables["COPY_LEDGER_TABLE"] == {"Ref": "CopyLedgerTable"}
