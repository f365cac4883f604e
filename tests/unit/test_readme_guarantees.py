"""README "Guarantees" names, for each promise, the tests that prove it: every one named must exist."""

from __future__ import annotations

import re

from tests.conftest import ROOT

# `path/test_file.py::test_name`, and `::test_name` continuing the previous path in the same cell
REFERENCE = re.compile(r"`(?:(?P<path>[\w/]+\.py))?::(?P<name>test_\w+)`")


def guarantees_section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\n## Guarantees\n")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def test_every_test_the_guarantees_name_exists() -> None:
    # Given the references in the Guarantees section
    references: list[tuple[str, str]] = []
    for row in guarantees_section().splitlines():
        path = ""
        for found in REFERENCE.finditer(row):
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
