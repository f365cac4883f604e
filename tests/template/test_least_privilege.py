"""Least privilege: every permission names its resource, and each function may touch only what its work needs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tests.template.support import functions, resources_of_type, stack, template
from uploadcare_s3_copy.reconciler.state import STATE_UUID

IAM_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy")


def alternatives(value: Any) -> Iterator[Any]:
    """Every concrete value a property can take: both branches of each `Fn::If`, nothing for `AWS::NoValue`."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _, when_true, when_false = value["Fn::If"]
        yield from alternatives(when_true)
        yield from alternatives(when_false)
    elif value != {"Ref": "AWS::NoValue"}:
        yield value


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def identity_policy_documents() -> Iterator[tuple[str, Any]]:
    """Every IAM policy document attached to a principal: roles' inline policies, policy resources, SAM Policies."""
    for logical_id, resource in template()["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                yield logical_id, policy["PolicyDocument"]
        elif resource["Type"] in IAM_POLICY_TYPES:
            yield logical_id, properties["PolicyDocument"]
        elif resource["Type"] == "AWS::Serverless::Function":
            for policy in as_list(properties.get("Policies", [])):
                if isinstance(policy, dict) and "Statement" in policy:
                    yield logical_id, policy


def statements() -> Iterator[tuple[str, Mapping[str, Any]]]:
    for logical_id, document in identity_policy_documents():
        for item in as_list(document["Statement"]):
            for statement in alternatives(item):
                yield logical_id, statement


def role_statements(role: str, **parameters: str) -> list[Mapping[str, Any]]:
    """A role's statements as deployed with these parameters (conditions decided, intrinsics resolved)."""
    deployed = stack(**parameters)
    found: list[Mapping[str, Any]] = []
    for policy in deployed.resolve(deployed.properties(role)["Policies"]):
        found.extend(as_list(policy["PolicyDocument"]["Statement"]))
    return found


def granted(role: str, service: str, **parameters: str) -> dict[str, set[str]]:
    """action -> resources, for the actions of one service (`s3`, `sqs` ...) a role is allowed."""
    grants: dict[str, set[str]] = {}
    for statement in role_statements(role, **parameters):
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            if action.startswith(service + ":"):
                grants.setdefault(action, set()).update(as_list(statement["Resource"]))
    return grants


def test_there_are_policies_to_check() -> None:
    assert sum(1 for _ in statements()) >= 10


def test_no_statement_grants_every_resource_except_xray() -> None:
    # X-Ray has no resource-level permissions: "*" is the only way to write traces.
    for logical_id, statement in statements():
        assert "NotResource" not in statement, logical_id
        assert "NotAction" not in statement, logical_id
        for resource in alternatives(statement["Resource"]):
            if "*" in as_list(resource):
                actions = as_list(statement["Action"])
                assert all(action.startswith("xray:") for action in actions), f"{logical_id}: {actions} on *"


def test_no_role_carries_a_managed_policy() -> None:
    # AWS managed policies for Lambda (basic execution, SQS polling) grant their actions on every resource.
    for logical_id, role in resources_of_type("AWS::IAM::Role"):
        assert "ManagedPolicyArns" not in role["Properties"], logical_id


def test_every_function_has_its_written_out_role() -> None:
    # Without `Role`, SAM generates one with AWSLambdaBasicExecutionRole and, for an SQS event,
    # AWSLambdaSQSQueueExecutionRole: both grant on Resource "*".
    for logical_id in functions():
        properties = template()["Resources"][logical_id]["Properties"]
        role = properties["Role"]["Fn::GetAtt"]
        assert role[1] == "Arn"
        assert template()["Resources"][role[0]]["Type"] == "AWS::IAM::Role"
        assert "Policies" not in properties, f"{logical_id}: Policies are ignored next to Role"


@pytest.mark.parametrize("role", ["WebhookFunctionRole", "CopierFunctionRole", "ReconcilerFunctionRole"])
@pytest.mark.parametrize(
    ("secret_id", "expected"),
    [
        (
            "uploadcare-s3-copy",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:uploadcare-s3-copy-??????",
        ),
        (
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/uploadcare-AbCdEf",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/uploadcare-AbCdEf",
        ),
    ],
)
def test_each_function_may_read_the_one_secret_only(role: str, secret_id: str, expected: str) -> None:
    grants = granted(role, "secretsmanager", UploadcareSecretId=secret_id)

    assert grants == {"secretsmanager:GetSecretValue": {expected}}


@pytest.mark.parametrize("role", ["WebhookFunctionRole", "CopierFunctionRole", "ReconcilerFunctionRole"])
def test_kms_decrypt_only_when_the_secret_has_a_customer_key(role: str) -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

    assert granted(role, "kms") == {}
    assert granted(role, "kms", SecretKmsKeyArn=key) == {"kms:Decrypt": {key}}


@pytest.mark.parametrize(
    ("prefix", "objects"),
    [("", "arn:aws:s3:::my-uploads/*"), ("backups/", "arn:aws:s3:::my-uploads/backups/*")],
)
def test_copier_may_only_look_at_objects_in_the_target_bucket(prefix: str, objects: str) -> None:
    grants = granted("CopierFunctionRole", "s3", TargetPrefix=prefix)

    assert grants == {
        "s3:GetObject": {objects},
        "s3:GetObjectTagging": {objects},  # infected files are always tagged
        "s3:PutObjectTagging": {objects},
        "s3:ListBucket": {"arn:aws:s3:::my-uploads"},
    }


@pytest.mark.parametrize("policy", ["keep", "tag"])
def test_the_copier_may_delete_no_object_unless_the_policy_is_delete(policy: str) -> None:
    grants = granted("CopierFunctionRole", "s3", OnSourceDelete=policy, CopySpecs="[]", ExtraTargetBuckets="b2")

    assert "s3:DeleteObject" not in grants
    assert not any(
        "Delete" in action
        for role in ("WebhookFunctionRole", "ReconcilerFunctionRole")
        for action in granted(role, "s3", OnSourceDelete=policy)
    )


@pytest.mark.parametrize(
    ("parameters", "objects"),
    [
        ({"TargetPrefix": "backups/"}, {"arn:aws:s3:::my-uploads/backups/*"}),
        (
            {"TargetPrefix": "backups/", "CopySpecs": "[]", "ExtraTargetBuckets": "web-copies,thumbs"},
            {"arn:aws:s3:::my-uploads/*", "arn:aws:s3:::web-copies/*", "arn:aws:s3:::thumbs/*"},
        ),
    ],
)
def test_with_delete_the_copier_may_delete_exactly_the_objects_it_copies(
    parameters: dict[str, str], objects: set[str]
) -> None:
    grants = granted("CopierFunctionRole", "s3", OnSourceDelete="delete", **parameters)

    assert grants["s3:DeleteObject"] == objects
    assert grants["s3:DeleteObject"] == grants["s3:GetObject"]
    assert "s3:DeleteBucket" not in grants
    assert "s3:DeleteObjectVersion" not in grants  # a versioned bucket keeps what was deleted


def test_the_deletion_policy_reaches_the_copier_and_the_reconciler_only() -> None:
    deployed = stack(OnSourceDelete="tag")
    for function in ("CopierFunction", "ReconcilerFunction"):
        variables = deployed.resolve(deployed.properties(function)["Environment"]["Variables"])
        assert variables["ON_SOURCE_DELETE"] == "tag"
    webhook = deployed.resolve(deployed.properties("WebhookFunction")["Environment"]["Variables"])
    assert "ON_SOURCE_DELETE" not in webhook  # it queues every deletion; the copier decides


def test_webhook_may_only_send_copy_requests() -> None:
    assert granted("WebhookFunctionRole", "sqs") == {"sqs:SendMessage": {"CopyQueue.Arn"}}
    assert granted("WebhookFunctionRole", "dynamodb") == {}
    assert granted("WebhookFunctionRole", "s3") == {}


def test_copier_consumes_the_copy_queue_and_sends_to_the_dead_letter_queue_only() -> None:
    assert granted("CopierFunctionRole", "sqs") == {
        "sqs:ReceiveMessage": {"CopyQueue.Arn"},
        "sqs:DeleteMessage": {"CopyQueue.Arn"},
        "sqs:GetQueueAttributes": {"CopyQueue.Arn"},
        "sqs:ChangeMessageVisibility": {"CopyQueue.Arn"},
        "sqs:SendMessage": {"DeadLetterQueue.Arn"},
    }


def test_copier_uses_the_idempotency_table_item_by_item_and_only_reads_and_puts_ledger_items() -> None:
    idempotency = {"IdempotencyTable.Arn"}
    both = {"IdempotencyTable.Arn", "CopyLedgerTable.Arn"}

    assert granted("CopierFunctionRole", "dynamodb") == {
        "dynamodb:BatchGetItem": {"CopyLedgerTable.Arn"},
        "dynamodb:GetItem": both,
        "dynamodb:PutItem": both,
        "dynamodb:UpdateItem": idempotency,
        "dynamodb:DeleteItem": idempotency,
    }


@pytest.mark.parametrize(
    ("role", "log_group"),
    [
        ("WebhookFunctionRole", "WebhookLogGroup"),
        ("CopierFunctionRole", "CopierLogGroup"),
        ("ReconcilerFunctionRole", "ReconcilerLogGroup"),
    ],
)
def test_each_function_writes_its_own_log_group_only(role: str, log_group: str) -> None:
    assert granted(role, "logs") == {
        "logs:CreateLogStream": {f"{log_group}.Arn"},
        "logs:PutLogEvents": {f"{log_group}.Arn"},
    }


def test_reconciler_reads_the_ledger_writes_only_its_own_cursor_and_queues_copy_requests() -> None:
    statements = role_statements("ReconcilerFunctionRole")
    [put] = [statement for statement in statements if "dynamodb:PutItem" in as_list(statement["Action"])]

    assert granted("ReconcilerFunctionRole", "dynamodb") == {
        "dynamodb:BatchGetItem": {"CopyLedgerTable.Arn"},
        "dynamodb:GetItem": {"CopyLedgerTable.Arn"},
        "dynamodb:PutItem": {"CopyLedgerTable.Arn"},
    }
    # PutItem only where the partition key is the reconciler's own (uploadcare_s3_copy/reconciler/state.py): it can
    # never write, or overwrite, the proof of a file.
    assert as_list(put["Action"]) == ["dynamodb:PutItem"]
    assert put["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [STATE_UUID]}}
    assert granted("ReconcilerFunctionRole", "sqs") == {"sqs:SendMessage": {"CopyQueue.Arn"}}
    assert granted("ReconcilerFunctionRole", "s3") == {}


@pytest.mark.parametrize("count", [1, 2, 9])
def test_with_copy_specs_the_copier_may_look_in_exactly_the_target_and_extra_buckets(count: int) -> None:
    extra = [f"extra-bucket-{n}" for n in range(count)]

    grants = granted(
        "CopierFunctionRole", "s3", TargetPrefix="backups/", CopySpecs="[]", ExtraTargetBuckets=",".join(extra)
    )

    buckets = ["my-uploads", *extra]
    objects = {f"arn:aws:s3:::{name}/*" for name in buckets}
    assert grants == {
        "s3:GetObject": objects,
        "s3:GetObjectTagging": objects,
        "s3:PutObjectTagging": objects,
        "s3:ListBucket": {f"arn:aws:s3:::{name}" for name in buckets},
    }


def test_copy_specs_are_given_to_the_copier_and_the_reconciler_only() -> None:
    deployed = stack(CopySpecs='[{"name":"a"}]')
    for function in ("CopierFunction", "ReconcilerFunction"):
        variables = deployed.resolve(deployed.properties(function)["Environment"]["Variables"])
        assert variables["COPY_SPECS"] == '[{"name":"a"}]'
    webhook = deployed.resolve(deployed.properties("WebhookFunction")["Environment"]["Variables"])
    assert "COPY_SPECS" not in webhook  # the copier fans a request out: the webhook queues one per file
