"""`make e2e`'s steps (devkit/e2e.py) against the local servers: the same Run as against a real account, with the
stack on moto, the emulator as Uploadcare (its Upload API delivers the signed webhook) and a local stand-in for API
Gateway in front of the webhook function. Without credentials `make e2e` is one skip line and exit 0."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid as uuidlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from devkit.e2e import Run, Settings, settings_from
from devkit.emulator import Fault, Storage, UploadcareEmulator
from devkit.flow import LocalFlow
from devkit.local_resources import StackSpec, create_stack, publish_stack
from devkit.sqs_poller import drain
from devkit.webhook_gateway import WebhookGateway
from tests.conftest import ROOT
from uploadcare_s3_copy.observability import metrics

STORAGE = "e2e-storage"


class LocalPlatform:
    """Deploys the stack on moto from template.yaml, with a webhook URL served by WebhookGateway; `tick` runs the
    copier over the queue as Lambda's event source would; `delete_stack` deletes what the stack made."""

    def __init__(self, emulator: UploadcareEmulator, gateway: WebhookGateway) -> None:
        self.emulator = emulator
        self.gateway = gateway
        self.stack_resources: Any = None
        self.deleted = False

    def deploy(self, stack: str, secret_id: str, settings: Settings) -> None:
        local = create_stack(
            StackSpec(
                name=stack,
                storage=settings.storage,
                prefix=settings.prefix,
                api_url=settings.api_url,
                parameters={"TargetBucketName": settings.bucket, "UploadcareSecretId": secret_id},
            )
        )
        publish_stack(local, api_url=settings.api_url, webhook_url=self.gateway.url)
        os.environ.update({**local.webhook_env(), **local.copier_env()})
        metrics.namespace = os.environ["POWERTOOLS_METRICS_NAMESPACE"]
        LocalFlow.reset_functions()
        self.stack_resources = local

    def tick(self) -> None:
        import handle_copy  # noqa: PLC0415 - once the environment is the stack's

        drain(boto3.client("sqs"), self.stack_resources.queue_url, handle_copy.lambda_handler, function_timeout=60)

    def delete_stack(self, stack: str) -> None:
        if self.stack_resources is None:
            return
        sqs, dynamodb = boto3.client("sqs"), boto3.client("dynamodb")
        for url in (self.stack_resources.queue_url, self.stack_resources.dlq_url):
            sqs.delete_queue(QueueUrl=url)
        dynamodb.delete_table(TableName=self.stack_resources.table)
        boto3.client("cloudformation").delete_stack(StackName=stack)
        self.deleted = True


@pytest.fixture
def local_run(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Run, LocalPlatform, UploadcareEmulator]]:
    bucket = f"e2e-{uuidlib.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    saved = dict(os.environ)
    import handle_webhook  # noqa: PLC0415

    with (
        UploadcareEmulator(storages=[Storage(STORAGE, bucket, "")], aws_endpoint=aws) as emulator,
        WebhookGateway(handle_webhook.lambda_handler) as gateway,
    ):
        settings = Settings(
            public_key=emulator.public_key,
            secret_key=emulator.secret_key,
            storage=STORAGE,
            bucket=bucket,
            api_url=emulator.url,
            upload_url=emulator.url,
        )
        platform = LocalPlatform(emulator, gateway)
        out = io.StringIO()
        run = Run(settings, platform, dict(os.environ), out=out, proof_timeout=20.0, poll_seconds=0.2)
        try:
            yield run, platform, emulator
        finally:
            LocalFlow.reset_functions()
            os.environ.clear()
            os.environ.update(saved)


def cloudformation_stacks() -> list[str]:
    answer = boto3.client("cloudformation").list_stacks()["StackSummaries"]
    return [stack["StackName"] for stack in answer if stack["StackStatus"] != "DELETE_COMPLETE"]


