"""Reads template.yaml as CloudFormation does, and resolves its values for a given set of parameters.

`load_template` turns the short-form intrinsics (`!Ref X`, `!Sub ...`, `!GetAtt A.B`) into their long form
(`{"Ref": "X"}`, `{"Fn::Sub": ...}`, `{"Fn::GetAtt": ["A", "B"]}`), so tests can look at a property without caring
how it was written. `Stack` evaluates those intrinsics the way a deployment would (parameter defaults, conditions,
mappings, `Fn::Sub`), with placeholders for what only exists after a deployment (resource ids and attributes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

INTRINSICS = frozenset(
    {
        "Ref",
        "Condition",
        "GetAtt",
        "Sub",
        "If",
        "Equals",
        "Not",
        "And",
        "Or",
        "Select",
        "Split",
        "Join",
        "FindInMap",
        "Base64",
        "GetAZs",
        "ImportValue",
    }
)
PSEUDO_PARAMETERS: Mapping[str, str] = {
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::StackName": "uploadcare-s3-copy",
    "AWS::URLSuffix": "amazonaws.com",
}
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class _CloudFormationLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no type hints
    """PyYAML's safe loader plus the `!Ref`-style tags of CloudFormation's short form."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if tag_suffix not in INTRINSICS:
        raise yaml.constructor.ConstructorError(None, None, f"unknown tag !{tag_suffix}", node.start_mark)
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix in {"Ref", "Condition"}:
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{tag_suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    template = yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(template, dict):
        raise TypeError(f"{path} is not a YAML mapping")
    return template


class _NoValue:
    """`AWS::NoValue`: the property or list item disappears."""


NO_VALUE = _NoValue()


class Stack:
    """The template evaluated for one set of parameter values (defaults unless given), as CloudFormation would."""

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, str] | None = None) -> None:
        self.template = template
        self.parameters: dict[str, str] = {}
        for name, declaration in template.get("Parameters", {}).items():
            if "Default" in declaration:
                self.parameters[name] = str(declaration["Default"])
        self.parameters.update(parameters or {})

    def resource(self, logical_id: str) -> Mapping[str, Any]:
        resource: Mapping[str, Any] = self.template["Resources"][logical_id]
        return resource

    def properties(self, logical_id: str) -> Mapping[str, Any]:
        properties: Mapping[str, Any] = self.resource(logical_id).get("Properties", {})
        return properties

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        if name in self.template.get("Parameters", {}):
            if name not in self.parameters:
                raise KeyError(f"parameter {name} has no default: give it a value")
            return self.parameters[name]
        if name in self.template["Resources"]:
            return f"{name}-ref"  # a physical id exists only after deployment
        raise KeyError(f"!Ref {name}: no such parameter or resource")

    def get_att(self, logical_id: str, attribute: str) -> str:
        if logical_id not in self.template["Resources"]:
            raise KeyError(f"!GetAtt {logical_id}.{attribute}: no such resource")
        return f"{logical_id}.{attribute}"

    def resolve(self, value: Any) -> Any:  # noqa: PLR0911, PLR0912 - one branch per intrinsic reads best
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Condition":
                return self.condition(argument)
            if key == "Fn::GetAtt":
                return self.get_att(argument[0], argument[1])
            if key == "Fn::Sub":
                return self._sub(argument)
            if key == "Fn::If":
                name, when_true, when_false = argument
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::Equals":
                left, right = (self.resolve(item) for item in argument)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(argument[0])
            if key == "Fn::And":
                return all(self.resolve(item) for item in argument)
            if key == "Fn::Or":
                return any(self.resolve(item) for item in argument)
            if key == "Fn::Select":
                return self.resolve(argument[1])[int(self.resolve(argument[0]))]
            if key == "Fn::Split":
                return str(self.resolve(argument[1])).split(argument[0])
            if key == "Fn::Join":
                return argument[0].join(str(item) for item in self.resolve(argument[1]))
            if key == "Fn::FindInMap":
                name, top, second = (str(self.resolve(item)) for item in argument)
                return self.template["Mappings"][name][top][second]
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and name.split(".", 1)[0] in self.template["Resources"]:
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return str(self.ref(name))

        return _SUB_VARIABLE.sub(substitute, text)


def sub_references(value: Any) -> set[str]:
    """The names a `Fn::Sub` (either form) refers to, without attributes: `${Queue.Arn}` -> `Queue`."""
    text = value if isinstance(value, str) else value[0]
    return {name.split(".", 1)[0] for name in _SUB_VARIABLE.findall(text) if not name.startswith("!")}
