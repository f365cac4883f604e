"""The operations CLI's pure parts: argument parsing and exit codes, where resources come from, DLQ grouping,
webhook comparison and queue batching. No network: nothing here reaches AWS or Uploadcare."""

from __future__ import annotations

import io
import json
import os
import pathlib
import re
import subprocess
import sys
from typing import Any

import pytest
from rich.table import Table

from tests.conftest import ROOT
from uploadcare_s3_copy_cli.app import build_parser, main
from uploadcare_s3_copy_cli.base import CliError, UsageError, plural
from uploadcare_s3_copy_cli.context import AwsClients, find_region
from uploadcare_s3_copy_cli.display import show_table
from uploadcare_s3_copy_cli.dlq import NO_REASON, DeadLetter, DeadLetterQueue, group_by_reason, matches
from uploadcare_s3_copy_cli.queueing import BatchSender
from uploadcare_s3_copy_cli.resources import SETTINGS, StackInfo, resolve
from uploadcare_s3_copy_cli.webhooks import find_webhook, summary, webhook_problems

UUID = "3c269810-c17b-4e2c-92b6-25622464d866"
COMMANDS = [[], ["backfill"], ["copy"], ["doctor"], ["webhook", "register"], ["dlq", "list"], ["dlq", "redrive"]]


def run(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ=environ or {}, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


# --- arguments and exit codes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS, ids=lambda words: " ".join(words) or "top")
def test_every_command_has_help_that_documents_the_exit_codes(command: list[str]) -> None:
    code, out, _ = run(*command, "--help")

    assert code == 0
    assert "exit codes:" in out
    assert "2    usage error" in out
    assert "130  interrupted" in out


ALL_RESOURCE_OPTIONS = {setting.flag for setting in SETTINGS}


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (["backfill"], {"--secret-id", "--api-url", "--queue-url", "--copy-specs"}),
        (["dlq", "list"], {"--dlq-url"}),
        (["dlq", "redrive"], {"--dlq-url", "--queue-url"}),
        (["webhook", "register"], {"--secret-id", "--api-url", "--webhook-url"}),
        (["reconcile"], {"--secret-id", "--api-url", "--ledger-table", "--queue-url", "--skip-derived"}),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_each_command_help_lists_only_the_resource_options_it_reads(command: list[str], options: set[str]) -> None:
    _, out, _ = run(*command, "--help")

    listed = {flag for flag in ALL_RESOURCE_OPTIONS if re.search(rf"^\s+{flag} ", out, re.MULTILINE)}
    assert "--stack NAME" in out
    assert listed == options


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["backfill"], "--page-size N files per GET /files/ (default 100;"),
        (["dlq", "list"], "--max N read at most N messages (default 1000)"),
        (["dlq", "list"], "--examples N examples per reason (default 3)"),
        (["copy"], "--timeout SECONDS per file, with --direct (default 300.0)"),
        (["copy"], "--pattern PATTERN the copy pattern [$COPY_PATTERN; stack parameter CopyPattern; default ${def"),
        (["doctor"], "REST API root [$UPLOADCARE_API_URL; stack parameter UploadcareApiUrl; default https"),
    ],
)
def test_help_shows_the_defaults(command: list[str], shown: str) -> None:
    _, out, _ = run(*command, "--help")

    assert shown in " ".join(out.split())  # as wrapped at any terminal width


def test_a_flag_without_a_value_shows_no_default() -> None:
    _, out, _ = run("audit", "--help")

    assert "(default False)" not in out
    assert "(default None)" not in out


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["copy", "not-a-uuid"], "'not-a-uuid' is not a file UUID"),
        (["copy", UUID[:-1]], "is not a file UUID"),
        (["dlq", "redrive", "--reason", "storage_gone"], "'storage_gone' is not a failure reason; the reasons are"),
        (["copy"], "the following arguments are required: UUID"),
        (["backfill", "--from", "last tuesday"], "is not an ISO date"),
        (["backfill", "--from", "2024-01-01", "--page-size", "0"], "is not a whole number of at least 1"),
        (["backfill", "--from", "2024-01-01", "--page-size", "1001"], "at most 1000 files per page"),
        (["dlq"], "the following arguments are required: ACTION"),
        (["dlq", "redrive", "--max", "-3"], "is not a whole number of at least 1"),
        (["doctor", "--test-copy", "123"], "is not a file UUID"),
    ],
)
def test_bad_arguments_are_usage_errors(argv: list[str], complaint: str) -> None:
    code, out, err = run(*argv)

    assert code == 2
    assert complaint in err
    assert out == ""


