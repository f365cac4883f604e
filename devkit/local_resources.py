"""Creates one stack's AWS resources on a local (moto) endpoint from template.yaml's own definitions.

The queues (visibility timeout, retention, redrive to the DLQ after MaxReceiveCount) and the idempotency table
(key, TTL attribute) are read from the template and created as it declares them; the functions' environment is the
template's, resolved against the local resources. The secret and the bucket are parameters of the template (they
exist before a deployment), so they are created here from the parameter values. The demo, the integration tests,
the local runner and the benchmarks all use this, so none of them can drift from the template.
"""

from __future__ import annotations

import contextlib
import json
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from devkit.cfn_template import Stack, load_template
from devkit.make_events import SAMPLE_PUBLIC_KEY
from devkit.make_events import SAMPLE_SIGNING_SECRET as DEMO_SIGNING_SECRET

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"

DEMO_PUBLIC_KEY = SAMPLE_PUBLIC_KEY
DEMO_SECRET_KEY = "demosecretkey"  # noqa: S105 - a sample value for local runs, documented in events/README.md
DEMO_STORAGE = "demo-storage"
DEFAULT_API_URL = "https://api.uploadcare.com/"
# Only for local runs: X-Ray has no daemon here, and the handlers' JSON logs would drown the demo's own output.
LOCAL_ONLY_ENV = {"POWERTOOLS_TRACE_DISABLED": "true"}


@dataclass(frozen=True)
class StackSpec:
    """The parameters of a local stack; what is not set here takes template.yaml's default."""

    name: str = field(default_factory=lambda: f"local-{uuidlib.uuid4().hex[:8]}")
    public_key: str = DEMO_PUBLIC_KEY
    secret_key: str = DEMO_SECRET_KEY
    signing_secret: str = DEMO_SIGNING_SECRET
    storage: str = DEMO_STORAGE
    prefix: str = ""
    api_url: str = DEFAULT_API_URL
    log_level: str = "WARNING"
    parameters: Mapping[str, str] = field(default_factory=dict)  # any other template parameter


class _LocalTemplate(Stack):
    """The template evaluated with the physical ids of the resources created locally."""

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, str], stack_name: str) -> None:
        super().__init__(template, parameters)
        self.stack_name = stack_name
        self.physical: dict[str, dict[str, str]] = {}

    def ref(self, name: str) -> Any:
        if name == "AWS::StackName":
            return self.stack_name
        if name in self.physical:
            return self.physical[name]["Ref"]
        return super().ref(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        if logical_id in self.physical and attribute in self.physical[logical_id]:
            return self.physical[logical_id][attribute]
        return super().get_att(logical_id, attribute)

    def resources(self, resource_type: str) -> list[str]:
        return [name for name, resource in self.template["Resources"].items() if resource["Type"] == resource_type]

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """A function's variables as SAM merges them (Globals first, the function's own on top), resolved."""
        shared = self.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        own = self.properties(logical_id).get("Environment", {}).get("Variables", {})
        return {name: str(value) for name, value in self.resolve({**shared, **own}).items()}


@dataclass(frozen=True)
class LocalStack:
    spec: StackSpec
    secret_id: str
    bucket: str
    queue_url: str
    dlq_url: str
    table: str
    ledger_table: str
    environments: Mapping[str, Mapping[str, str]]  # by function logical id, as template.yaml declares them
    handlers: Mapping[str, str]  # by function logical id: "<CodeUri>:<module.function>"
    timeouts: Mapping[str, float] = field(default_factory=dict)  # by function logical id: its Timeout, in seconds

    def env_for(self, function: str) -> dict[str, str]:
        return {**self.environments[function], **LOCAL_ONLY_ENV}

    def webhook_env(self) -> dict[str, str]:
        return self.env_for("WebhookFunction")

    def copier_env(self, api_url: str | None = None) -> dict[str, str]:
        env = self.env_for("CopierFunction")
        if api_url:
            env["UPLOADCARE_API_URL"] = api_url
        return env

    def reconciler_env(self, api_url: str | None = None) -> dict[str, str]:
        env = self.env_for("ReconcilerFunction")
        if api_url:
            env["UPLOADCARE_API_URL"] = api_url
        return env

    def secret_value(self) -> dict[str, str]:
        return {
            "public_key": self.spec.public_key,
            "secret_key": self.spec.secret_key,
            "webhook_signing_secret": self.spec.signing_secret,
        }

    def put_secret(self, **changes: str) -> None:
        """Store a new version of the secret (key rotation)."""
        value = {**self.secret_value(), **changes}
        boto3.client("secretsmanager").put_secret_value(SecretId=self.secret_id, SecretString=json.dumps(value))


def _create_queues(stack: _LocalTemplate, name: str) -> None:
    sqs = boto3.client("sqs")
    queues = stack.resources("AWS::SQS::Queue")
    # Dead-letter queues first: a redrive policy names its DLQ's ARN.
    for logical_id in sorted(queues, key=lambda q: "RedrivePolicy" in stack.properties(q)):
        properties = stack.resolve(dict(stack.properties(logical_id)))
        attributes = {
            key: str(properties[key]) for key in ("VisibilityTimeout", "MessageRetentionPeriod") if key in properties
        }
        if "RedrivePolicy" in properties:
            redrive = properties["RedrivePolicy"]
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": redrive["deadLetterTargetArn"],
                    "maxReceiveCount": str(redrive["maxReceiveCount"]),
                }
            )
        url = sqs.create_queue(QueueName=f"{name}-{logical_id}", Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        stack.physical[logical_id] = {"Ref": url, "Arn": arn, "QueueName": f"{name}-{logical_id}"}


def _create_tables(stack: _LocalTemplate, name: str) -> None:
    dynamodb = boto3.client("dynamodb")
    for logical_id in stack.resources("AWS::DynamoDB::Table"):
        properties = stack.resolve(dict(stack.properties(logical_id)))
        table = f"{name}-{logical_id}"
        dynamodb.create_table(
            TableName=table,
            AttributeDefinitions=properties["AttributeDefinitions"],
            KeySchema=properties["KeySchema"],
            BillingMode=properties.get("BillingMode", "PAY_PER_REQUEST"),
        )
        ttl = properties.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"Enabled": bool(ttl["Enabled"]), "AttributeName": ttl["AttributeName"]},
            )
        stack.physical[logical_id] = {"Ref": table, "Arn": f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}"}


