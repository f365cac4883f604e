"""How results look: rich's tables and progress on a terminal, plain lines when the output is piped or redirected.

A table piped into a file or another program is one header line and one line per row, columns separated by two
spaces and aligned, with no box drawing and no colour codes: easy to read, to grep and to diff.
"""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table


def on_terminal(stream: TextIO) -> bool:
    """A terminal that can redraw a line: a TTY, and not TERM=dumb (there, plain lines as when piped)."""
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        return False
    console = Console(file=stream)
    return console.is_terminal and not console.is_dumb_terminal


def status_display(stream: TextIO, *, transient: bool) -> Progress:
    """rich's live status line for a terminal: a spinner, the task's description and the time elapsed (`transient`:
    wiped when it stops). Callers add one task with `total=None` and update its description."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    return Progress(*columns, console=Console(file=stream), transient=transient)


def show_table(stream: TextIO, table: Table) -> None:
    """`table` drawn by rich on a terminal; else its title, header and rows as aligned plain lines."""
    if on_terminal(stream):
        Console(file=stream).print(table)
        return
    for line in plain_lines(table):
        print(line, file=stream)
    stream.flush()


def plain_lines(table: Table) -> list[str]:
    headers = [str(column.header) for column in table.columns]
    cells = [[str(cell) for cell in column.cells] for column in table.columns]
    rows = [list(row) for row in zip(*cells, strict=True)] if cells else []
    widths = [max([len(header), *(len(row[n]) for row in rows)]) for n, header in enumerate(headers)]
    right = [column.justify == "right" for column in table.columns]

    def line(values: list[str]) -> str:
        parts = [
            value.rjust(width) if flush_right else value.ljust(width)
            for value, width, flush_right in zip(values, widths, right, strict=True)
        ]
        return "  ".join(parts).rstrip()

    title = [str(table.title)] if table.title else []
    return [*title, line(headers), *(line(row) for row in rows)]
