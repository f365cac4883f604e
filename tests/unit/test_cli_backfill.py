"""The backfill's pure parts: dates, the state file, the progress line, and the page loop driven by a fake listing
(429 waits, retries, the `--to` bound, skipped files, page limits). No network."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from uploadcare_s3_copy.moments import iso_z, parse_when
from uploadcare_s3_copy.reasons import PermanentFailure, Reason, TransientFailure
from uploadcare_s3_copy.uploadcare import FilesPage, UploadcareAuthError
from uploadcare_s3_copy_cli.backfill import (
    Backfill,
    BackfillState,
    Progress,
    StateFile,
    check_resume,
    default_state_path,
    eta_seconds,
    format_duration,
    status_line,
)
from uploadcare_s3_copy_cli.base import CliError, UsageError

START = datetime(2024, 1, 1, tzinfo=UTC)


# --- dates ----------------------------------------------------------------------------------------------------


def test_a_bare_date_is_the_start_of_that_day_or_its_end() -> None:
    assert parse_when("2024-01-31") == datetime(2024, 1, 31, tzinfo=UTC)
    assert parse_when("2024-01-31", end_of_day=True) == datetime(2024, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)


def test_date_times_keep_their_offset_and_naive_ones_are_utc() -> None:
    assert parse_when("2024-01-31T12:00:00Z") == datetime(2024, 1, 31, 12, tzinfo=UTC)
    assert parse_when("2024-01-31T14:00:00+02:00") == datetime(2024, 1, 31, 12, tzinfo=UTC)
    assert parse_when("2024-01-31T12:00:00") == datetime(2024, 1, 31, 12, tzinfo=UTC)
    with pytest.raises(ValueError, match="is not an ISO date"):
        parse_when("31/01/2024")


def test_iso_z_is_utc_with_a_z_and_microseconds_only_when_there_are_some() -> None:
    assert iso_z(parse_when("2024-01-31T14:00:00+02:00")) == "2024-01-31T12:00:00Z"
    assert iso_z(datetime(2024, 1, 31, 0, 0, 0, 5, tzinfo=UTC)) == "2024-01-31T00:00:00.000005Z"


# --- the state file -------------------------------------------------------------------------------------------


def new_state(**changes: Any) -> BackfillState:
    values: dict[str, Any] = {
        "queue_url": "https://sqs/q",
        "from_datetime": "2024-01-01T00:00:00Z",
        "to_datetime": None,
        "stored_only": False,
        "page_size": 100,
        "cursor": "/files/?limit=100",
    }
    return BackfillState(**{**values, **changes})


def test_the_state_is_saved_whole_and_loads_back(tmp_path: Path) -> None:
    store = StateFile(tmp_path / "deep" / "backfill-x.json")
    state = new_state(seen=12, queued=10, skipped=2, pages=1, last_uploaded="2024-01-02T00:00:00Z")

    store.save(state)
    loaded = store.load()

    assert loaded == state
    assert [path.name for path in store.path.parent.iterdir()] == ["backfill-x.json"]  # no temporary file left
    assert json.loads(store.path.read_text())["cursor"] == "/files/?limit=100"


def test_no_state_file_is_none_and_an_unusable_one_is_an_error(tmp_path: Path) -> None:
    store = StateFile(tmp_path / "backfill.json")
    assert store.load() is None

    store.path.write_text('{"version": 99}')

    with pytest.raises(CliError, match="is unusable"):
        store.load()


def test_the_default_state_path_is_per_stack_or_per_queue() -> None:
    cache = {"XDG_CACHE_HOME": "/cache"}

    by_stack = default_state_path(cache, "prod", "https://sqs/q")
    by_queue = default_state_path(cache, None, "https://sqs/q")
    other_queue = default_state_path(cache, None, "https://sqs/other")
    at_home = default_state_path({"HOME": "/home/op"}, "prod", "https://sqs/q")

    assert by_stack == Path("/cache/uploadcare-s3-copy/backfill-prod.json")
    assert by_queue.parent == Path("/cache/uploadcare-s3-copy")
    assert by_queue.name.startswith("backfill-")
    assert by_queue != other_queue
    assert at_home == Path("/home/op/.cache/uploadcare-s3-copy/backfill-prod.json")


def test_a_resume_keeps_the_saved_queue_and_range() -> None:
    state = new_state()

    check_resume(state, "https://sqs/q", {"--from": "2024-01-01T00:00:00Z", "--to": None, "--stored-only": False})
    with pytest.raises(UsageError, match="queues to https://sqs/q, not https://sqs/other"):
        check_resume(state, "https://sqs/other", {})
    with pytest.raises(UsageError, match="whose --from is '2024-01-01T00:00:00Z'"):
        check_resume(state, "https://sqs/q", {"--from": "2023-01-01T00:00:00Z"})
    with pytest.raises(UsageError, match="whose --stored-only is False"):
        check_resume(state, "https://sqs/q", {"--stored-only": True})


# --- progress -------------------------------------------------------------------------------------------------


def test_the_eta_follows_the_share_of_the_time_range_covered() -> None:
    upper = START + timedelta(days=10)

    halfway = eta_seconds(START, upper, None, START + timedelta(days=5), elapsed=30.0)
    resumed = eta_seconds(START, upper, START + timedelta(days=5), START + timedelta(days=6), elapsed=10.0)

    assert halfway == pytest.approx(30.0)
    assert resumed == pytest.approx(40.0)
    assert eta_seconds(START, None, None, START + timedelta(days=5), elapsed=30.0) is None  # no --to, no ETA


def test_the_status_line() -> None:
    state = new_state(seen=1200, queued=1180, skipped=20, last_uploaded="2024-03-01T10:00:00.123Z")

    line = status_line(state, rate=812.4, eta=3725.0, dry_run=False)

    assert line == (
        "backfill: 1,200 seen · 1,180 queued · 20 skipped · 812/s · up to 2024-03-01T10:00:00Z · ETA 1:02:05"
    )
    assert "1,180 would queue" in status_line(state, rate=0.0, eta=None, dry_run=True)
    assert format_duration(59.6) == "0:01:00"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_rewrites_one_line_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    stream = FakeTerminal()
    progress = Progress(stream, clock=lambda: 0.0)

    progress.show("backfill: 100 seen, long line")
    progress.show("backfill: 200 seen")
    progress.finish()

    drawn = stream.getvalue()
    assert "backfill: 200 seen" in drawn
    assert "\x1b[" in drawn  # rich's live display: terminal control sequences, not plain lines
    assert "backfill: 200 seen\n" not in drawn


def test_progress_elsewhere_writes_a_line_now_and_then_and_the_last_one() -> None:
    stream = io.StringIO()
    now = [0.0]
    progress = Progress(stream, clock=lambda: now[0], interval=10.0)

    for second, line in ((0.0, "first"), (4.0, "skipped"), (11.0, "eleventh"), (12.0, "last")):
        now[0] = second
        progress.show(line)
    progress.finish()

    assert stream.getvalue() == "first\neleventh\nlast\n"


# --- the page loop --------------------------------------------------------------------------------------------


def file_info(n: int, **changes: Any) -> dict[str, Any]:
    return {
        "uuid": f"00000000-0000-4000-8000-{n:012d}",
        "size": 10 + n,
        "original_filename": f"f{n}.txt",
        "mime_type": "text/plain",
        "original_file_url": f"https://ucarecdn.com/{n}/",
        "datetime_uploaded": iso_z(START + timedelta(hours=n)),
        "datetime_removed": None,
        **changes,
    }


class FakeListing:
    """Pages of file infos under cursors `p0`, `p1`, ...; answers may be scripted failures before a page."""

    def __init__(self, pages: list[list[dict[str, Any]]], failures: dict[str, list[Exception]] | None = None) -> None:
        self.pages = pages
        self.failures = failures or {}
        self.asked: list[str] = []

    def list_files_page(self, cursor: str) -> FilesPage:
        self.asked.append(cursor)
        pending = self.failures.get(cursor, [])
        if pending:
            raise pending.pop(0)
        index = int(cursor[1:])
        next_url = f"p{index + 1}" if index + 1 < len(self.pages) else None
        return FilesPage(files=self.pages[index], next_url=next_url)


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[list[str]] = []

    def send_all(self, bodies: list[str]) -> int:
        self.sent.append(list(bodies))
        return len(bodies)

    def uuids(self) -> list[str]:
        return [json.loads(body)["uuid"] for bodies in self.sent for body in bodies]


def backfill(
    listing: FakeListing,
    *,
    to: str | None = None,
    max_pages: int | None = None,
    store: StateFile | None = None,
    dry_run: bool = False,
) -> tuple[Backfill, RecordingSender, list[float], list[str]]:
    sender = RecordingSender()
    sleeps: list[float] = []
    warnings: list[str] = []
    run = Backfill(
        source=listing,
        sender=None if dry_run else sender,
        state=new_state(cursor="p0", to_datetime=to),
        store=store,
        progress=Progress(io.StringIO(), clock=lambda: 0.0),
        warn=warnings.append,
        sleep=sleeps.append,
        clock=lambda: 0.0,
        max_pages=max_pages,
    )
    return run, sender, sleeps, warnings


def test_a_throttled_page_waits_retry_after_and_is_asked_for_again() -> None:
    # Given a listing that throttles the second page twice
    throttled = TransientFailure(Reason.THROTTLED, "Request was throttled.", retry_after=7.0, status=429)
    listing = FakeListing([[file_info(0)], [file_info(1)]], {"p1": [throttled, throttled]})
    run, sender, sleeps, warnings = backfill(listing)

    # When the backfill runs
    finished = run.run()

    # Then it waited Retry-After each time, asked for the same page again, and queued each file once
    assert finished is True
    assert listing.asked == ["p0", "p1", "p1", "p1"]
    assert sleeps == [7.0, 7.0]
    assert sender.uuids() == [file_info(0)["uuid"], file_info(1)["uuid"]]
    assert warnings == ["Uploadcare throttled the listing (429): waiting 7 s, then asking again"] * 2


def test_server_errors_are_retried_a_few_times_then_the_failure_stops_the_run(tmp_path: Path) -> None:
    down = TransientFailure(Reason.SERVER_ERROR, "HTTP 502: Bad Gateway", status=502)
    listing = FakeListing([[file_info(0)], [file_info(1)]], {"p1": [down, down, down, down]})
    store = StateFile(tmp_path / "state.json")
    run, _, sleeps, _ = backfill(listing, store=store)

    with pytest.raises(TransientFailure):
        run.run()

    assert sleeps == [2.0, 5.0, 15.0]
    saved = store.load()
    assert saved is not None
    assert (saved.cursor, saved.queued, saved.done) == ("p1", 1, False)  # the first page's progress is kept


@pytest.mark.parametrize(
    "failure",
    [UploadcareAuthError("Incorrect authentication credentials."), PermanentFailure(Reason.NOT_ACCEPTABLE, "406")],
)
def test_auth_and_permanent_failures_are_not_retried(failure: Exception) -> None:
    listing = FakeListing([[file_info(0)]], {"p0": [failure]})
    run, _, sleeps, _ = backfill(listing)

    with pytest.raises(type(failure)):
        run.run()

    assert sleeps == []


def test_the_backfill_ends_at_the_first_file_after_to() -> None:
    # Given three pages, the second one crossing --to
    listing = FakeListing([[file_info(0), file_info(1)], [file_info(2), file_info(30)], [file_info(31)]])
    run, sender, _, _ = backfill(listing, to=iso_z(START + timedelta(hours=2)))

    finished = run.run()

    assert finished is True
    assert listing.asked == ["p0", "p1"]  # the third page is not even asked for
    assert sender.uuids() == [file_info(n)["uuid"] for n in (0, 1, 2)]
    assert (run.state.seen, run.state.queued, run.state.done, run.state.cursor) == (3, 3, True, None)


def test_removed_invalid_and_repeated_files_are_skipped() -> None:
    listing = FakeListing(
        [
            [file_info(0), file_info(1, datetime_removed="2024-02-01T00:00:00Z"), file_info(2, uuid="1234~2")],
            [file_info(0), file_info(3, size=True), file_info(4)],
        ]
    )
    run, sender, _, warnings = backfill(listing)

    run.run()

    assert sender.uuids() == [file_info(0)["uuid"], file_info(4)["uuid"]]
    assert (run.state.seen, run.state.queued, run.state.skipped) == (6, 2, 4)
    assert len(warnings) == 2  # the two files that are not valid file objects


def test_each_request_is_a_backfill_copy_request_from_the_file_info() -> None:
    run, sender, _, _ = backfill(FakeListing([[file_info(5)]]))

    run.run()

    (body,) = sender.sent[0]
    request = json.loads(body)
    assert request["origin"] == "backfill"
    assert (request["uuid"], request["size"], request["original_filename"]) == (file_info(5)["uuid"], 15, "f5.txt")
    assert request["cdn_url"] == "https://ucarecdn.com/5/"


def test_max_pages_stops_with_the_next_cursor_saved(tmp_path: Path) -> None:
    listing = FakeListing([[file_info(0)], [file_info(1)], [file_info(2)]])
    store = StateFile(tmp_path / "state.json")
    run, sender, _, _ = backfill(listing, max_pages=2, store=store)

    finished = run.run()

    assert finished is False
    assert len(sender.sent) == 2
    saved = store.load()
    assert saved is not None
    assert (saved.cursor, saved.pages, saved.queued, saved.done) == ("p2", 2, 2, False)


def test_a_dry_run_counts_without_sending() -> None:
    run, sender, _, _ = backfill(FakeListing([[file_info(0), file_info(1)]]), dry_run=True)

    run.run()

    assert sender.sent == []
    assert (run.state.seen, run.state.queued) == (2, 2)


def test_progress_on_a_dumb_terminal_is_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "dumb")
    stream = FakeTerminal()
    progress = Progress(stream, clock=lambda: 0.0)

    progress.show("backfill: 100 seen")
    progress.finish()

    assert stream.getvalue() == "backfill: 100 seen\n"
