"""The three functions: entry points that exist, the configuration contract met, the shared layer, the copy events."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.template.support import function_environment, functions, parameter, stack, template
from uploadcare_s3_copy.copier.settings import load_copier_settings
from uploadcare_s3_copy.reconciler.settings import load_reconciler_settings
from uploadcare_s3_copy.settings import ConfigError
from uploadcare_s3_copy.webhook.settings import load_webhook_settings

LOADERS: Mapping[str, Callable[[Mapping[str, str]], object]] = {
    "WebhookFunction": load_webhook_settings,
    "CopierFunction": load_copier_settings,
    "ReconcilerFunction": load_reconciler_settings,
}
# Read by Powertools itself, not by the project's configuration loaders.
POWERTOOLS_VARIABLES = frozenset(
    {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL", "LOG_LEVEL"}
)
# Read by botocore; set only in local checks (LocalAwsEndpointUrl), never in a deployment (test_parameters.py).
BOTOCORE_VARIABLES = frozenset({"AWS_ENDPOINT_URL"})


class RecordingEnviron(Mapping[str, str]):
    """An environment that remembers every variable a loader looked up, present or not."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.looked_up: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.looked_up.add(name)
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def required_variables(loader: Callable[[Mapping[str, str]], object]) -> set[str]:
    """The variables a loader refuses to start without, read from its own error for an empty environment."""
    with pytest.raises(ConfigError) as refused:
        loader({})
    names = {
        match.group(1) for problem in refused.value.problems if (match := re.match(r"([A-Z_]+) is required", problem))
    }
    assert names, f"no 'X is required' problem in {refused.value.problems}: has the message format changed?"
    return names


def deployed_environment(logical_id: str) -> dict[str, str]:
    """The function's variables with the template's defaults, as the function would see them after a deployment."""
    resolved: dict[str, Any] = stack().resolve(function_environment(logical_id))
    return {name: str(value) for name, value in resolved.items()}


def test_the_loaders_cover_every_function() -> None:
    assert sorted(functions()) == sorted(LOADERS)


@pytest.mark.parametrize(
    ("logical_id", "code_uri", "handler"),
    [
        ("WebhookFunction", "functions/webhook/", "handle_webhook.lambda_handler"),
        ("CopierFunction", "functions/copier/", "handle_copy.lambda_handler"),
        ("ReconcilerFunction", "functions/reconciler/", "handle_reconcile.lambda_handler"),
    ],
)
def test_functions_use_the_fixed_entry_points(logical_id: str, code_uri: str, handler: str) -> None:
    properties = template()["Resources"][logical_id]["Properties"]

    assert (properties["CodeUri"], properties["Handler"]) == (code_uri, handler)


@pytest.mark.parametrize("logical_id", sorted(LOADERS))
def test_handler_resolves_to_a_lambda_handler_function(logical_id: str) -> None:
    # Given the function's code folder and handler
    properties = template()["Resources"][logical_id]["Properties"]
    module, function = properties["Handler"].rsplit(".", 1)
    source = ROOT / properties["CodeUri"] / (module.replace(".", "/") + ".py")
    if not source.exists():
        pytest.skip(f"{source.relative_to(ROOT)} is not written yet (it belongs to another issue)")

    # When its module is parsed
    tree = ast.parse(source.read_text(), filename=str(source))

    # Then it defines the handler at top level
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    assert function in defined, f"{source.relative_to(ROOT)} defines no top-level {function}()"


@pytest.mark.parametrize("logical_id", sorted(LOADERS))
def test_environment_sets_every_variable_the_loader_requires(logical_id: str) -> None:
    required = required_variables(LOADERS[logical_id])

    missing = required - function_environment(logical_id).keys()

    assert not missing, f"{logical_id} lacks {sorted(missing)}"


