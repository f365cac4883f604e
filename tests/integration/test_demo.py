"""`make demo` as a newcomer runs it: a fresh process, the whole flow, a summary, exit 0, and no server left."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

from tests.conftest import ROOT


def _port_is_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_demo_ends_every_file_verified_or_dead_lettered_and_stops_its_servers() -> None:
    # When the demo runs in its own process
    done = subprocess.run(
        [sys.executable, "-m", "devkit.demo", "--log", str(ROOT / ".demo" / "test-handlers.log")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # Then it says every file ended somewhere, and exits 0
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 files, 5 verified in S3, 1 in the DLQ with a reason, 0 left on the queue" in done.stdout
    assert "queued 1 (the lost webhook's file)" in done.stdout
    assert "  5 of 6 files verified\n" in done.stdout
    assert "reason=too_large" in done.stdout
    assert "Demo OK" in done.stdout
    # And the moto server it started is gone
    port = int(re.search(r"AWS: http://localhost:(\d+)", done.stdout).group(1))  # type: ignore[union-attr]
    assert _port_is_closed(port)


def test_a_terminated_demo_stops_its_servers() -> None:
    # Given a demo that has started its servers
    process = subprocess.Popen(
        [sys.executable, "-m", "devkit.demo", "--log", str(ROOT / ".demo" / "test-killed.log")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    port = 0
    deadline = time.monotonic() + 30
    while not port and time.monotonic() < deadline:
        found = re.search(r"AWS: http://localhost:(\d+)", process.stdout.readline())
        port = int(found.group(1)) if found else 0
    assert port, "the demo never reported its servers"

    # When it is terminated mid-run
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)

    # Then its moto server is stopped too
    deadline = time.monotonic() + 10
    while not _port_is_closed(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _port_is_closed(port)
    assert process.returncode != 0
