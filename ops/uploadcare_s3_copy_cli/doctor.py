"""`doctor`: is this stack able to copy? Each check prints ✓ or ✗, and a ✗ comes with a one-line fix.

Checks, in order: the secret and its three keys; the keys against Uploadcare (`GET /project/`); the `file.uploaded`
webhook for the stack's WebhookUrl (active, signed with the stored secret, version 0.7), and the `file.deleted` one
ON_SOURCE_DELETE tag or delete needs; the bucket (head_bucket), and with delete its versioning;
the copy queue, the dead-letter queue (and whether it is empty) and the idempotency table; optionally a real copy
of one file proved with head_object (the copier's own copy_and_verify).
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from uploadcare_s3_copy.copier.rules import Deadline
from uploadcare_s3_copy.copy_request import CopyRequest
from uploadcare_s3_copy.reasons import CopyFailure, Reason
from uploadcare_s3_copy.secrets import REQUIRED_FIELDS
from uploadcare_s3_copy.source_changes import FILE_DELETED, FILE_INFECTED, FILE_INFO_UPDATED, SourcePolicy
from uploadcare_s3_copy.specs import CopySpec
from uploadcare_s3_copy_cli import copying, webhooks
from uploadcare_s3_copy_cli.admin_api import AdminClient
from uploadcare_s3_copy_cli.base import EXIT_OK, EXIT_PROBLEMS, MARK_FAIL, MARK_OK, MARK_SKIPPED, CliError, plural
from uploadcare_s3_copy_cli.context import Context
from uploadcare_s3_copy_cli.queueing import queue_depths
from uploadcare_s3_copy_cli.resources import SETTINGS_BY_NAME

NAME_WIDTH = 18


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: not checked, because something it needs failed first
    summary: str
    fix: str = ""

    def lines(self) -> list[str]:
        mark = MARK_OK if self.ok else MARK_FAIL if self.ok is False else MARK_SKIPPED
        lines = [f"{mark} {self.name:<{NAME_WIDTH}} {self.summary}"]
        if self.ok is False and self.fix:
            lines.append(f"  {'':<{NAME_WIDTH}} fix: {self.fix}")
        return lines


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _not_configured(name: str, setting: str) -> Check:
    how = SETTINGS_BY_NAME[setting].how_to_give
    return Check(name, False, "not configured", f"give --stack NAME or {how}")


class Doctor:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.r = ctx.resources
        self.client: AdminClient | None = None
        self.signing_secret = ""
        self.hooks: list[dict[str, Any]] | None = None  # GET /webhooks/, once, for both webhook checks

    def checks(self, test_copy: str | None) -> list[Callable[[], Check]]:
        steps: list[Callable[[], Check]] = [self.secret, self.keys, self.webhook, self.deletion_webhook]
        buckets = list(dict.fromkeys(spec.bucket for spec in self.r.specs)) if self.r.copy_specs else [self.r.bucket]
        # each spec's bucket, and whether the copier may verify copies there
        steps.extend(functools.partial(self.bucket, bucket) for bucket in buckets)
        if self.r.on_source_delete is SourcePolicy.DELETE:
            steps.extend(functools.partial(self.versioning, bucket) for bucket in buckets if bucket)
        steps += [self.copy_queue, self.dead_letter_queue, self.table]
        if test_copy:
            specs = self.r.specs if self.r.copy_specs else self.r.specs[:1]
            steps.extend(functools.partial(self.test_copy, test_copy, spec) for spec in specs)
        return steps

    def secret(self) -> Check:
        name = "secret"
        if not self.r.secret_id:
            return _not_configured(name, "secret_id")
        try:
            value = self.ctx.secret_value()
        except ClientError as error:
            if _code(error) == "ResourceNotFoundException":
                return Check(
                    name,
                    False,
                    f"{self.r.secret_id} does not exist",
                    f"aws secretsmanager create-secret --name {self.r.secret_id} --secret-string file://secret.json "
                    f"(with {', '.join(REQUIRED_FIELDS)}; docs/deploy.md, step 1)",
                )
            return Check(name, False, f"cannot read {self.r.secret_id}: {self.ctx.aws_problem(error)}", _read_fix())
        except CliError as error:
            return Check(name, False, str(error), "store a JSON object with " + ", ".join(REQUIRED_FIELDS))
        except BotoCoreError as error:
            return Check(name, False, f"cannot read {self.r.secret_id}: {self.ctx.aws_problem(error)}", _read_fix())
        missing = [field for field in REQUIRED_FIELDS if not isinstance(value.get(field), str) or not value[field]]
        if missing:
            fix = (
                "uploadcare-s3-copy webhook register (generates and stores one)"
                if missing == [webhooks.SIGNING_SECRET_FIELD]
                else f"aws secretsmanager put-secret-value --secret-id {self.r.secret_id} "
                f"--secret-string file://secret.json (with {', '.join(REQUIRED_FIELDS)})"
            )
            return Check(name, False, f"{self.r.secret_id} lacks {', '.join(missing)}", fix)
        self.signing_secret = str(value[webhooks.SIGNING_SECRET_FIELD])
        present = ", ".join(REQUIRED_FIELDS)
        return Check(name, True, f"{self.r.secret_id}: {present} present")

    def keys(self) -> Check:
        name = "Uploadcare keys"
        try:
            self.client = self.ctx.uploadcare()
        except (CliError, ClientError, BotoCoreError):
            return Check(name, None, "not checked (needs a readable secret with public_key and secret_key)")
        try:
            project = self.client.get_project()
        except CopyFailure as failure:
            self.client = None
            if failure.reason is Reason.AUTH:
                fix = "copy the project's public and secret API keys (Uploadcare dashboard → API keys) into the secret"
            else:
                source = self.r.source_of("api_url")
                fix = f"check that {self.r.api_url} (from {source}) is Uploadcare's REST API and reachable"
            return Check(name, False, f"GET {self.r.api_url}project/: {self.ctx.uploadcare_problem(failure)}", fix)
        return Check(name, True, f"work for project {project.get('name')!r} ({self.r.api_url})")

    def webhook(self) -> Check:
        name = "webhook"
        if not self.r.webhook_url:
            return _not_configured(name, "webhook_url")
        if self.client is None:
            return Check(name, None, "not checked (needs working Uploadcare keys)")
        try:
            hooks = self._webhooks(self.client)
        except CopyFailure as failure:
            return Check(name, False, f"GET /webhooks/: {self.ctx.uploadcare_problem(failure)}", "try again")
        hook = webhooks.find_webhook(hooks, self.r.webhook_url)
        if hook is None:
            return Check(
                name,
                False,
                f"no {webhooks.EVENT} webhook for {self.r.webhook_url}",
                "uploadcare-s3-copy webhook register",
            )
        problems = webhooks.webhook_problems(hook, self.signing_secret)
        if problems:
            fix = webhooks.DASHBOARD_FIX.format(id=hook.get("id"))
            return Check(name, False, f"{webhooks.summary(hook)}: {'; '.join(problems)}", fix)
        return Check(name, True, webhooks.summary(hook))

    def _webhooks(self, client: AdminClient) -> list[dict[str, Any]]:
        if self.hooks is None:
            self.hooks = client.list_webhooks()
        return self.hooks

    def deletion_webhook(self) -> Check:
        """file.deleted reaches the stack when ON_SOURCE_DELETE needs it (tag, delete); with keep it is optional."""
        name = "deletion webhook"
        policy = self.r.on_source_delete
        if not self.r.webhook_url or self.client is None:
            return Check(name, None, "not checked (needs the webhook URL and working Uploadcare keys)")
        try:
            hooks = self._webhooks(self.client)
        except CopyFailure as failure:
            return Check(name, False, f"GET /webhooks/: {self.ctx.uploadcare_problem(failure)}", "try again")
        hook = webhooks.find_webhook(hooks, self.r.webhook_url, FILE_DELETED)
        infected = [
            e for e in (FILE_INFECTED, FILE_INFO_UPDATED) if webhooks.find_webhook(hooks, self.r.webhook_url, e)
        ]
        also = f"; {', '.join(infected)} registered too" if infected else ""
        if hook is None:
            if policy is SourcePolicy.KEEP:
                return Check(name, None, f"no file.deleted webhook: with ON_SOURCE_DELETE=keep it is optional{also}")
            return Check(
                name,
                False,
                f"no file.deleted webhook for {self.r.webhook_url}: ON_SOURCE_DELETE={policy} needs one",
                "uploadcare-s3-copy webhook register --events file.uploaded,file.deleted",
            )
        problems = webhooks.webhook_problems(hook, self.signing_secret)
        if problems:
            fix = webhooks.DASHBOARD_FIX.format(id=hook.get("id"))
            return Check(name, False, f"{webhooks.summary(hook)}: {'; '.join(problems)}", fix)
        return Check(name, True, f"{webhooks.summary(hook)}, for ON_SOURCE_DELETE={policy}{also}")

    def versioning(self, bucket: str) -> Check:
        """With ON_SOURCE_DELETE=delete, a copy deleted is gone unless the bucket keeps versions."""
        name = "versioning"
        try:
            status = self.ctx.aws("s3").get_bucket_versioning(Bucket=bucket).get("Status", "")
        except (ClientError, BotoCoreError) as error:
            fix = _read_fix("s3:GetBucketVersioning on it")
            return Check(name, False, f"{bucket}: {self.ctx.aws_problem(error)}", fix)
        if status == "Enabled":
            return Check(name, True, f"{bucket} keeps versions: a copy deleted on file.deleted can be restored")
        return Check(
            name,
            False,
            f"{bucket} keeps no versions: ON_SOURCE_DELETE=delete cannot be undone there",
            f"aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled, "
            "or OnSourceDelete=tag with a lifecycle rule (README)",
        )

    def bucket(self, bucket: str | None) -> Check:
        name = "bucket"
        if not bucket:
            return _not_configured(name, "bucket")
        users = [spec.name for spec in self.r.specs if spec.bucket == bucket] if self.r.copy_specs else []
        of = f" (copy specs {', '.join(users)})" if users else ""
        allowed = {self.r.bucket, *self.r.extra_buckets}
        if self.r.copy_specs and self.r.bucket and bucket not in allowed:
            return Check(
                name,
                False,
                f"{bucket}{of} is neither TargetBucketName nor in ExtraTargetBuckets: the copier may not verify there",
                f"add {bucket} to the stack's ExtraTargetBuckets parameter (--extra-buckets) and deploy again",
            )
        try:
            self.ctx.aws("s3").head_bucket(Bucket=bucket)
        except ClientError as error:
            if _code(error) in ("404", "NoSuchBucket", "NotFound"):
                fix = (
                    "check the copy spec's bucket: it must be the bucket behind its Uploadcare storage"
                    if self.r.copy_specs
                    else "check TargetBucketName (--bucket): it must be the bucket behind the Uploadcare storage"
                )
                return Check(name, False, f"{bucket}{of} does not exist", fix)
            return Check(name, False, f"{bucket}{of}: {self.ctx.aws_problem(error)}", _read_fix("s3:ListBucket on it"))
        except BotoCoreError as error:
            return Check(name, False, f"{bucket}{of}: {self.ctx.aws_problem(error)}", _read_fix())
        return Check(name, True, f"{bucket}{of} is reachable")

    def copy_queue(self) -> Check:
        name = "copy queue"
        if not self.r.queue_url:
            return _not_configured(name, "queue_url")
        try:
            waiting, in_flight = queue_depths(self.ctx.aws("sqs"), self.r.queue_url)
        except (ClientError, BotoCoreError) as error:
            return Check(name, False, f"{self.r.queue_url}: {self.ctx.aws_problem(error)}", _queue_fix())
        return Check(name, True, f"exists: {waiting} waiting, {in_flight} being copied")

    def dead_letter_queue(self) -> Check:
        name = "dead-letter queue"
        if not self.r.dlq_url:
            return _not_configured(name, "dlq_url")
        try:
            waiting, in_flight = queue_depths(self.ctx.aws("sqs"), self.r.dlq_url)
        except (ClientError, BotoCoreError) as error:
            return Check(name, False, f"{self.r.dlq_url}: {self.ctx.aws_problem(error)}", _queue_fix())
        if waiting + in_flight:
            fix = "uploadcare-s3-copy dlq list, fix the cause, then uploadcare-s3-copy dlq redrive"
            return Check(name, False, f"holds {plural(waiting + in_flight, 'failed copy request')}", fix)
        return Check(name, True, "exists and is empty")

    def table(self) -> Check:
        name = "idempotency table"
        if not self.r.table:
            return _not_configured(name, "table")
        try:
            status = self.ctx.aws("dynamodb").describe_table(TableName=self.r.table)["Table"].get("TableStatus")
        except (ClientError, BotoCoreError) as error:
            fix = _queue_fix("IdempotencyTableName")
            return Check(name, False, f"{self.r.table}: {self.ctx.aws_problem(error)}", fix)
        if status != "ACTIVE":
            return Check(name, False, f"{self.r.table} is {status}", "wait for the table to become ACTIVE")
        return Check(name, True, f"{self.r.table} is {status}")

    def test_copy(self, uuid: str, spec: CopySpec) -> Check:
        name = f"test copy {spec.name}" if self.r.copy_specs else "test copy"
        missing = [] if self.r.copy_specs else self.r.missing("bucket", "storage")
        if missing:
            how = ", ".join(setting.how_to_give for setting in missing)
            return Check(name, False, "not configured", f"give --stack NAME or {how}")
        if self.client is None:
            return Check(name, None, "not checked (needs working Uploadcare keys)")
        try:
            request = CopyRequest.from_file_info(self.client.get_file(uuid), event="file.uploaded", origin="manual")
            if not spec.applies_to(request.mime_type):
                return Check(name, None, f"{uuid} is {request.mime_type}, not a type copy spec {spec.name} copies")
            service = copying.copy_service(self.ctx)
            with copying.logs_to(self.ctx):
                deadline = Deadline(copying.DEFAULT_TIMEOUT_SECONDS)
                verified = service.copy_and_verify(request, spec, self.ctx.keys(), deadline)
        except CopyFailure as failure:
            fix = {
                Reason.STORAGE_NOT_FOUND: f"check the storage name {spec.target!r} against the project's storages",
                Reason.UNEXPECTED_BUCKET: f"storage {spec.target!r} points at another bucket than {spec.bucket}",
                Reason.NOT_FOUND: "give the UUID of a file that exists in this project",
            }.get(failure.reason, "see docs/design.md, Failure reasons")
            return Check(name, False, f"{uuid}: {self.ctx.uploadcare_problem(failure)}", fix)
        return Check(name, True, f"{uuid} → {copying.describe(verified)}")


def _read_fix(permission: str = "read access") -> str:
    return f"check your AWS credentials and region, and that they grant {permission}"


def _queue_fix(output: str = "CopyQueueUrl / DeadLetterQueueUrl") -> str:
    return f"check the stack ({output}) and your AWS credentials and region"


def command(ctx: Context, args: argparse.Namespace) -> int:
    ctx.aws.require_region()  # else every AWS check would fail with the same missing region
    doctor = Doctor(ctx)
    where = f"stack {ctx.resources.stack}" if ctx.resources.stack else "the given resources"
    ctx.say(f"Checking {where}:")
    results: list[Check] = []
    for step in doctor.checks(args.test_copy):
        check = step()
        results.append(check)
        for line in check.lines():
            ctx.say(line)
    failed = [check for check in results if check.ok is False]
    ctx.say(f"{len(failed)} {'problem' if len(failed) == 1 else 'problems'} found." if failed else "All good.")
    return EXIT_PROBLEMS if failed else EXIT_OK
