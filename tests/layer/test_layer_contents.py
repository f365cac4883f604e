"""What `sam build` packs into the common layer: the functions' package and its pinned dependencies, nothing else.

Runs on the output of `make sam-build` (`make test` builds first); the ops CLI and the dev tooling must never reach
Lambda, and a dependency that is not pinned in layers/common/requirements.txt must not slip in.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

LAYER = ROOT / ".aws-sam" / "build" / "CommonLayer"
REQUIREMENTS = ROOT / "layers" / "common" / "requirements.txt"
RUNTIME_PACKAGE = "uploadcare_s3_copy"
NEVER_IN_THE_LAYER = ("uploadcare_s3_copy_cli", "devkit", "bench", "tests", "ops")


def _site(layer: Path = LAYER) -> Path:
    site = layer / "python"
    if not (site / RUNTIME_PACKAGE).is_dir():
        pytest.fail(f"{site / RUNTIME_PACKAGE} is missing: run `make sam-build` first (`make test` does)")
    return site


def _pinned() -> set[str]:
    names: set[str] = set()
    for line in REQUIREMENTS.read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement and not requirement.startswith("-"):
            names.add(canonicalize_name(re.split(r"[\[=<>~ ;]", requirement, maxsplit=1)[0]))
    return names


def test_the_layer_holds_the_runtime_package_and_no_cli_module() -> None:
    site = _site()

    modules = {path.relative_to(site).as_posix() for path in (site / RUNTIME_PACKAGE).rglob("*.py")}

    assert {f"{RUNTIME_PACKAGE}/webhook/app.py", f"{RUNTIME_PACKAGE}/copier/app.py"} <= modules
    assert [name for name in NEVER_IN_THE_LAYER if (site / name).exists()] == []
    assert [module for module in modules if {"cli", "admin_api.py"} & set(Path(module).parts)] == []


def test_no_module_in_the_layer_imports_the_cli() -> None:
    site = _site()

    importing = [
        path.relative_to(site).as_posix()
        for path in (site / RUNTIME_PACKAGE).rglob("*.py")
        if re.search(r"^\s*(from|import)\s+uploadcare_s3_copy_cli\b", path.read_text(), re.MULTILINE)
    ]

    assert importing == []


def test_every_distribution_in_the_layer_is_pinned_in_the_layer_requirements() -> None:
    site = _site()

    installed = {canonicalize_name(path.name.split("-", 1)[0]) for path in site.glob("*.dist-info")}

    assert installed, f"no *.dist-info in {site}: did sam build install layers/common/requirements.txt?"
    assert installed == _pinned()
