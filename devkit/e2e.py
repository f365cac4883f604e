"""`make e2e`: the whole product against a real AWS account and a real Uploadcare project, then torn down.

Skipped with one line (exit 0) unless every setting is there:

* AWS credentials (`AWS_PROFILE`, or `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, or your AWS configuration) and a
  region (`AWS_REGION`, `AWS_DEFAULT_REGION` or the profile's);
* `UPLOADCARE_PUBLIC_KEY` and `UPLOADCARE_SECRET_KEY`: the REST API keys of a project you can test with;
* `E2E_STORAGE` and `E2E_BUCKET`: a custom storage of that project and the S3 bucket it is connected to
  (`E2E_PREFIX`: the storage's prefix, if it has one).

The steps, each printed as it ends: store the keys in a new secret; deploy a throwaway stack
(`uploadcare-s3-copy-e2e-<random>`: `sam build` and `sam deploy` with the project's own SAM CLI); register its
webhook (`uploadcare-s3-copy webhook register`); run `doctor`; upload a small file with Uploadcare's Upload API;
wait for the proof: the ledger item `verified` and the object in the bucket with the uploaded size (the real path:
Uploadcare → API Gateway → webhook function → SQS → copier); run `audit` over the minutes of the run. Then,
whatever happened before: delete the webhook and the uploaded file at Uploadcare, the copy in the bucket, the stack
(`sam delete`), its retained copy ledger table and the secret. Exit 0 only when every step passed and everything
was deleted.

The same steps run against the local servers in tests/integration/test_e2e.py (`LocalPlatform`: moto and the
emulator, whose Upload API delivers the signed webhook to a local stand-in for API Gateway).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import hmac
import io
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import boto3
import urllib3
from botocore.exceptions import BotoCoreError, ClientError

from uploadcare_s3_copy.ledger import DEFAULT_SPEC, Ledger, LedgerStatus
from uploadcare_s3_copy.reasons import CopyFailure
from uploadcare_s3_copy.uploadcare import Credentials
from uploadcare_s3_copy_cli.admin_api import AdminClient
from uploadcare_s3_copy_cli.app import main as cli
from uploadcare_s3_copy_cli.context import find_region

ROOT = Path(__file__).resolve().parent.parent
UPLOAD_API_URL = "https://upload.uploadcare.com/"
REST_API_URL = "https://api.uploadcare.com/"
PROOF_TIMEOUT_SECONDS = 300.0
POLL_SECONDS = 5.0
SIGNED_UPLOAD_SECONDS = 600
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Settings:
    public_key: str
    secret_key: str
    storage: str
    bucket: str
    prefix: str = ""
    region: str | None = None
    api_url: str = REST_API_URL
    upload_url: str = UPLOAD_API_URL


def settings_from(environ: Mapping[str, str]) -> Settings | str:
    """The settings, or the one line that says what is missing (then the run is skipped)."""
    missing = [
        name
        for name in ("UPLOADCARE_PUBLIC_KEY", "UPLOADCARE_SECRET_KEY", "E2E_STORAGE", "E2E_BUCKET")
        if not environ.get(name)
    ]
    if not has_aws_credentials(environ):
        missing.append("AWS credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
    region = None
    if not missing:
        region, _ = find_region(environ)
        if region is None:
            missing.append("an AWS region (AWS_REGION)")
    if missing:
        return f"e2e: skipped: no {', '.join(missing)} (docs/e2e.md says how to run it and what it costs)"
    return Settings(
        public_key=environ["UPLOADCARE_PUBLIC_KEY"],
        secret_key=environ["UPLOADCARE_SECRET_KEY"],
        storage=environ["E2E_STORAGE"],
        bucket=environ["E2E_BUCKET"],
        prefix=environ.get("E2E_PREFIX", ""),
        region=region,
    )


def has_aws_credentials(environ: Mapping[str, str]) -> bool:
    """Credentials from the environment, a profile or the shared files; the instance metadata service is not asked
    (off EC2 it costs seconds of timeouts, and an e2e run from a laptop does not use it)."""
    if environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY"):
        return True
    saved = os.environ.get("AWS_EC2_METADATA_DISABLED")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    try:
        return boto3.session.Session(profile_name=environ.get("AWS_PROFILE") or None).get_credentials() is not None
    except BotoCoreError:
        return False
    finally:
        if saved is None:
            os.environ.pop("AWS_EC2_METADATA_DISABLED", None)
        else:
            os.environ["AWS_EC2_METADATA_DISABLED"] = saved


def upload_file(upload_url: str, public_key: str, secret_key: str, name: str, content: bytes, clock: float) -> str:
    """Uploadcare's Upload API, `POST /base/` (multipart), stored at once; signed, which works whether or not the
    project requires signed uploads. Returns the new file's UUID."""
    expire = str(int(clock) + SIGNED_UPLOAD_SECONDS)
    signature = hmac.new(secret_key.encode(), expire.encode(), hashlib.sha256).hexdigest()
    fields: dict[str, Any] = {
        "UPLOADCARE_PUB_KEY": public_key,
        "UPLOADCARE_STORE": "1",
        "signature": signature,
        "expire": expire,
        "file": (name, content, "text/plain"),
    }
    answer = urllib3.request("POST", upload_url.rstrip("/") + "/base/", fields=fields, timeout=30.0)
    if answer.status != 200:
        raise E2EFailure(f"the Upload API answered {answer.status}: {answer.data[:200]!r}")
    uuid = json.loads(answer.data).get("file")
    if not isinstance(uuid, str):
        raise E2EFailure(f"the Upload API answered no file UUID: {answer.data[:200]!r}")
    return uuid


