"""What the template tests share: the parsed template.yaml and a few ways to look into it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from devkit.cfn_template import Stack, load_template
from tests.conftest import ROOT

TEMPLATE_PATH = ROOT / "template.yaml"
# Parameters without a default: a deployment must name the Uploadcare storage and its bucket.
REQUIRED_PARAMETERS: Mapping[str, str] = {"UploadcareStorageName": "my-storage", "TargetBucketName": "my-uploads"}


@cache
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


def stack(**parameters: str) -> Stack:
    """The template as deployed with its defaults, the required parameters and `parameters`."""
    return Stack(template(), {**REQUIRED_PARAMETERS, **parameters})


def resources_of_type(resource_type: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for logical_id, resource in template()["Resources"].items():
        if resource["Type"] == resource_type:
            yield logical_id, resource


def functions() -> list[str]:
    return [logical_id for logical_id, _ in resources_of_type("AWS::Serverless::Function")]


def function_environment(logical_id: str) -> dict[str, Any]:
    """A function's variables as SAM merges them: the Globals' first, the function's own on top."""
    global_variables = template().get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    own = template()["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
    return {**global_variables, **own}


def parameter(name: str) -> Mapping[str, Any]:
    declaration: Mapping[str, Any] = template()["Parameters"][name]
    return declaration