def test_a_missing_setting_is_a_usage_error_that_names_where_to_give_it() -> None:
    code, out, err = run("backfill", "--from", "2024-01-01", environ={"COPY_DLQ_URL": "http://127.0.0.1:9/dlq"})

    assert code == 2
    assert out == ""
    assert err == (
        "error: backfill needs --secret-id (or $UPLOADCARE_SECRET_ID), --queue-url (or $COPY_QUEUE_URL); "
        "or --stack NAME (or $UPLOADCARE_S3_COPY_STACK) to read them all\n"
    )


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["backfill"], "backfill needs --from DATE"),
        (["backfill", "--from", "2024-02-01", "--to", "2024-01-31"], "--to is before --from"),
        (["backfill", "--resume", "--dry-run"], "does not resume"),
        (["backfill", "--resume", "--page-size", "50"], "--page-size cannot apply on --resume"),
        (["copy", "--direct", UUID, "--pattern", "${nope}"], "unknown placeholder ${nope}"),
        (["copy", "--direct", UUID, "--make-public", "maybe"], "make_public 'maybe' is not true or false"),
        (["backfill", "--from", "2024-01-01", "--api-url", "ftp://x"], "is not an http(s) URL"),
    ],
)
def test_inconsistent_options_are_usage_errors_before_anything_is_done(argv: list[str], complaint: str) -> None:
    environ = {"UPLOADCARE_SECRET_ID": "keys", "COPY_QUEUE_URL": "http://127.0.0.1:9/q"}

    code, _, err = run(*argv, environ=environ)

    assert code == 2
    assert complaint in err


# Every command, given nothing at all to work on, answers the same way: exit 2, the same line, no AWS call (unit
# tests have no network: a call would fail differently).
NOTHING_CONFIGURED = [
    ["backfill", "--from", "2024-01-01"],
    ["copy", UUID],
    ["copy", "--direct", UUID],
    ["audit"],
    ["reconcile"],
    ["doctor"],
    ["webhook", "register"],
    ["dlq", "list"],
    ["dlq", "redrive"],
]


@pytest.mark.parametrize("argv", NOTHING_CONFIGURED, ids=" ".join)
def test_nothing_configured_is_exit_2_with_the_same_answer_in_every_command(argv: list[str]) -> None:
    code, out, err = run(*argv, environ={})

    assert code == 2
    assert out == ""
    assert err.startswith("error: nothing configured: give --stack NAME (or $UPLOADCARE_S3_COPY_STACK)")


