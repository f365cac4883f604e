"""Where a stack's resources are: a command-line option, else an environment variable, else the CloudFormation stack.

`--stack NAME` reads the deployed stack's Outputs (queue URLs, table, WebhookUrl) and Parameters (secret, storage,
bucket, prefix, pattern, API URL): what `sam deploy` was given is what the CLI uses. An option or an environment
variable overrides the stack's value. The environment variables are the functions' own (docs/configuration.md),
so a shell that has a function's environment can run the CLI as is; `make up`'s local stack is reached the
same way, with `AWS_ENDPOINT_URL` honoured by boto3 itself.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from uploadcare_s3_copy.ledger import DEFAULT_SPEC
from uploadcare_s3_copy.patterns import PatternError, validate_pattern
from uploadcare_s3_copy.settings import DEFAULT_API_URL, parse_bool
from uploadcare_s3_copy.source_changes import SourcePolicy, parse_policy
from uploadcare_s3_copy.specs import DEFAULT_PATTERN, CopySpec, CopySpecsError, parse_copy_specs
from uploadcare_s3_copy_cli.base import UsageError

STACK_ENV = "UPLOADCARE_S3_COPY_STACK"
_URL = re.compile(r"\Ahttps?://[^/\s]+(/\S*)?\Z")


@dataclass(frozen=True)
class Setting:
    """One resource setting: its option, its environment variable and where a deployed stack keeps it."""

    name: str  # the attribute of Resources
    flag: str
    env: str
    help: str
    output: str | None = None  # a CloudFormation output of template.yaml
    parameter: str | None = None  # else a template parameter
    default: str = ""  # what applies when nothing gives it (shown in --help)

    @property
    def source(self) -> str:
        return f"output {self.output}" if self.output else f"parameter {self.parameter}"

    @property
    def how_to_give(self) -> str:
        return f"{self.flag} (or ${self.env})"


SETTINGS = (
    Setting("queue_url", "--queue-url", "COPY_QUEUE_URL", "the copy queue's URL", output="CopyQueueUrl"),
    Setting("dlq_url", "--dlq-url", "COPY_DLQ_URL", "the dead-letter queue's URL", output="DeadLetterQueueUrl"),
    Setting(
        "secret_id",
        "--secret-id",
        "UPLOADCARE_SECRET_ID",
        "the Uploadcare keys' secret",
        parameter="UploadcareSecretId",
    ),
    Setting("bucket", "--bucket", "TARGET_BUCKET", "the target S3 bucket", parameter="TargetBucketName"),
    Setting(
        "api_url",
        "--api-url",
        "UPLOADCARE_API_URL",
        "Uploadcare's REST API root",
        parameter="UploadcareApiUrl",
        default=DEFAULT_API_URL,
    ),
    Setting("table", "--table", "IDEMPOTENCY_TABLE", "the idempotency table", output="IdempotencyTableName"),
    Setting("storage", "--storage", "COPY_TARGET", "the Uploadcare custom storage", parameter="UploadcareStorageName"),
    Setting(
        "prefix", "--prefix", "TARGET_PREFIX", "the storage's key prefix", parameter="TargetPrefix", default="none"
    ),
    Setting(
        "pattern", "--pattern", "COPY_PATTERN", "the copy pattern", parameter="CopyPattern", default=DEFAULT_PATTERN
    ),
    Setting(
        "make_public",
        "--make-public",
        "MAKE_PUBLIC",
        "true/false: public-read copies",
        parameter="MakePublic",
        default="false",
    ),
    Setting("webhook_url", "--webhook-url", "WEBHOOK_URL", "the stack's webhook URL", output="WebhookUrl"),
    Setting("ledger_table", "--ledger-table", "COPY_LEDGER_TABLE", "the copy ledger", output="CopyLedgerTableName"),
    Setting(
        "skip_derived",
        "--skip-derived",
        "SKIP_DERIVED",
        "true/false: derived files skipped",
        parameter="SkipDerived",
        default="false",
    ),
    Setting(
        "copy_specs",
        "--copy-specs",
        "COPY_SPECS",
        "the copy specs, JSON (unset: one spec from storage, bucket, prefix, pattern)",
        parameter="CopySpecs",
    ),
    Setting(
        "extra_buckets",
        "--extra-buckets",
        "EXTRA_TARGET_BUCKETS",
        "comma-separated buckets the copier may verify in besides --bucket",
        parameter="ExtraTargetBuckets",
    ),
    Setting(
        "on_source_delete",
        "--on-source-delete",
        "ON_SOURCE_DELETE",
        "keep, tag or delete: what a confirmed file.deleted does to the copies",
        parameter="OnSourceDelete",
        default="keep",
    ),
)
SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}


@dataclass(frozen=True)
class StackInfo:
    name: str
    outputs: Mapping[str, str]
    parameters: Mapping[str, str]


@dataclass(frozen=True)
class Resources:
    stack: str | None = None
    queue_url: str | None = None
    dlq_url: str | None = None
    secret_id: str | None = None
    bucket: str | None = None
    api_url: str = DEFAULT_API_URL
    table: str | None = None
    storage: str | None = None
    prefix: str = ""
    pattern: str = DEFAULT_PATTERN
    make_public: bool = False
    webhook_url: str | None = None
    ledger_table: str | None = None
    skip_derived: bool = False
    copy_specs: str | None = None
    extra_buckets: tuple[str, ...] = ()
    specs: tuple[CopySpec, ...] = ()  # COPY_SPECS parsed, else the one `original` spec from storage/bucket/...
    on_source_delete: SourcePolicy = SourcePolicy.KEEP
    sources: Mapping[str, str] = field(default_factory=dict)  # by setting name: where its value came from

    def source_of(self, name: str) -> str:
        """Where a setting's value came from, for a message: `--api-url`, `$UPLOADCARE_API_URL`, `stack parameter
        UploadcareApiUrl of NAME`, or `the default`."""
        return self.sources.get(name, "the default")

    @property
    def spec_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.specs)

    def select_specs(self, names: list[str] | None) -> tuple[CopySpec, ...]:
        """The specs `--spec` names (all of them without it); an unknown name is a usage error naming the valid
        ones."""
        if not names:
            return self.specs
        wanted = list(dict.fromkeys(name.strip() for group in names for name in group.split(",") if name.strip()))
        unknown = [name for name in wanted if name not in self.spec_names]
        if unknown:
            raise UsageError(
                f"no copy spec {', '.join(map(repr, unknown))}: this deployment has {', '.join(self.spec_names)}"
            )
        return tuple(spec for spec in self.specs if spec.name in wanted)

    def require_spec_targets(self, command: str) -> None:
        """A command that copies needs each spec's storage and bucket: COPY_SPECS has them, else --storage/--bucket."""
        if not self.copy_specs:
            self.require(command, "secret_id", "bucket", "storage")

    def missing(self, *names: str) -> list[Setting]:
        return [SETTINGS_BY_NAME[name] for name in names if not getattr(self, name)]

    def require(self, command: str, *names: str) -> None:
        """Raises a usage error naming every setting `command` needs and does not have."""
        missing = self.missing(*names)
        if missing:
            how = ", ".join(setting.how_to_give for setting in missing)
            raise UsageError(f"{command} needs {how}; or --stack NAME (or ${STACK_ENV}) to read them all")


_METAVARS = {
    "make_public": "BOOL",
    "skip_derived": "BOOL",
    "copy_specs": "JSON",
    "extra_buckets": "BUCKETS",
    "on_source_delete": "POLICY",
}


def add_resource_options(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """`--stack` and the options of the settings `names` (the ones this command reads), each with its variable,
    where a stack keeps it and its default."""
    group = parser.add_argument_group(
        "stack resources",
        "Each is read from the option, else its environment variable, else the stack given by --stack.",
    )
    group.add_argument(
        "--stack", metavar="NAME", help=f"a deployed stack: read its outputs and parameters [${STACK_ENV}]"
    )
    for name in names:
        setting = SETTINGS_BY_NAME[name]
        metavar = _METAVARS.get(setting.name) or setting.name.split("_")[0].upper()
        default = f"; default {setting.default}" if setting.default else ""
        group.add_argument(
            setting.flag,
            dest=setting.name,
            metavar=metavar,
            help=f"{setting.help} [${setting.env}; stack {setting.source}{default}]",
        )


def describe_stack(cloudformation: Any, name: str) -> StackInfo:
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        message = str(error.response.get("Error", {}).get("Message", ""))
        if "does not exist" in message:
            raise UsageError(f"stack {name!r} does not exist in this account and region ({message})") from error
        raise
    if not stacks:
        raise UsageError(f"stack {name!r} does not exist in this account and region")
    stack = stacks[0]
    return StackInfo(
        name=name,
        outputs={item["OutputKey"]: str(item.get("OutputValue", "")) for item in stack.get("Outputs", [])},
        parameters={item["ParameterKey"]: str(item.get("ParameterValue", "")) for item in stack.get("Parameters", [])},
    )


def resolve(
    options: Mapping[str, str | None],
    environ: Mapping[str, str],
    describe: Callable[[str], StackInfo],
) -> Resources:
    """Options first, then environment variables, then the stack (described only when one is named). Nothing given
    at all is a usage error, before any AWS call."""
    stack_name = options.get("stack") or environ.get(STACK_ENV) or None
    given = {setting.name: options.get(setting.name) for setting in SETTINGS}
    sources = {name: SETTINGS_BY_NAME[name].flag for name, value in given.items() if value is not None}
    for setting in SETTINGS:
        if given[setting.name] is None and environ.get(setting.env):
            given[setting.name] = environ[setting.env]
            sources[setting.name] = f"${setting.env}"
    if stack_name is None and all(value is None for value in given.values()):
        raise UsageError(
            f"nothing configured: give --stack NAME (or ${STACK_ENV}) to read a deployed stack, or the resource "
            "options this command's --help lists (each has an environment variable)"
        )
    stack = describe(stack_name) if stack_name else None
    raw: dict[str, str | None] = {}
    for setting in SETTINGS:
        value = given[setting.name]
        if value is None and stack is not None:
            value = (
                stack.outputs.get(setting.output) if setting.output else stack.parameters.get(str(setting.parameter))
            )
            if value is not None:
                sources[setting.name] = f"stack {setting.source} of {stack.name}"
        raw[setting.name] = value
    return _typed(stack_name, raw, sources)


def _typed(stack: str | None, raw: Mapping[str, str | None], sources: Mapping[str, str]) -> Resources:
    problems: list[str] = []
    api_url = raw["api_url"] or DEFAULT_API_URL
    if not _URL.match(api_url):
        problems.append(f"api_url {api_url!r} is not an http(s) URL")
    pattern = raw["pattern"] or DEFAULT_PATTERN
    try:
        validate_pattern(pattern)
    except PatternError as error:
        problems.append(f"pattern {pattern!r}: {error}")
    specs = _specs(raw, pattern, problems)
    flags = {"make_public": False, "skip_derived": False}
    for name in flags:
        if raw[name]:
            try:
                flags[name] = parse_bool(str(raw[name]))
            except ValueError:
                problems.append(f"{name} {raw[name]!r} is not true or false")
    policy = SourcePolicy.KEEP
    if raw["on_source_delete"]:
        try:
            policy = parse_policy(str(raw["on_source_delete"]))
        except ValueError:
            problems.append(f"on_source_delete {raw['on_source_delete']!r} is not keep, tag or delete")
    if problems:
        raise UsageError("; ".join(problems))
    return Resources(
        stack=stack,
        queue_url=raw["queue_url"],
        dlq_url=raw["dlq_url"],
        secret_id=raw["secret_id"],
        bucket=raw["bucket"],
        api_url=api_url if api_url.endswith("/") else api_url + "/",
        table=raw["table"],
        storage=raw["storage"],
        prefix=raw["prefix"] or "",
        pattern=pattern,
        make_public=flags["make_public"],
        webhook_url=raw["webhook_url"],
        ledger_table=raw["ledger_table"],
        skip_derived=flags["skip_derived"],
        copy_specs=raw["copy_specs"],
        extra_buckets=tuple(name.strip() for name in (raw["extra_buckets"] or "").split(",") if name.strip()),
        specs=specs,
        on_source_delete=policy,
        sources=dict(sources),
    )


def _specs(raw: Mapping[str, str | None], pattern: str, problems: list[str]) -> tuple[CopySpec, ...]:
    if raw["copy_specs"]:
        try:
            return parse_copy_specs(str(raw["copy_specs"]))
        except CopySpecsError as error:
            problems.extend(error.problems)
            return ()
    make_public = str(raw["make_public"] or "").strip().lower() in ("true", "1", "yes")
    return (
        CopySpec(
            DEFAULT_SPEC, raw["storage"] or "", raw["bucket"] or "", raw["prefix"] or "", pattern, "", make_public
        ),
    )
