"""`make test-sam-local`'s reading of the template and of what `sam local invoke` prints (no Docker needed here)."""

from __future__ import annotations

import json

import pytest

from devkit.cfn_template import load_template
from devkit.sam_local_check import (
    InvokeFailed,
    function_answer,
    http_answer,
    parameter_overrides,
    variables_sam_cannot_resolve,
)
from tests.conftest import ROOT

TEMPLATE = load_template(ROOT / "template.yaml")
# What sam prints on stderr around a function's own output (trimmed from a real run).
SAM_STDERR = """Invoking handle_webhook.lambda_handler (python3.13)
CommonLayer is a local Layer in the template
Building image.....................
START RequestId: 03210fdf Version: $LATEST
END RequestId: 03210fdf
REPORT RequestId: 03210fdf	Init Duration: 0.03 ms	Duration: 1426.12 ms	Billed Duration: 1427 ms
"""


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("WebhookFunction", {"COPY_QUEUE_URL", "AWS_ENDPOINT_URL"}),
        (
            "CopierFunction",
            {"COPY_DLQ_URL", "COPY_QUEUE_URL", "IDEMPOTENCY_TABLE", "COPY_LEDGER_TABLE", "AWS_ENDPOINT_URL"},
        ),
        ("ReconcilerFunction", {"COPY_QUEUE_URL", "COPY_LEDGER_TABLE", "AWS_ENDPOINT_URL"}),
    ],
)
def test_env_vars_cover_the_resources_and_the_conditional_endpoint(function: str, expected: set[str]) -> None:
    # Given the template: parameter references sam resolves itself, resources and !If it cannot

    # When the check decides what to pass with --env-vars
    variables = variables_sam_cannot_resolve(TEMPLATE, function)

    # Then exactly the queue, DLQ and table references and the !If'd endpoint are given by the check
    assert variables == expected


def test_answer_is_the_json_object_on_the_last_stdout_line() -> None:
    stdout = json.dumps({"statusCode": 202, "body": json.dumps({"status": "queued"})}) + "\n"

    answer = function_answer(stdout, SAM_STDERR)

    assert http_answer(answer) == (202, {"status": "queued"})


def test_an_import_error_fails_with_the_functions_own_message() -> None:
    # Given the answer of a function whose package the layer lacks
    stdout = json.dumps(
        {
            "errorMessage": "Unable to import module 'handle_webhook': No module named 'uploadcare_s3_copy'",
            "errorType": "Runtime.ImportModuleError",
            "requestId": "",
            "stackTrace": [],
        }
    )

    # When it is read, then the failure names the import error
    with pytest.raises(InvokeFailed, match=r"Runtime.ImportModuleError: Unable to import module 'handle_webhook'"):
        function_answer(stdout, SAM_STDERR)


def test_a_timeout_fails_although_sam_exits_0() -> None:
    stderr = SAM_STDERR + "2025-10-05T15:38:13 03210fdf Task timed out after 5.00 seconds\n"

    with pytest.raises(InvokeFailed, match="timed out"):
        function_answer("", stderr)


@pytest.mark.parametrize("stdout", ["", "\n", "not json\n", "[1, 2]\n"])
def test_no_answer_or_a_strange_one_fails(stdout: str) -> None:
    with pytest.raises(InvokeFailed):
        function_answer(stdout, SAM_STDERR)


def test_parameter_overrides_are_written_the_way_sam_reads_them() -> None:
    overrides = parameter_overrides({"Architecture": "x86_64", "UploadcareApiUrl": "http://172.17.0.1:8000/"})

    assert overrides == "Architecture=x86_64 UploadcareApiUrl=http://172.17.0.1:8000/"


@pytest.mark.parametrize("value", ["", "a b"])
def test_parameter_overrides_refuse_what_sam_would_split_or_drop(value: str) -> None:
    with pytest.raises(ValueError, match="TargetPrefix"):
        parameter_overrides({"TargetPrefix": value})
