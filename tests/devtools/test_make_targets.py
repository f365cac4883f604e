"""The Makefile's deployment targets use the project's own SAM CLI with telemetry off, so the README's deploy steps
work from a fresh clone without a global `sam` (checked with `make -n`: what would run, nothing deployed)."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import ROOT


def planned(*target: str) -> list[str]:
    done = subprocess.run(["make", "-n", *target], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    return [line for line in done.stdout.splitlines() if "/bin/sam " in line]


@pytest.mark.parametrize(
    ("target", "commands"),
    [
        (["deploy"], ["sam build", "sam deploy --guided"]),
        (["deploy", "GUIDED="], ["sam build", "sam deploy"]),
        (["delete", "STACK=uploadcare-s3-copy"], ["sam delete --stack-name uploadcare-s3-copy"]),
    ],
)
def test_deploy_and_delete_run_the_projects_sam_cli_without_telemetry(target: list[str], commands: list[str]) -> None:
    lines = planned(*target)

    assert [line.split(".venv-sam/bin/")[-1].strip() for line in lines] == commands
    for line in lines:
        assert "SAM_CLI_TELEMETRY=0 .venv-sam/bin/sam " in line
        assert "find-python.sh" in line  # sam build checks that python3.13 is on the PATH


def test_every_target_with_a_help_line_is_listed_by_make_help() -> None:
    listed = subprocess.run(["make", "help"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True).stdout

    for target in ("demo", "test", "up", "down", "drain", "invoke", "deploy", "delete", "e2e"):
        assert f"make {target} " in listed