def create_stack(spec: StackSpec | None = None, template_path: Path = TEMPLATE) -> LocalStack:
    """Secret and bucket from the parameters, queues and table from the template, on whatever endpoint boto3 uses."""
    spec = spec or StackSpec()
    secret_id = f"{spec.name}-uploadcare"
    bucket = f"{spec.name}-copies".lower()
    parameters = {
        "UploadcareSecretId": secret_id,
        "UploadcareStorageName": spec.storage,
        "TargetBucketName": bucket,
        "TargetPrefix": spec.prefix,
        "UploadcareApiUrl": spec.api_url,
        "LogLevel": spec.log_level,
        **spec.parameters,
    }
    stack = _LocalTemplate(load_template(template_path), parameters, spec.name)

    secret = {
        "public_key": spec.public_key,
        "secret_key": spec.secret_key,
        "webhook_signing_secret": spec.signing_secret,
    }
    secrets_manager = boto3.client("secretsmanager")
    # A secret made before the stack, as a deployment's is (UploadcareSecretId names it), is kept as it is.
    with contextlib.suppress(secrets_manager.exceptions.ResourceExistsException):
        secrets_manager.create_secret(Name=secret_id, SecretString=json.dumps(secret))
    boto3.client("s3").create_bucket(Bucket=bucket)
    _create_queues(stack, spec.name)
    _create_tables(stack, spec.name)

    functions = stack.resources("AWS::Serverless::Function")
    return LocalStack(
        spec=spec,
        secret_id=secret_id,
        bucket=bucket,
        queue_url=stack.physical["CopyQueue"]["Ref"],
        dlq_url=stack.physical["DeadLetterQueue"]["Ref"],
        table=stack.physical["IdempotencyTable"]["Ref"],
        ledger_table=stack.physical["CopyLedgerTable"]["Ref"],
        environments={function: stack.function_environment(function) for function in functions},
        handlers={
            function: f"{stack.properties(function)['CodeUri']}:{stack.properties(function)['Handler']}"
            for function in functions
        },
        timeouts={
            function: float(stack.resolve(stack.properties(function).get("Timeout", 3))) for function in functions
        },
    )


def publish_stack(stack: LocalStack, *, api_url: str, webhook_url: str) -> str:
    """Creates a CloudFormation stack named like the local one whose Outputs and Parameters carry the local
    resources under template.yaml's names, so `--stack NAME` resolves them as it would on AWS."""
    environment = stack.copier_env(api_url)
    parameters = {
        "UploadcareSecretId": stack.secret_id,
        "UploadcareStorageName": stack.spec.storage,
        "TargetBucketName": environment.get("TARGET_BUCKET") or stack.bucket,
        "TargetPrefix": stack.spec.prefix,
        "CopyPattern": environment.get("COPY_PATTERN", "${default}"),
        "MakePublic": environment.get("MAKE_PUBLIC", "false"),
        "UploadcareApiUrl": api_url,
    }
    outputs = {
        "WebhookUrl": webhook_url,
        "CopyQueueUrl": stack.queue_url,
        "DeadLetterQueueUrl": stack.dlq_url,
        "IdempotencyTableName": stack.table,
        "CopyLedgerTableName": stack.ledger_table,
    }
    # Outputs are `Ref`s to parameters of their own: a template cannot hold a literal URL with `${...}` in it.
    template = {
        "Parameters": {name: {"Type": "String"} for name in [*parameters, *(f"Out{name}" for name in outputs)]},
        "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {name: {"Value": {"Ref": f"Out{name}"}} for name in outputs},
    }
    values = {**parameters, **{f"Out{name}": value for name, value in outputs.items()}}
    boto3.client("cloudformation").create_stack(
        StackName=stack.spec.name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in values.items()],
    )
    return stack.spec.name


def read_queue(queue_url: str, max_messages: int = 1000, *, release: bool = False) -> list[dict[str, Any]]:
    """Every message on a queue (received with a long visibility timeout so each is seen once), not deleted.
    `release`: made visible again afterwards, so a consumer still gets them."""
    sqs = boto3.client("sqs")
    seen: list[dict[str, Any]] = []
    while len(seen) < max_messages:
        answer = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=600,
            WaitTimeSeconds=0,
        )
        batch = answer.get("Messages", [])
        if not batch:
            break
        seen.extend(batch)
    if release:
        for start in range(0, len(seen), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
                for n, message in enumerate(seen[start : start + 10])
            ]
            sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
    return seen