class E2EFailure(Exception):
    """A step that did not pass."""


class Platform(Protocol):
    """Where the stack runs: deployed for real, or on the local servers."""

    def deploy(self, stack: str, secret_id: str, settings: Settings) -> None: ...
    def tick(self) -> None: ...  # what makes the queue move (nothing on AWS: Lambda's event source does)
    def delete_stack(self, stack: str) -> None: ...


@dataclass
class Run:
    settings: Settings
    platform: Platform
    environ: Mapping[str, str]  # the CLI's (region, endpoints)
    out: Any = sys.stdout
    proof_timeout: float = PROOF_TIMEOUT_SECONDS
    poll_seconds: float = POLL_SECONDS
    sleep: Callable[[float], None] = time.sleep
    stack: str = field(default_factory=lambda: f"uploadcare-s3-copy-e2e-{secrets.token_hex(3)}")
    outputs: dict[str, str] = field(default_factory=dict)
    uploaded: str | None = None
    expected_size: int = 0
    copied: tuple[str, str] | None = None  # bucket, key
    problems: list[str] = field(default_factory=list)

    @property
    def secret_id(self) -> str:
        return f"{self.stack}-uploadcare"

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def client(self) -> AdminClient:
        return AdminClient(Credentials(self.settings.public_key, self.settings.secret_key), self.settings.api_url)

    def cli(self, *argv: str, expect: int = 0) -> str:
        out, err = io.StringIO(), io.StringIO()
        code = cli([*argv, "--stack", self.stack], environ=self.environ, out=out, err=err)
        if code != expect:
            raise E2EFailure(f"uploadcare-s3-copy {' '.join(argv)}: exit {code}\n{out.getvalue()}{err.getvalue()}")
        return out.getvalue()

    def execute(self) -> int:
        """Every step, then the teardown whatever happened; 0 only when all passed and all was deleted."""
        self.say(f"e2e: stack {self.stack}, storage {self.settings.storage} → s3://{self.settings.bucket}")
        started = datetime.now(UTC) - timedelta(minutes=1)
        try:
            self.step("deploy", self.deploy)
            self.step("webhook register", lambda: self.cli("webhook", "register").strip().splitlines()[-1])
            self.step("doctor", lambda: self.cli("doctor").strip().splitlines()[-1])
            self.step("upload", self.upload)
            self.step("proof", self.wait_for_proof)
            self.step("audit", lambda: self.audit(started))
        except E2EFailure as failure:
            self.problems.append(str(failure))
        finally:
            self.teardown()
        if self.problems:
            self.say("e2e: FAILED\n  " + "\n  ".join(self.problems))
            return 1
        self.say("e2e: OK: deployed, copied, proved, audited and deleted")
        return 0

    def step(self, name: str, action: Callable[[], str | None]) -> None:
        began = time.monotonic()
        try:
            detail = action()
        except E2EFailure as failure:
            self.say(f"  ✗ {name:<17} {failure}")
            raise
        except (CopyFailure, ClientError, BotoCoreError, OSError, subprocess.CalledProcessError) as error:
            self.say(f"  ✗ {name:<17} {type(error).__name__}: {error}")
            raise E2EFailure(f"{name}: {error}") from error
        self.say(f"  ✓ {name:<17} {time.monotonic() - began:6.1f} s  {detail or ''}".rstrip())

    def deploy(self) -> str:
        boto3.client("secretsmanager").create_secret(
            Name=self.secret_id,
            SecretString=json.dumps({"public_key": self.settings.public_key, "secret_key": self.settings.secret_key}),
        )
        self.platform.deploy(self.stack, self.secret_id, self.settings)
        stack = boto3.client("cloudformation").describe_stacks(StackName=self.stack)["Stacks"][0]
        self.outputs = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
        return self.outputs.get("WebhookUrl", "")

    def upload(self) -> str:
        content = f"uploadcare-s3-copy e2e {self.stack} {datetime.now(UTC).isoformat()}\n".encode()
        settings = self.settings
        self.uploaded = upload_file(
            settings.upload_url, settings.public_key, settings.secret_key, "e2e.txt", content, time.time()
        )
        self.expected_size = len(content)
        return f"{self.uploaded} ({len(content)} bytes)"

    def wait_for_proof(self) -> str:
        """The ledger says verified and S3 has the object, with the uploaded size, before the deadline."""
        assert self.uploaded is not None
        ledger = Ledger(boto3.client("dynamodb"), self.outputs["CopyLedgerTableName"])
        deadline = time.monotonic() + self.proof_timeout
        seen = "nothing in the ledger yet"
        while True:
            self.platform.tick()
            item = ledger.get(self.uploaded, DEFAULT_SPEC)
            if item is not None and item.status is LedgerStatus.VERIFIED and item.bucket and item.key:
                self.copied = (item.bucket, item.key)
                size = int(boto3.client("s3").head_object(Bucket=item.bucket, Key=item.key)["ContentLength"])
                if size != self.expected_size:
                    raise E2EFailure(f"s3://{item.bucket}/{item.key} has {size} bytes, uploaded {self.expected_size}")
                return f"s3://{item.bucket}/{item.key}, {size} bytes, verified at {item.verified_at}"
            if item is not None:
                seen = f"the ledger says {item.status}"
            if time.monotonic() >= deadline:
                raise E2EFailure(f"no verified copy of {self.uploaded} after {self.proof_timeout:g} s ({seen})")
            self.sleep(self.poll_seconds)

    def audit(self, started: datetime) -> str:
        """`audit` over the minutes of the run: the uploaded file is among the files, and every one is verified."""
        window = [moment.strftime("%Y-%m-%dT%H:%M:%SZ") for moment in (started, datetime.now(UTC) + _MINUTE)]
        with tempfile.TemporaryDirectory() as folder:
            report = Path(folder) / "audit.csv"
            text = self.cli("audit", "--from", window[0], "--to", window[1], "--report", str(report))
            with report.open(encoding="utf-8") as handle:
                rows = [row for row in csv.DictReader(handle) if row.get("uuid") == self.uploaded]
        if not rows or any(row.get("status") != "verified" for row in rows):
            raise E2EFailure(f"the audit does not show {self.uploaded} verified: {rows or 'not listed'}")
        return f"{text.strip().splitlines()[-1]}, {self.uploaded} among them"

    def teardown(self) -> None:
        """Everything the run made, each part on its own: one failure does not keep the others."""
        parts: list[tuple[str, Callable[[], None]]] = [
            ("webhook", self._delete_webhook),
            ("uploaded file", self._delete_upload),
            ("copy in the bucket", self._delete_copy),
            ("stack", lambda: self.platform.delete_stack(self.stack)),
            ("copy ledger", self._delete_ledger),
            ("secret", self._delete_secret),
        ]
        for name, action in parts:
            try:
                action()
            except (CopyFailure, ClientError, BotoCoreError, OSError, subprocess.CalledProcessError) as error:
                self.problems.append(f"teardown of the {name}: {type(error).__name__}: {error}")
                self.say(f"  ✗ delete {name:<20} {error}")
            else:
                self.say(f"  ✓ delete {name}")

    def _delete_webhook(self) -> None:
        url = self.outputs.get("WebhookUrl")
        if url:
            self.client().request("DELETE", "/webhooks/unsubscribe/", {"target_url": url})

    def _delete_upload(self) -> None:
        if self.uploaded:
            self.client().request("DELETE", f"/files/{self.uploaded}/storage/")

    def _delete_copy(self) -> None:
        if self.copied:
            boto3.client("s3").delete_object(Bucket=self.copied[0], Key=self.copied[1])

    def _delete_ledger(self) -> None:
        table = self.outputs.get("CopyLedgerTableName")
        if table:  # DeletionPolicy Retain: the stack's deletion keeps it, a throwaway run does not
            with contextlib.suppress(boto3.client("dynamodb").exceptions.ResourceNotFoundException):
                boto3.client("dynamodb").delete_table(TableName=table)

    def _delete_secret(self) -> None:
        secrets_manager = boto3.client("secretsmanager")
        with contextlib.suppress(secrets_manager.exceptions.ResourceNotFoundException):
            secrets_manager.delete_secret(SecretId=self.secret_id, ForceDeleteWithoutRecovery=True)


