"""`make bench` writes its tables into docs/performance.md between two markers, and nowhere else."""

from __future__ import annotations

import pytest

from bench.stats import BEGIN_MARKER, END_MARKER, with_tables
from tests.conftest import ROOT

DOC = f"# Performance\n\nintro\n\n{BEGIN_MARKER}: rewritten -->\nold table\n{END_MARKER}\n\n## What the figures say\n"


def test_the_tables_replace_only_what_is_between_the_markers() -> None:
    written = with_tables(DOC, "Machine: x\n\n### Cold start\n\n| a |\n")

    assert written == (
        f"# Performance\n\nintro\n\n{BEGIN_MARKER}: rewritten -->\nMachine: x\n\n## Cold start\n\n| a |\n"
        f"{END_MARKER}\n\n## What the figures say\n"
    )
    assert with_tables(written, "new\n").count(BEGIN_MARKER) == 1


def test_a_document_without_markers_is_refused_not_overwritten() -> None:
    with pytest.raises(ValueError, match="markers"):
        with_tables("# Performance\n\nno markers\n", "tables")


def test_docs_performance_has_the_markers_the_bench_writes_between() -> None:
    document = (ROOT / "docs" / "performance.md").read_text()

    assert document.count(BEGIN_MARKER) == 1
    assert document.count(END_MARKER) == 1
    assert document.index(BEGIN_MARKER) < document.index(END_MARKER)
