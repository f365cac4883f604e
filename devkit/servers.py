"""Loopback servers for the demo, the integration tests and the benchmarks: a moto server standing in for AWS.

Every server binds 127.0.0.1 on a free port and is stopped by its context manager, whatever happens.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with code {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback URL we built ourselves
                return
        except urllib.error.HTTPError:
            return  # it answered: that is ready enough
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server for {url} did not answer within {timeout} s")


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when its parent dies, even by SIGKILL, so no server outlives its owner."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def moto_server(log_path: Path | None = None) -> Iterator[str]:
    """Run `moto.server` on 127.0.0.1:<free port>; yields its endpoint, `http://localhost:<port>`.

    moto's S3 URL parsing expects a host name, hence `localhost` in the endpoint (tooling-notes.md).
    """
    port = free_port()
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below
    env = {**os.environ, **FAKE_AWS_ENV, "MOTO_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509 - only prctl, no locks
    )
    try:
        endpoint = f"http://localhost:{port}"
        wait_until_ready(f"http://127.0.0.1:{port}/moto-api/", process)
        yield endpoint
    finally:
        stop_process(process)
        if log_path and log is not subprocess.DEVNULL:
            log.close()  # type: ignore[union-attr]


def aws_env(endpoint: str) -> dict[str, str]:
    """The environment that points every boto3 client at a local moto server."""
    return {**FAKE_AWS_ENV, "AWS_ENDPOINT_URL": endpoint}