class AwsPlatform:
    """The stack deployed for real with the project's own SAM CLI (make sam-venv), no telemetry."""

    def __init__(self, region: str, sam: Path | None = None) -> None:
        self.region = region
        self.sam = sam or ROOT / ".venv-sam" / "bin" / "sam"

    def _env(self) -> dict[str, str]:
        python = subprocess.run(
            [str(ROOT / "scripts" / "find-python.sh")], capture_output=True, text=True, check=True
        ).stdout.strip()
        path = f"{Path(python).parent}{os.pathsep}{os.environ['PATH']}"
        return {**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": path}

    def deploy(self, stack: str, secret_id: str, settings: Settings) -> None:
        if not self.sam.exists():
            subprocess.run(["make", "sam-venv"], cwd=ROOT, check=True)
        build_dir = ROOT / ".aws-sam" / "e2e"
        env = self._env()
        subprocess.run([str(self.sam), "build", "--build-dir", str(build_dir)], cwd=ROOT, env=env, check=True)
        overrides = {
            "UploadcareSecretId": secret_id,
            "UploadcareStorageName": settings.storage,
            "TargetBucketName": settings.bucket,
            **({"TargetPrefix": settings.prefix} if settings.prefix else {}),
        }
        subprocess.run(
            [
                str(self.sam),
                "deploy",
                "--template-file",
                str(build_dir / "template.yaml"),
                "--stack-name",
                stack,
                "--region",
                self.region,
                "--resolve-s3",
                "--capabilities",
                "CAPABILITY_IAM",
                "--no-confirm-changeset",
                "--no-fail-on-empty-changeset",
                "--parameter-overrides",
                *(f"{name}={value}" for name, value in overrides.items()),
            ],
            cwd=ROOT,
            env=env,
            check=True,
        )

    def tick(self) -> None:
        return None  # Lambda's SQS event source runs the copier

    def delete_stack(self, stack: str) -> None:
        try:
            boto3.client("cloudformation").describe_stacks(StackName=stack)
        except ClientError as error:
            if "does not exist" in str(error):
                return  # the deploy never got as far as creating it
            raise
        subprocess.run(
            [str(self.sam), "delete", "--stack-name", stack, "--region", self.region, "--no-prompts"],
            cwd=ROOT,
            env=self._env(),
            check=True,
        )


@contextlib.contextmanager
def region_set(region: str | None) -> Iterator[None]:
    """boto3 in this process in the run's region (AWS_REGION, which botocore ignores, included)."""
    saved = os.environ.get("AWS_DEFAULT_REGION")
    if region:
        os.environ["AWS_DEFAULT_REGION"] = region
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.e2e",
        description=(__doc__ or "").split("\n\n")[0],
        epilog="Settings: "
        + ", ".join(["UPLOADCARE_PUBLIC_KEY", "UPLOADCARE_SECRET_KEY", "E2E_STORAGE", "E2E_BUCKET"])
        + ", AWS credentials and region (docs/e2e.md).",
    )
    parser.add_argument("--proof-timeout", type=float, default=PROOF_TIMEOUT_SECONDS, help="seconds to wait for it")
    args = parser.parse_args(argv)
    settings = settings_from(os.environ)
    if isinstance(settings, str):
        print(settings)
        return 0
    assert settings.region is not None
    with region_set(settings.region):
        run = Run(settings, AwsPlatform(settings.region), os.environ, proof_timeout=args.proof_timeout)
        return run.execute()


if __name__ == "__main__":
    sys.exit(main())
