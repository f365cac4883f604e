"""Pure helpers of `make bench`: medians with min and max, and the Markdown tables it prints and writes into
docs/performance.md."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Summary:
    """The median of repeated measurements with their min, max and count (in the unit they were given in)."""

    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Summary:
        kept = [float(value) for value in values]
        if not kept:
            raise ValueError("no measurements to summarise")
        return cls(statistics.median(kept), min(kept), max(kept), len(kept))

    def scaled(self, factor: float) -> Summary:
        """The same figures in another unit, e.g. `scaled(1000)` for seconds to milliseconds."""
        return Summary(self.median * factor, self.min * factor, self.max * factor, self.n)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def cell(self, digits: int = 1) -> str:
        """`median (min-max)`, the form every timing cell of the tables takes."""
        return f"{self.median:.{digits}f} ({self.min:.{digits}f}-{self.max:.{digits}f})"


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]], align: str = "") -> str:
    """A GitHub Markdown table whose columns are padded so that it also reads well as plain text.

    `align` has one letter per column, `l` or `r` (default: first column left, the others right).
    """
    body = [[str(cell) for cell in row] for row in rows]
    if any(len(row) != len(headers) for row in body):
        raise ValueError("every row must have one cell per header")
    align = align or "l" + "r" * (len(headers) - 1)
    if len(align) != len(headers) or set(align) - {"l", "r"}:
        raise ValueError("align needs one of 'l' or 'r' per column")
    widths = [max(3, len(header), *(len(row[i]) for row in body)) for i, header in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(width) if side == "l" else cell.rjust(width)
            for cell, width, side in zip(cells, widths, align, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (width - 1) + ":" if side == "r" else "-" * width for width, side in zip(widths, align, strict=True)]
    return "\n".join([line(headers), line(rule), *(line(row) for row in body)])


def mib(kib: float) -> float:
    """ru_maxrss is in KiB on Linux."""
    return kib / 1024


def human_bytes(count: float) -> str:
    """Decimal units, as AWS states Lambda's package limits (50 MB zipped, 250 MB unzipped)."""
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} B"


BEGIN_MARKER = "<!-- bench:begin"
END_MARKER = "<!-- bench:end -->"


def with_tables(document: str, tables: str) -> str:
    """`document` with what lies between its bench markers replaced by `tables` (headings one level up: `##`)."""
    begin = document.find(BEGIN_MARKER)
    end = document.find(END_MARKER)
    if begin < 0 or end < begin:
        raise ValueError(f"no {BEGIN_MARKER} ... {END_MARKER} markers to write the tables between")
    start = document.index("\n", begin) + 1
    body = "\n".join(line[1:] if line.startswith("###") else line for line in tables.strip("\n").splitlines())
    return document[:start] + body + "\n" + document[end:]