def test_a_missing_region_is_a_usage_error_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "config").write_text("[default]\noutput = json\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))

    code, out, err = run("dlq", "list", environ={"COPY_DLQ_URL": "http://127.0.0.1:9/q"})

    assert code == 2
    assert out == ""
    assert err.startswith("error: no AWS region: set AWS_REGION")
    assert "aws configure set region" in err


def test_aws_region_is_honoured_before_aws_default_region_and_the_profile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "config").write_text("[default]\nregion = ap-south-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)

    both = find_region({"AWS_REGION": "eu-west-2", "AWS_DEFAULT_REGION": "us-east-1"})
    default_only = find_region({"AWS_DEFAULT_REGION": "us-east-1"})
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    profile_only = find_region({})

    assert both == ("eu-west-2", "$AWS_REGION")
    assert default_only == ("us-east-1", "$AWS_DEFAULT_REGION")
    assert profile_only == ("ap-south-1", "profile default in the AWS configuration")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # creating a client looks for credentials: not on the network
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert AwsClients(region=both[0])("sqs").meta.region_name == "eu-west-2"


def test_an_unknown_profile_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    (tmp_path / "config").write_text("[default]\nregion = ap-south-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)

    code, _, err = run("dlq", "list", environ={"AWS_PROFILE": "nope", "COPY_DLQ_URL": "http://127.0.0.1:9/q"})

    assert code == 2
    assert "AWS profile 'nope' (from $AWS_PROFILE) is not in your AWS configuration" in err


def test_an_upper_case_uuid_is_taken_lower_cased() -> None:
    parser = build_parser()

    args = parser.parse_args(["copy", UUID.upper(), "--direct"])
    tested = parser.parse_args(["doctor", "--test-copy", f" {UUID.upper()} "])

    assert args.uuids == [UUID]
    assert tested.test_copy == UUID


@pytest.mark.parametrize(
    ("count", "noun", "expected"),
    [
        (0, "file", "0 files"),
        (1, "file", "1 file"),
        (2, "byte", "2 bytes"),
        (1200, "copy request", "1,200 copy requests"),
    ],
)
def test_plural(count: int, noun: str, expected: str) -> None:
    assert plural(count, noun) == expected


def test_version() -> None:
    code, out, _ = run("--version")

    assert code == 0
    assert out.startswith("uploadcare-s3-copy 0.")


# --- resources ------------------------------------------------------------------------------------------------

STACK = StackInfo(
    name="prod",
    outputs={
        "CopyQueueUrl": "https://sqs/stack-queue",
        "DeadLetterQueueUrl": "https://sqs/stack-dlq",
        "IdempotencyTableName": "stack-table",
        "WebhookUrl": "https://api/webhooks/uploadcare",
    },
    parameters={
        "UploadcareSecretId": "stack-secret",
        "TargetBucketName": "stack-bucket",
        "UploadcareStorageName": "stack-storage",
        "TargetPrefix": "uploads/",
        "CopyPattern": "${uuid}${ext}",
        "MakePublic": "true",
        "UploadcareApiUrl": "https://api.uploadcare.com",
    },
)


def test_a_stack_gives_every_resource_from_its_outputs_and_parameters() -> None:
    resources = resolve({"stack": "prod"}, {}, {"prod": STACK}.__getitem__)

    assert resources.stack == "prod"
    assert (resources.queue_url, resources.dlq_url, resources.table) == (
        "https://sqs/stack-queue",
        "https://sqs/stack-dlq",
        "stack-table",
    )
    assert (resources.secret_id, resources.bucket, resources.storage) == (
        "stack-secret",
        "stack-bucket",
        "stack-storage",
    )
    assert (resources.prefix, resources.pattern, resources.make_public) == ("uploads/", "${uuid}${ext}", True)
    assert resources.api_url == "https://api.uploadcare.com/"
    assert resources.webhook_url == "https://api/webhooks/uploadcare"


def test_an_option_beats_the_environment_which_beats_the_stack() -> None:
    environ = {"UPLOADCARE_S3_COPY_STACK": "prod", "TARGET_BUCKET": "env-bucket", "COPY_QUEUE_URL": "https://sqs/env"}

    resources = resolve({"queue_url": "https://sqs/option", "prefix": ""}, environ, {"prod": STACK}.__getitem__)

    assert resources.stack == "prod"  # named by the environment
    assert resources.queue_url == "https://sqs/option"
    assert resources.bucket == "env-bucket"
    assert resources.prefix == ""  # an explicit empty option wins over the stack's "uploads/"
    assert resources.table == "stack-table"


def test_without_a_stack_nothing_is_described_and_defaults_apply() -> None:
    def no_stack(name: str) -> StackInfo:
        raise AssertionError(f"described {name}")

    resources = resolve({}, {"UPLOADCARE_SECRET_ID": "keys"}, no_stack)

    assert resources.secret_id == "keys"
    assert resources.queue_url is None
    assert (resources.api_url, resources.pattern, resources.prefix, resources.make_public) == (
        "https://api.uploadcare.com/",
        "${default}",
        "",
        False,
    )
    with pytest.raises(UsageError, match=r"dlq list needs --dlq-url \(or \$COPY_DLQ_URL\)"):
        resources.require("dlq list", "dlq_url", "secret_id")


# --- the dead-letter queue ------------------------------------------------------------------------------------


def message(n: int, reason: str | None, detail: str = "why", body: dict[str, Any] | None = None) -> dict[str, Any]:
    attributes = {}
    if reason is not None:
        attributes = {
            "reason": {"DataType": "String", "StringValue": reason},
            "detail": {"DataType": "String", "StringValue": detail},
            "uuid": {"DataType": "String", "StringValue": f"uuid-{n}"},
        }
    payload = body if body is not None else {"uuid": f"body-uuid-{n}", "original_filename": f"f{n}.jpg"}
    return {
        "MessageId": f"m{n}",
        "ReceiptHandle": f"r{n}",
        "Body": json.dumps(payload),
        "MessageAttributes": attributes,
    }


def test_a_dead_letter_reads_the_copiers_attributes_or_falls_back_to_the_body() -> None:
    attributed = DeadLetter.from_message(message(1, "not_found", "Not found."))
    moved_by_sqs = DeadLetter.from_message(message(2, None))
    not_json = DeadLetter.from_message({"MessageId": "m3", "ReceiptHandle": "r3", "Body": "garbage"})

    assert (attributed.reason, attributed.detail, attributed.uuid, attributed.filename) == (
        "not_found",
        "Not found.",
        "uuid-1",
        "f1.jpg",
    )
    assert (moved_by_sqs.reason, moved_by_sqs.uuid) == (NO_REASON, "body-uuid-2")
    assert (not_json.reason, not_json.uuid, not_json.filename, not_json.body) == (NO_REASON, "?", "", "garbage")


def test_dead_letters_group_by_reason_largest_group_first() -> None:
    letters = [
        DeadLetter.from_message(m)
        for m in (message(1, "too_large"), message(2, "not_found"), message(3, None), message(4, "not_found"))
    ]

    groups = group_by_reason(letters)

    assert [(reason, [letter.message_id for letter in group]) for reason, group in groups] == [
        ("not_found", ["m2", "m4"]),
        (NO_REASON, ["m3"]),
        ("too_large", ["m1"]),
    ]
    assert [matches(letter, ["not_found", NO_REASON]) for letter in letters] == [False, True, True, True]
    assert all(matches(letter, []) for letter in letters)


class ReappearingSqs:
    """A DLQ that counts two messages but only ever hands out the same one (its visibility keeps running out)."""

    def __init__(self) -> None:
        self.waits: list[int] = []

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        return {"Attributes": {"ApproximateNumberOfMessages": "2", "ApproximateNumberOfMessagesNotVisible": "0"}}

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.waits.append(kwargs["WaitTimeSeconds"])
        if len(self.waits) > 5:
            raise AssertionError("still receiving")
        return {"Messages": [message(1, "not_found")]}


def test_reading_the_dlq_ends_when_only_messages_seen_before_come_back() -> None:
    sqs = ReappearingSqs()

    batches = list(DeadLetterQueue(sqs, "dlq").receive(visibility=30))

    assert [[letter.message_id for letter in batch] for batch in batches] == [["m1"]]
    assert sqs.waits == [0, 0, 1]  # then one long poll decides


# --- the webhook ----------------------------------------------------------------------------------------------

GOOD_HOOK = {
    "id": 7,
    "event": "file.uploaded",
    "target_url": "https://api/webhooks/uploadcare",
    "is_active": True,
    "version": "0.7",
    "signing_secret": "s3cr3t-value",
}


def test_a_matching_active_signed_v07_webhook_has_no_problems() -> None:
    hooks = [{**GOOD_HOOK, "event": "file.stored", "id": 1}, GOOD_HOOK]

    found = find_webhook(hooks, "https://api/webhooks/uploadcare")

    assert found is GOOD_HOOK
    assert webhook_problems(GOOD_HOOK, "s3cr3t-value") == []
    assert find_webhook(hooks, "https://elsewhere/") is None


def test_every_way_a_webhook_cannot_deliver_verifiable_events_is_named() -> None:
    hook = {**GOOD_HOOK, "is_active": False, "version": "", "signing_secret": "other"}

    problems = webhook_problems(hook, "s3cr3t-value")

    assert problems == [
        "it is not active",
        "its version is '', not '0.7'",
        "its signing secret is not the secret's webhook_signing_secret (deliveries get 401)",
    ]
    assert webhook_problems({**GOOD_HOOK, "signing_secret": ""}, "s3cr3t-value") == [
        "it has no signing secret (deliveries would be rejected with 401)"
    ]
    assert webhook_problems({**GOOD_HOOK, "signing_secret": "sécret"}, "sécret") == []  # any text compares


def test_a_webhook_summary_says_signed_without_the_secret() -> None:
    text = summary(GOOD_HOOK)

    assert text == "webhook #7 https://api/webhooks/uploadcare (file.uploaded, active, signed, version 0.7)"
    assert "s3cr3t" not in text


# --- sending copy requests ------------------------------------------------------------------------------------


class FlakySqs:
    """Fails the entries named in `fail` on the first call (SQS's side unless `sender_fault`)."""

    def __init__(self, fail: set[str], sender_fault: bool = False, times: int = 1) -> None:
        self.fail, self.sender_fault, self.times = fail, sender_fault, times
        self.calls: list[list[str]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls.append([entry["MessageBody"] for entry in Entries])
        failing = self.fail if len(self.calls) <= self.times else set()
        return {
            "Successful": [{"Id": e["Id"]} for e in Entries if e["MessageBody"] not in failing],
            "Failed": [
                {"Id": e["Id"], "Code": "InternalError", "Message": "try again", "SenderFault": self.sender_fault}
                for e in Entries
                if e["MessageBody"] in failing
            ],
        }


def test_entries_sqs_failed_on_its_side_are_sent_again() -> None:
    sqs = FlakySqs({"b"})
    sleeps: list[float] = []

    failed = BatchSender(sqs, "q", sleep=sleeps.append).send_batch(["a", "b", "c"])

    assert failed == []
    assert sqs.calls == [["a", "b", "c"], ["b"]]
    assert sleeps == [1.0]


def test_entries_refused_as_our_fault_or_failing_every_time_are_reported() -> None:
    refused = BatchSender(FlakySqs({"b"}, sender_fault=True), "q", sleep=lambda _: None).send_batch(["a", "b"])
    always = FlakySqs({"a"}, times=99)
    failing = BatchSender(always, "q", sleep=lambda _: None).send_batch(["a", "b"])

    assert [(entry.index, entry.problem) for entry in refused] == [(1, "InternalError: try again")]
    assert [entry.index for entry in failing] == [0]
    assert len(always.calls) == 3
    with pytest.raises(CliError, match="SQS refused 1 of the copy requests"):
        BatchSender(FlakySqs({"x"}, times=99), "q", sleep=lambda _: None).send_all(["x", "y"])
    with pytest.raises(ValueError, match="at most 10"):
        BatchSender(FlakySqs(set()), "q").send_batch(["m"] * 11)


def test_send_all_sends_in_batches_of_ten() -> None:
    sqs = FlakySqs(set())

    sent = BatchSender(sqs, "q").send_all([str(n) for n in range(23)])

    assert sent == 23
    assert [len(call) for call in sqs.calls] == [10, 10, 3]


# --- the functions never load the CLI -------------------------------------------------------------------------


def test_the_lambda_handlers_do_not_import_the_cli() -> None:
    check = "import sys, handle_webhook, handle_copy; print([m for m in sys.modules if 'uploadcare_s3_copy_cli' in m])"
    paths = os.pathsep.join(str(ROOT / part) for part in ("layers/common", "functions/webhook", "functions/copier"))
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": paths, "AWS_DEFAULT_REGION": "us-east-1"}

    done = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, check=False)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- how results look -----------------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def counts_table() -> Table:
    table = Table(title="Uploads from the first to 2026-01-01T00:00:00Z")
    table.add_column("spec")
    table.add_column("files", justify="right")
    table.add_row("original", "1,204")
    table.add_row("web", "7")
    return table


def test_a_table_on_a_terminal_is_drawn_by_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    stream = Terminal()

    show_table(stream, counts_table())

    assert "┃ spec" in stream.getvalue() or "│ original" in stream.getvalue()


def test_a_piped_table_is_plain_aligned_lines() -> None:
    stream = io.StringIO()

    show_table(stream, counts_table())

    assert stream.getvalue() == (
        "Uploads from the first to 2026-01-01T00:00:00Z\nspec      files\noriginal  1,204\nweb           7\n"
    )
