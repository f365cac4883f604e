"""The copy-spec fan-out figures `make bench` prints and judges (bench/spec_fanout.py)."""

from __future__ import annotations

from typing import Any

from bench.spec_fanout import report_lines, specs_for, targets


def _row(specs: int, seconds_per_batch: float, calls: int | None = None) -> dict[str, Any]:
    files = 100
    return {
        "specs": specs,
        "files": files,
        "copies": files * specs,
        "seconds": seconds_per_batch * 10,
        "files_per_second": files / (seconds_per_batch * 10),
        "copies_per_second": files * specs / (seconds_per_batch * 10),
        "seconds_per_batch": seconds_per_batch,
        "invocations": 10,
        "remote_copy_calls": files * specs if calls is None else calls,
        "given_back": 0,
    }


def test_five_specs_in_well_under_five_times_one_spec_meets_the_target() -> None:
    met = targets([_row(1, 1.0), _row(2, 1.4), _row(5, 2.5)])

    assert [t["met"] for t in met] == [True, True]
    assert met[0]["measured"].startswith("2.50x")


def test_five_specs_done_one_after_another_miss_the_target() -> None:
    missed = targets([_row(1, 1.0), _row(5, 5.2)])

    assert missed[0]["met"] is False


def test_a_repeated_remote_copy_misses_the_one_call_per_copy_target() -> None:
    repeated = targets([_row(1, 1.0), _row(5, 2.0, calls=501)])

    assert repeated[1]["met"] is False
    assert "5 specs: 501 for 500" in repeated[1]["measured"]


def test_the_table_compares_each_spec_count_with_one_spec() -> None:
    lines = report_lines([_row(1, 1.0), _row(5, 2.5)])

    assert lines[-1].startswith("| 5 | 100 | 500 |")
    assert "| 2.50x |" in lines[-1]


def test_the_benchmark_specs_are_one_original_and_processed_versions_with_their_own_prefix() -> None:
    specs = specs_for(5, "bucket")

    assert [spec.get("effects") for spec in specs] == [
        None,
        "-/resize/100x/",
        "-/resize/200x/",
        "-/resize/300x/",
        "-/resize/400x/",
    ]
    assert len({spec["prefix"] for spec in specs}) == 5