@pytest.mark.parametrize("logical_id", sorted(LOADERS))
def test_environment_holds_only_variables_the_function_reads(logical_id: str) -> None:
    # Given the deployed environment, recording what the loader looks up
    environ = RecordingEnviron(deployed_environment(logical_id))

    # When the function's loader reads it
    LOADERS[logical_id](environ)

    # Then nothing in the template is a typo or a leftover the code never reads
    unread = function_environment(logical_id).keys() - environ.looked_up - POWERTOOLS_VARIABLES - BOTOCORE_VARIABLES
    assert not unread, f"{logical_id} sets {sorted(unread)}, which its configuration never reads"


def test_webhook_defaults_make_a_valid_configuration() -> None:
    settings = load_webhook_settings(deployed_environment("WebhookFunction"))

    assert settings.skip_derived is False
    assert settings.max_body_bytes == 262144


def test_copier_defaults_make_a_valid_configuration() -> None:
    settings = load_copier_settings(deployed_environment("CopierFunction"))

    (spec,) = settings.specs
    assert spec.make_public is False
    assert spec.pattern == "${default}"
    assert settings.api_url == "https://api.uploadcare.com/"
    assert spec.bucket == "my-uploads"
    assert spec.prefix == ""
    assert settings.copy_concurrency == 10


def test_functions_share_runtime_architecture_tracing_and_json_logs() -> None:
    globals_ = template()["Globals"]["Function"]

    assert globals_["Runtime"] == "python3.13"
    assert globals_["Architectures"] == [{"Ref": "Architecture"}]
    assert globals_["Tracing"] == "Active"
    assert globals_["LoggingConfig"]["LogFormat"] == "JSON"
    assert globals_["Layers"] == [{"Ref": "CommonLayer"}]
    for logical_id in functions():
        own = template()["Resources"][logical_id]["Properties"]
        assert not {"Runtime", "Architectures", "Tracing"} & own.keys(), f"{logical_id} overrides the Globals"


@pytest.mark.parametrize("logical_id", sorted(LOADERS))
def test_each_function_logs_to_its_own_log_group_with_a_retention(logical_id: str) -> None:
    log_group_ref = template()["Resources"][logical_id]["Properties"]["LoggingConfig"]["LogGroup"]
    log_group = template()["Resources"][log_group_ref["Ref"]]

    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_function_timeouts_fit_their_work() -> None:
    webhook = template()["Resources"]["WebhookFunction"]["Properties"]
    copier = stack().resolve(template()["Resources"]["CopierFunction"]["Properties"])

    assert (webhook["Timeout"], webhook["MemorySize"]) == (5, 128)  # answers in milliseconds
    assert int(copier["Timeout"]) == 300  # remote_copy of a large file takes minutes


def test_copier_reports_failed_records_only() -> None:
    event = template()["Resources"]["CopierFunction"]["Properties"]["Events"]["CopyRequests"]

    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["CopyQueue", "Arn"]}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_copier_concurrency_and_batching_are_parameters_within_lambda_limits() -> None:
    properties = template()["Resources"]["CopierFunction"]["Properties"]["Events"]["CopyRequests"]["Properties"]

    assert properties["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "CopierMaxConcurrency"}
    assert parameter("CopierMaxConcurrency")["MinValue"] >= 2  # SQS MaximumConcurrency's minimum
    assert properties["BatchSize"] == {"Ref": "CopyBatchSize"}
    # A batch over 10 needs a batching window above 0; capping the size keeps every combination deployable.
    assert parameter("CopyBatchSize")["MaxValue"] <= 10
    assert properties["MaximumBatchingWindowInSeconds"] == {"Ref": "CopyBatchWindowSeconds"}


def test_shared_package_is_one_layer_built_by_sam_for_the_functions_architecture() -> None:
    layer = template()["Resources"]["CommonLayer"]

    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "layers/common/"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    # Fixed at arm64, an x86_64 deployment would get arm64 wheels in its layer (SAM CLI resolves this Ref)
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": {"Ref": "Architecture"}}
    assert layer["Properties"]["CompatibleArchitectures"] == [{"Ref": "Architecture"}]
    assert (ROOT / "layers/common/requirements.txt").is_file()
    assert (ROOT / "layers/common/uploadcare_s3_copy/__init__.py").is_file()
