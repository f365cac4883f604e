"""Alarms on metrics that exist, a dashboard of the metrics the code emits, and the outputs a user needs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.template.support import function_environment, functions, resources_of_type, stack, template

# The metrics the functions emit (Powertools EMF, dimension `service`) that the dashboard must show.
EMITTED_METRICS = frozenset(
    {
        "WebhookReceived",
        "WebhookQueued",
        "WebhookIgnored",
        "WebhookRejected",
        "CopySucceeded",
        "CopyAlreadyExisted",
        "CopyFailed",
        "VerificationFailed",
        "BytesCopied",
        "CopyLatency",
        "ReconcileChecked",
        "ReconcileVerified",
        "ReconcileQueued",
        "ReconcileDeadLettered",
        "ReconcileStale",
        "SourceDeleted",
        "ObjectTagged",
        "ObjectDeleted",
        "InfectedNotCopied",
        "ReconcileDeletionsQueued",
    }
)
PACKAGE = ROOT / "layers/common/uploadcare_s3_copy"


def alarms() -> dict[str, Mapping[str, Any]]:
    return {logical_id: resource["Properties"] for logical_id, resource in resources_of_type("AWS::CloudWatch::Alarm")}


def alarm_on(namespace: str, metric: str) -> Mapping[str, Any]:
    found = [a for a in alarms().values() if (a["Namespace"], a["MetricName"]) == (namespace, metric)]
    assert len(found) == 1, f"expected one alarm on {namespace} {metric}, found {len(found)}"
    return found[0]


def dashboard_widgets() -> list[Mapping[str, Any]]:
    body = stack().resolve(template()["Resources"]["Dashboard"]["Properties"]["DashboardBody"])
    widgets: list[Mapping[str, Any]] = json.loads(body)["widgets"]
    return widgets


def dashboard_metrics() -> list[list[Any]]:
    """Each metric line as [namespace, name, dimension, value, ...], options dropped."""
    return [
        [part for part in line if not isinstance(part, dict)]
        for widget in dashboard_widgets()
        for line in widget["properties"]["metrics"]
    ]


def test_http_api_5xx_alarm_uses_the_metric_an_http_api_emits() -> None:
    alarm = alarm_on("AWS/ApiGateway", "5xx")

    assert alarm["Dimensions"] == [{"Name": "ApiId", "Value": {"Ref": "HttpApi"}}]


def test_no_alarm_uses_rest_api_metric_names() -> None:
    for logical_id, alarm in alarms().items():
        assert alarm["MetricName"] not in {"5XXError", "4XXError"}, logical_id
        assert all(dimension["Name"] != "ApiName" for dimension in alarm.get("Dimensions", [])), logical_id


def test_dead_letter_queue_alarms_as_soon_as_it_holds_a_request() -> None:
    alarm = alarm_on("AWS/SQS", "ApproximateNumberOfMessagesVisible")

    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_copy_queue_alarms_when_its_oldest_request_is_too_old() -> None:
    alarm = alarm_on("AWS/SQS", "ApproximateAgeOfOldestMessage")

    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["CopyQueue", "QueueName"]}}]
    assert alarm["Threshold"] == {"Ref": "OldestMessageAgeAlarmSeconds"}


def test_each_function_has_an_errors_alarm() -> None:
    watched = {
        dimension["Value"]["Ref"]
        for alarm in alarms().values()
        if (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", "Errors")
        for dimension in alarm["Dimensions"]
        if dimension["Name"] == "FunctionName"
    }

    assert watched == set(functions())


def test_every_alarm_notifies_the_alarm_topic() -> None:
    for logical_id, alarm in alarms().items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], logical_id
        assert alarm["TreatMissingData"] == "notBreaching", logical_id


def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use() -> None:
    # CloudWatch cannot publish to a topic under the AWS managed aws/sns key: its policy cannot be changed.
    topic = stack().properties("AlarmTopic")
    key_policy = stack().resolve(stack().properties("AlarmTopicKey")["KeyPolicy"])

    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    cloudwatch = [s for s in key_policy["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert len(cloudwatch) == 1
    assert set(cloudwatch[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert cloudwatch[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_alarm_email_is_subscribed_only_when_given() -> None:
    subscription = template()["Resources"]["AlarmEmailSubscription"]

    assert subscription["Condition"] == "HasAlarmEmail"
    assert stack().condition("HasAlarmEmail") is False
    assert stack(AlarmEmail="ops@example.com").condition("HasAlarmEmail") is True


def test_dashboard_body_is_json_showing_every_emitted_metric() -> None:
    shown = {line[1] for line in dashboard_metrics()}

    assert shown >= EMITTED_METRICS


def test_dashboard_reads_the_namespace_and_service_the_functions_write() -> None:
    deployed = stack()
    written = {
        (
            deployed.resolve(function_environment(logical_id)["POWERTOOLS_METRICS_NAMESPACE"]),
            deployed.resolve(function_environment(logical_id)["POWERTOOLS_SERVICE_NAME"]),
        )
        for logical_id in functions()
    }
    custom = [line for line in dashboard_metrics() if not line[0].startswith("AWS/")]

    assert custom
    assert {(line[0], line[3]) for line in custom if line[2] == "service"} == written
    assert all(line[2] == "service" for line in custom)


def test_every_custom_metric_on_the_dashboard_is_emitted_by_the_code() -> None:
    source = "\n".join(path.read_text() for path in PACKAGE.rglob("*.py"))
    custom = {line[1] for line in dashboard_metrics() if not line[0].startswith("AWS/")}

    never_emitted = {name for name in custom if f'"{name}"' not in source}

    assert not never_emitted, f"the dashboard shows metrics the code never names: {sorted(never_emitted)}"


def test_dashboard_watches_both_queues() -> None:
    queues = {line[3] for line in dashboard_metrics() if line[0] == "AWS/SQS"}

    assert queues == {"CopyQueue.QueueName", "DeadLetterQueue.QueueName"}


def test_webhook_url_output_is_the_route_uploadcare_posts_to() -> None:
    # Given the webhook's HTTP API event
    event = template()["Resources"]["WebhookFunction"]["Properties"]["Events"]["UploadcareWebhook"]
    # When the stack's outputs are resolved
    url = stack().resolve(template()["Outputs"]["WebhookUrl"]["Value"])

    # Then the URL points at that route on that API
    assert event["Type"] == "HttpApi"
    assert event["Properties"]["ApiId"] == {"Ref": "HttpApi"}
    assert (event["Properties"]["Method"], event["Properties"]["PayloadFormatVersion"]) == ("POST", "2.0")
    assert url == "https://HttpApi-ref.execute-api.us-east-1.amazonaws.com" + event["Properties"]["Path"]
    assert event["Properties"]["Path"] == "/webhooks/uploadcare"


@pytest.mark.parametrize(
    "output",
    [
        "WebhookUrl",
        "CopyQueueUrl",
        "DeadLetterQueueUrl",
        "DeadLetterQueueArn",
        "IdempotencyTableName",
        "CopyLedgerTableName",
        "DashboardUrl",
        "WebhookFunctionName",
        "CopierFunctionName",
    ],
)
def test_outputs_name_what_an_operator_needs(output: str) -> None:
    declaration = template()["Outputs"][output]

    assert declaration["Description"]
    assert stack().resolve(declaration["Value"])


def test_webhook_route_is_throttled_by_parameters() -> None:
    settings = template()["Resources"]["HttpApi"]["Properties"]["DefaultRouteSettings"]

    assert settings == {
        "ThrottlingBurstLimit": {"Ref": "WebhookThrottlingBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "WebhookThrottlingRateLimit"},
    }


def test_an_alarm_fires_when_files_stay_unverified_after_a_reconcile_run() -> None:
    [alarm] = [stack().resolve(dict(a)) for a in alarms().values() if a["MetricName"] == "ReconcileStale"]

    assert alarm["Namespace"] == "UploadcareS3Copy"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "uploadcare-s3-copy"}]
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == ("Sum", 0, "GreaterThanThreshold")


def test_the_reconciler_runs_on_its_schedule_which_can_be_turned_off() -> None:
    event = template()["Resources"]["ReconcilerFunction"]["Properties"]["Events"]["ReconcileSchedule"]
    on, off = stack(), stack(ReconcileSchedule="off")

    assert event["Type"] == "Schedule"
    assert on.resolve(event["Properties"]["Schedule"]) == "rate(1 hour)"
    assert on.resolve(event["Properties"]["State"]) == "ENABLED"
    assert stack(ReconcileSchedule="cron(0 3 * * ? *)").resolve(event["Properties"]["Schedule"]) == "cron(0 3 * * ? *)"
    assert off.resolve(event["Properties"]["State"]) == "DISABLED"
    assert event["Properties"]["Input"] == "{}"
