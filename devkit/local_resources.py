"""Creates the AWS resources of one stack on a local (moto) endpoint, and the functions' environment for them.

The demo, the integration tests and the benchmarks all use this, so they cannot drift from each other.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

import boto3

DEMO_PUBLIC_KEY = "demopublickey"
DEMO_SECRET_KEY = "demosecretkey"  # noqa: S105 - a sample value for local runs, documented in events/README.md
DEMO_SIGNING_SECRET = "demo-signing-secret"  # noqa: S105 - ditto
DEMO_STORAGE = "demo-storage"


@dataclass(frozen=True)
class StackSpec:
    """The knobs of a local stack; defaults mirror template.yaml's parameter defaults."""

    name: str = field(default_factory=lambda: f"local-{uuidlib.uuid4().hex[:8]}")
    public_key: str = DEMO_PUBLIC_KEY
    secret_key: str = DEMO_SECRET_KEY
    signing_secret: str = DEMO_SIGNING_SECRET
    storage: str = DEMO_STORAGE
    prefix: str = ""
    pattern: str = "${default}"
    make_public: bool = False
    skip_derived: bool = False
    max_receive_count: int = 5
    visibility_timeout: int = 1800
    concurrency: int = 10


@dataclass(frozen=True)
class LocalStack:
    spec: StackSpec
    secret_id: str
    bucket: str
    queue_url: str
    dlq_url: str
    table: str

    def webhook_env(self) -> dict[str, str]:
        return {
            "UPLOADCARE_SECRET_ID": self.secret_id,
            "COPY_QUEUE_URL": self.queue_url,
            "SKIP_DERIVED": str(self.spec.skip_derived).lower(),
            **POWERTOOLS_ENV,
            "POWERTOOLS_SERVICE_NAME": "uploadcare-webhook",
        }

    def copier_env(self, api_url: str) -> dict[str, str]:
        return {
            "UPLOADCARE_SECRET_ID": self.secret_id,
            "UPLOADCARE_API_URL": api_url,
            "COPY_DLQ_URL": self.dlq_url,
            "IDEMPOTENCY_TABLE": self.table,
            "COPY_TARGET": self.spec.storage,
            "TARGET_BUCKET": self.bucket,
            "TARGET_PREFIX": self.spec.prefix,
            "COPY_PATTERN": self.spec.pattern,
            "MAKE_PUBLIC": str(self.spec.make_public).lower(),
            "COPY_CONCURRENCY": str(self.spec.concurrency),
            **POWERTOOLS_ENV,
            "POWERTOOLS_SERVICE_NAME": "uploadcare-copier",
        }

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


POWERTOOLS_ENV = {
    "POWERTOOLS_METRICS_NAMESPACE": "UploadcareS3Copy",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


def create_stack(spec: StackSpec | None = None) -> LocalStack:
    """Secret, bucket, copy queue with redrive to a DLQ, and idempotency table, on whatever endpoint boto3 uses."""
    spec = spec or StackSpec()
    secrets = boto3.client("secretsmanager")
    s3 = boto3.client("s3")
    sqs = boto3.client("sqs")
    dynamodb = boto3.client("dynamodb")

    secret_id = f"{spec.name}-uploadcare"
    value = {
        "public_key": spec.public_key,
        "secret_key": spec.secret_key,
        "webhook_signing_secret": spec.signing_secret,
    }
    secrets.create_secret(Name=secret_id, SecretString=json.dumps(value))
    bucket = f"{spec.name}-copies"
    s3.create_bucket(Bucket=bucket)
    dlq_url = sqs.create_queue(QueueName=f"{spec.name}-dlq", Attributes={"MessageRetentionPeriod": "1209600"})[
        "QueueUrl"
    ]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(spec.max_receive_count)}
    queue_url = sqs.create_queue(
        QueueName=f"{spec.name}-copy",
        Attributes={"VisibilityTimeout": str(spec.visibility_timeout), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    table = f"{spec.name}-idempotency"
    dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )
    return LocalStack(spec, secret_id, bucket, queue_url, dlq_url, table)


def read_queue(queue_url: str, max_messages: int = 1000) -> list[dict[str, Any]]:
    """Every message on a queue (received with a long visibility timeout so each is seen once), not deleted."""
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
    return seen
