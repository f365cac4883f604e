"""Integration tests talk real HTTP on loopback only: a moto server per test session, started on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_socket import socket_allow_hosts

from devkit.servers import aws_env, moto_server


@pytest.fixture(autouse=True)
def _loopback_only() -> None:
    socket_allow_hosts(["127.0.0.1", "localhost", "::1"], allow_unix_socket=True)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Points boto3 (in this process) at the session's moto server; yields the endpoint."""
    for name, value in aws_env(moto_endpoint).items():
        monkeypatch.setenv(name, value)
    return moto_endpoint
