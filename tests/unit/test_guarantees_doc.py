"""docs/guarantees.md names, for each promise, the code that keeps it and the tests that prove it: every one named
must exist, so a rename cannot leave the promise pointing at nothing."""

from __future__ import annotations

import importlib
import re

import uploadcare_s3_copy.copier
import uploadcare_s3_copy.webhook
from tests.conftest import ROOT

GUARANTEES = ROOT / "docs" / "guarantees.md"
# `path/test_file.py::test_name`, and `::test_name` continuing the previous path in the same cell
REFERENCE = re.compile(r"`(?:(?P<path>[\w/]+\.py))?::(?P<name>test_\w+)`")
# `copier.service.CopyService.verify`: a dotted name inside the runtime package
CODE = re.compile(r"`(?P<dotted>[a-z_]+(?:\.[A-Za-z_]+)*)`")
# Loaded at collection, as the other unit tests load them: creating the Tracer opens a (UDP) socket, which the
# no-network fixture refuses once a test runs.
LOADED = (uploadcare_s3_copy.copier, uploadcare_s3_copy.webhook)
PACKAGE = "uploadcare_s3_copy"


def promise_rows() -> list[list[str]]:
    rows = []
    for line in GUARANTEES.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| **") and len(cells) == 3:
            rows.append(cells)
    return rows


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join([PACKAGE, *parts[:split]]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


def test_every_test_the_guarantees_name_exists() -> None:
    # Given the test references of every promise
    references: list[tuple[str, str]] = []
    for row in promise_rows():
        path = ""
        for found in REFERENCE.finditer(row[2]):
            path = found.group("path") or path
            references.append((path, found.group("name")))

    # Then there are some, and each names a test function in that file
    assert len(references) >= 20
    missing = [
        f"{path}::{name}"
        for path, name in references
        if not path or not re.search(rf"^def {name}\(", (ROOT / "tests" / path).read_text(), re.MULTILINE)
    ]
    assert missing == []


def test_every_piece_of_code_the_guarantees_name_exists() -> None:
    # Given the code each promise says keeps it
    named = [found.group("dotted") for row in promise_rows() for found in CODE.finditer(row[1])]

    # Then there are some, and each resolves inside the runtime package
    assert len(named) >= 10
    assert [dotted for dotted in named if not resolves(dotted)] == []
