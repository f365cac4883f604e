"""The benchmark's figures: medians with min and max, and the tables `make bench` prints (bench/stats.py)."""

from __future__ import annotations

import pytest

from bench.stats import Summary, human_bytes, markdown_table, ratio


def test_a_summary_is_the_median_with_min_max_and_count() -> None:
    # Given measurements in no particular order, an even number of them
    values = [0.4, 0.1, 0.3, 0.2]

    # When they are summarised
    summary = Summary.of(values)

    # Then the median is the mean of the middle two, with the extremes and the count
    assert summary == Summary(median=0.25, min=0.1, max=0.4, n=4)


def test_a_summary_scales_to_another_unit_and_formats_as_a_cell() -> None:
    # Given seconds
    summary = Summary.of([0.0123, 0.0101, 0.0150])

    # When shown in milliseconds
    cell = summary.scaled(1000).cell(1)

    # Then the cell reads "median (min-max)"
    assert cell == "12.3 (10.1-15.0)"


def test_nothing_to_summarise_is_an_error_not_a_zero() -> None:
    with pytest.raises(ValueError, match="no measurements"):
        Summary.of([])


def test_a_ratio_against_zero_is_none() -> None:
    assert ratio(1.0, 4.0) == 0.25
    assert ratio(1.0, 0.0) is None


def test_a_table_is_markdown_padded_to_read_as_plain_text() -> None:
    # Given a header and rows of mixed widths
    headers = ["function", "ms"]
    rows = [["webhook", "12.5"], ["baseline", "7"]]

    # When rendered
    table = markdown_table(headers, rows)

    # Then columns line up, text left and numbers right, with a Markdown rule
    assert table.splitlines() == [
        "| function |   ms |",
        "| -------- | ---: |",
        "| webhook  | 12.5 |",
        "| baseline |    7 |",
    ]


def test_a_row_with_a_missing_cell_is_refused() -> None:
    with pytest.raises(ValueError, match="one cell per header"):
        markdown_table(["a", "b"], [["only one"]])


@pytest.mark.parametrize(("count", "shown"), [(512, "512 B"), (1_500, "1.5 kB"), (18_970_000, "19.0 MB")])
def test_sizes_are_shown_in_decimal_units_like_lambdas_limits(count: int, shown: str) -> None:
    assert human_bytes(count) == shown
