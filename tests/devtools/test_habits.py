"""The project's habits hold: one source of pins, a `make help` that lists every target, pre-commit = `make lint`."""

from __future__ import annotations

import re
import subprocess

import yaml
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==(?P<version>\S+)", re.MULTILINE)


def _pins(text: str) -> dict[str, str]:
    return {canonicalize_name(m["name"]): m["version"] for m in PIN.finditer(text)}


def test_the_layer_pins_are_the_dev_locks_pins_with_hashes() -> None:
    layer = (ROOT / "layers" / "common" / "requirements.txt").read_text()
    locked = _pins((ROOT / "requirements" / "dev.txt").read_text())
    direct = _pins((ROOT / "layers" / "common" / "requirements.in").read_text())

    pinned = _pins(layer)
    assert set(direct) <= set(pinned)
    assert {name: version for name, version in pinned.items() if locked.get(name) != version} == {}
    entries = re.split(r"\n(?=[A-Za-z])", layer[layer.index(next(iter(PIN.finditer(layer)))[0]) :])
    assert [entry.split()[0] for entry in entries if "--hash=sha256:" not in entry] == []


def test_make_help_lists_every_target_of_the_makefile() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.MULTILINE))

    listed = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    assert len(targets) > 10
    assert sorted(targets - set(re.findall(r"^make (\S+)", listed, re.MULTILINE))) == []


def test_pre_commit_runs_what_make_lint_runs() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())

    entries = [hook["entry"] for repo in config["repos"] for hook in repo["hooks"]]

    assert entries == ["make lint"]
