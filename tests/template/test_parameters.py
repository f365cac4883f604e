"""Parameters documented and checked at deploy time; no hard-coded physical names, so stacks can share an account."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devkit.cfn_template import sub_references
from tests.template.support import function_environment, functions, parameter, stack, template
from uploadcare_s3_copy.patterns import PLACEHOLDERS, PatternError, validate_pattern

# Properties that fix a resource's physical name; a literal one collides with a second stack in the account.
NAME_PROPERTIES = frozenset(
    {
        "AlarmName",
        "BucketName",
        "DashboardName",
        "FunctionName",
        "LayerName",
        "LogGroupName",
        "ManagedPolicyName",
        "Name",
        "QueueName",
        "RoleName",
        "StateMachineName",
        "TableName",
        "TopicName",
    }
)


def copy_pattern_allowed(value: str) -> bool:
    # CloudFormation matches AllowedPattern against the whole value (Java regex; this one reads the same in Python).
    return re.fullmatch(parameter("CopyPattern")["AllowedPattern"], value) is not None


def derived_from_stack_or_resource(value: Any) -> bool:
    resources = set(template()["Resources"])
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return value["Ref"] in resources
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        references = sub_references(value["Fn::Sub"])
        return bool(references & (resources | {"AWS::StackName"}))
    return False


def test_every_parameter_is_documented_and_constrained() -> None:
    for name, declaration in template()["Parameters"].items():
        assert declaration.get("Description"), f"{name} has no Description"
        constrained = {"AllowedPattern", "AllowedValues"} & declaration.keys() or {"MinValue", "MaxValue"} <= set(
            declaration
        )
        assert constrained, f"{name} accepts anything"


def test_architecture_defaults_to_arm64_and_allows_local_x86_64() -> None:
    assert parameter("Architecture")["Default"] == "arm64"
    assert set(parameter("Architecture")["AllowedValues"]) == {"arm64", "x86_64"}


def test_make_public_defaults_to_false() -> None:
    # Uploadcare's own default is true, and buckets with ACLs disabled refuse public ACLs.
    assert parameter("MakePublic")["Default"] == "false"
    assert set(parameter("MakePublic")["AllowedValues"]) == {"true", "false"}


def test_uploadcare_api_url_defaults_to_the_real_api() -> None:
    assert parameter("UploadcareApiUrl")["Default"] == "https://api.uploadcare.com/"


@pytest.mark.parametrize(
    "pattern",
    ["${default}", "backups/${uuid}/${filename}${ext}", "${auto_filename}", "${uuid}${effects}", "plain-name.bin"],
)
def test_copy_pattern_admits_documented_placeholders_and_literals(pattern: str) -> None:
    assert copy_pattern_allowed(pattern)


@pytest.mark.parametrize("placeholder", sorted(PLACEHOLDERS))
def test_copy_pattern_admits_each_placeholder_the_copier_knows(placeholder: str) -> None:
    assert copy_pattern_allowed("x/${" + placeholder + "}")


@pytest.mark.parametrize("pattern", ["${name}", "${uuid", "", "${}", "${UUID}", "a/${default}/${size}"])
def test_copy_pattern_refuses_unknown_or_broken_placeholders(pattern: str) -> None:
    assert not copy_pattern_allowed(pattern)


def test_copy_pattern_default_is_allowed() -> None:
    assert copy_pattern_allowed(parameter("CopyPattern")["Default"])


@given(st.lists(st.sampled_from(["${", "}", "$", "{", "uuid", "ext", "name", "default", "/", "a", "."])).map("".join))
def test_a_pattern_the_template_admits_never_fails_the_copier_at_cold_start(pattern: str) -> None:
    if copy_pattern_allowed(pattern):
        try:
            validate_pattern(pattern)
        except PatternError as error:
            pytest.fail(f"the template admits {pattern!r} but the copier refuses it: {error}")


def test_no_resource_has_a_hard_coded_physical_name() -> None:
    for logical_id, resource in template()["Resources"].items():
        for name in NAME_PROPERTIES & resource.get("Properties", {}).keys():
            value = resource["Properties"][name]
            assert derived_from_stack_or_resource(value), f"{logical_id}.{name} = {value!r} is hard-coded"


def endpoint_overrides(environment: dict[str, Any]) -> dict[str, Any]:
    """botocore's endpoint variables: AWS_ENDPOINT_URL and the per-service AWS_ENDPOINT_URL_<SERVICE>."""
    return {name: value for name, value in environment.items() if name.startswith("AWS_ENDPOINT_URL")}


def test_local_aws_endpoint_defaults_to_empty() -> None:
    assert parameter("LocalAwsEndpointUrl")["Default"] == ""


@pytest.mark.parametrize("logical_id", sorted(functions()))
def test_a_deployed_function_has_no_aws_endpoint_override(logical_id: str) -> None:
    # Given the stack as deployed: every parameter at its default but the two required ones
    deployed = stack()

    # When the function's environment is resolved as CloudFormation would
    environment = deployed.resolve(function_environment(logical_id))

    # Then no AWS call of the function can be sent anywhere but the real AWS endpoints
    assert endpoint_overrides(environment) == {}


@pytest.mark.parametrize("logical_id", sorted(functions()))
def test_local_aws_endpoint_reaches_the_function_only_when_set(logical_id: str) -> None:
    local = stack(LocalAwsEndpointUrl="http://172.17.0.1:5000")

    environment = local.resolve(function_environment(logical_id))

    assert endpoint_overrides(environment) == {"AWS_ENDPOINT_URL": "http://172.17.0.1:5000"}


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        ("", True),
        ("http://172.17.0.1:5000", True),
        ("http://localhost:5000/", True),
        ("ftp://x", False),
        ("http://host:1/path", False),
        ("http://a b", False),
    ],
)
def test_local_aws_endpoint_admits_only_empty_or_an_http_root(value: str, allowed: bool) -> None:
    assert (re.fullmatch(parameter("LocalAwsEndpointUrl")["AllowedPattern"], value) is not None) == allowed
