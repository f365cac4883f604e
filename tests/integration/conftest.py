"""Integration tests talk real HTTP on loopback only: a moto server per test session, started on a free port."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
import urllib3
from pytest_socket import socket_allow_hosts

from devkit.emulator import Storage, UploadcareEmulator
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


# --- The local Uploadcare emulator (devkit/emulator/), one per test ------------------------------------------

EMULATOR_PUBLIC_KEY = "test-public-key"
EMULATOR_SECRET_KEY = "test-secret-key"
EMULATOR_STORAGE = "test-storage"
EMULATOR_PREFIX = "uploads/"


@pytest.fixture
def emulator(aws: str) -> Iterator[UploadcareEmulator]:
    """A running emulator with the test keys and one storage, `test-storage`, on a fresh moto bucket under
    `uploads/`. `emulator.url` is the API root; `emulator.storages["test-storage"].bucket` names the bucket."""
    bucket = f"emulator-{uuid.uuid4().hex[:16]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    storage = Storage(EMULATOR_STORAGE, bucket, EMULATOR_PREFIX)
    with UploadcareEmulator(
        public_key=EMULATOR_PUBLIC_KEY, secret_key=EMULATOR_SECRET_KEY, storages=[storage], aws_endpoint=aws
    ) as running:
        yield running


@pytest.fixture
def pool() -> Iterator[urllib3.PoolManager]:
    """A pool of the test's own, so no keep-alive connection outlives the test's emulator."""
    manager = urllib3.PoolManager(retries=False)
    yield manager
    manager.clear()
