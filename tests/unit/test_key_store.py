"""The key store under concurrent re-reads: a copier batch whose records all meet a rotated key at once."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from aws_lambda_powertools.utilities import parameters

from uploadcare_s3_copy.secrets import KeyStore, SecretUnavailableError, UploadcareKeys

OLD = {"public_key": "pk", "secret_key": "old-secret-key", "webhook_signing_secret": "s"}
NEW = {"public_key": "pk", "secret_key": "new-secret-key", "webhook_signing_secret": "s"}


class SlowSecretsManager:
    """A cached secret whose forced read blocks until released, like a Secrets Manager call in flight."""

    def __init__(self) -> None:
        self.cached: dict[str, str] = OLD
        self.reading = threading.Event()
        self.release = threading.Event()
        self.forced = 0

    def __call__(self, secret_id: str, force: bool) -> Any:
        if force:
            self.forced += 1
            self.reading.set()
            self.release.wait(5)
            self.cached = NEW
        return self.cached


def test_a_thread_that_finds_a_reread_under_way_gets_the_new_keys() -> None:
    # Given a re-read of a rotated secret in flight in one thread
    secrets_manager = SlowSecretsManager()
    store = KeyStore("uc", fetch=secrets_manager)
    first = threading.Thread(target=store.refresh)
    first.start()
    assert secrets_manager.reading.wait(5)

    # When a second thread, which also met a 401, asks for fresh keys the way the copier does
    seen: list[UploadcareKeys] = []
    second = threading.Thread(target=lambda: seen.append(store.refresh() or store.get()))
    second.start()
    second.join(0.2)  # without the lock held across the read, it is already done here, with the old keys
    secrets_manager.release.set()
    first.join(5)
    second.join(5)

    # Then it got the re-read keys, and the secret was read once
    assert [keys.secret_key for keys in seen] == ["new-secret-key"]
    assert secrets_manager.forced == 1


def test_a_second_reread_within_the_minute_is_refused() -> None:
    now = [0.0]
    secrets_manager = SlowSecretsManager()
    secrets_manager.release.set()
    store = KeyStore("uc", fetch=secrets_manager, clock=lambda: now[0])

    assert store.refresh() is not None
    now[0] = 59.0
    assert store.refresh() is None
    now[0] = 60.0
    assert store.refresh() is not None
    assert secrets_manager.forced == 2


class FailingOnceSecretsManager:
    """Secrets Manager refusing the first forced read (throttled, down), then answering."""

    def __init__(self) -> None:
        self.forced = 0

    def __call__(self, secret_id: str, force: bool) -> Any:
        if force:
            self.forced += 1
            if self.forced == 1:
                raise parameters.exceptions.GetParameterError("throttled") from ConnectionError("503")
        return NEW


def test_a_failed_reread_may_be_retried_soon_not_after_the_minute() -> None:
    # Given a re-read (after a 401 from a rotated key) that Secrets Manager fails
    secrets_manager = FailingOnceSecretsManager()
    store = KeyStore("uc", fetch=secrets_manager, retry_failed_refresh_seconds=0.2)
    with pytest.raises(SecretUnavailableError):
        store.refresh()

    # When the next record meets a 401 at once, and again once the short retry wait has really passed
    with pytest.raises(SecretUnavailableError, match="tried again shortly"):
        store.refresh()
    time.sleep(0.25)
    later = store.refresh()

    # Then the first is told the secret is still unreadable, without a call (no hammering of a failing Secrets
    # Manager), the second reads the new key, and a successful re-read blocks the next one for the whole minute again
    assert later is not None
    assert later.secret_key == "new-secret-key"
    assert store.refresh() is None
    assert secrets_manager.forced == 2