def test_every_step_passes_on_the_local_servers_and_the_teardown_leaves_nothing(
    local_run: tuple[Run, LocalPlatform, UploadcareEmulator],
) -> None:
    run, platform, emulator = local_run

    # When the e2e run executes against the local platform
    code = run.execute()

    # Then each step passed: the webhook Uploadcare delivered after the upload went through the gateway, the copier
    # made the copy, the ledger and S3 prove it, and the audit counted it
    text = run.out.getvalue()
    assert code == 0, text
    for step in ("deploy", "webhook register", "doctor", "upload", "proof", "audit"):
        assert f"  ✓ {step}" in text
    assert run.uploaded is not None
    assert [d["status"] for d in emulator.deliveries if d["uuid"] == run.uploaded] == [202]
    assert platform.gateway.invocations == 1
    assert emulator.copies(run.uploaded) == 1
    assert "1 of 1 file verified" in text, text
    # and the teardown deleted the webhook, the upload, the copy, the stack, the ledger and the secret
    assert emulator.webhooks() == []
    assert emulator.file_info(run.uploaded)["datetime_removed"]
    assert run.copied is not None
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=run.copied[0])
    assert platform.deleted
    assert run.stack not in cloudformation_stacks()
    assert run.outputs["CopyLedgerTableName"] not in boto3.client("dynamodb").list_tables()["TableNames"]
    secrets = boto3.client("secretsmanager").list_secrets()["SecretList"]
    assert run.secret_id not in [secret["Name"] for secret in secrets]
    assert "e2e: OK" in text


def test_a_copy_that_never_lands_fails_the_run_on_its_deadline_and_still_tears_everything_down(
    local_run: tuple[Run, LocalPlatform, UploadcareEmulator],
) -> None:
    run, _platform, emulator = local_run
    # Given an emulator whose every remote_copy answers 503 (the copier gives the request back each time)
    run.proof_timeout = 3.0
    original = emulator.add_file

    def add_failing(**kwargs: Any) -> Any:
        added = original(**kwargs)
        emulator.script(added.uuid, *(Fault.server_error(503) for _ in range(100)))
        return added

    emulator.add_file = add_failing  # type: ignore[method-assign]

    # When the run executes
    code = run.execute()

    # Then the proof step fails on its deadline, the run fails, and the teardown still deleted everything
    text = run.out.getvalue()
    assert code == 1
    assert "  ✗ proof" in text
    assert "no verified copy of" in text
    assert "after 3 s" in text
    assert "  ✓ delete stack" in text
    assert emulator.webhooks() == []
    assert run.stack not in cloudformation_stacks()
    secrets = boto3.client("secretsmanager").list_secrets()["SecretList"]
    assert run.secret_id not in [secret["Name"] for secret in secrets]
    assert "e2e: FAILED" in text


def test_without_credentials_make_e2e_is_one_skip_line_and_exit_0() -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "UPLOADCARE_", "E2E_"))}
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

    done = subprocess.run(
        [sys.executable, "-m", "devkit.e2e"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1
    assert done.stdout.startswith(
        "e2e: skipped: no UPLOADCARE_PUBLIC_KEY, UPLOADCARE_SECRET_KEY, E2E_STORAGE, E2E_BUCKET"
    )
    assert "AWS credentials" in done.stdout


def test_the_settings_name_only_what_is_missing() -> None:
    environ = {
        "UPLOADCARE_PUBLIC_KEY": "pub",
        "UPLOADCARE_SECRET_KEY": "sec",
        "E2E_STORAGE": "storage",
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_REGION": "eu-west-1",
    }

    missing_bucket = settings_from(environ)
    complete = settings_from({**environ, "E2E_BUCKET": "bucket", "E2E_PREFIX": "up/"})

    assert missing_bucket == "e2e: skipped: no E2E_BUCKET (docs/e2e.md says how to run it and what it costs)"
    assert complete == Settings("pub", "sec", "storage", "bucket", "up/", "eu-west-1")
