"""The Uploadcare keys, read from Secrets Manager through Powertools parameters with a cache.

The secret is JSON: {"public_key": ..., "secret_key": ..., "webhook_signing_secret": ...}.
A refresh (after a 401 from Uploadcare or a webhook signature mismatch) re-reads it at most once per
`min_refresh_seconds`, so a rotated key is picked up without a redeploy and a flood of bad signatures cannot
turn into a flood of Secrets Manager calls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from aws_lambda_powertools.utilities import parameters
from botocore.config import Config

CACHE_SECONDS = 300
MIN_REFRESH_SECONDS = 60
# After a re-read that failed (Secrets Manager throttled or down), the next may be tried this soon: a failed re-read
# must not leave a rotated key unread for the whole minute, every record meanwhile spending a receive on a 401.
RETRY_FAILED_REFRESH_SECONDS = 5
REQUIRED_FIELDS = ("public_key", "secret_key", "webhook_signing_secret")


class SecretConfigError(Exception):
    """The secret exists but its content is unusable (not JSON, or a field missing); a deployment problem."""


class SecretUnavailableError(Exception):
    """Secrets Manager could not be reached or refused the read; worth retrying later."""


@dataclass(frozen=True)
class UploadcareKeys:
    public_key: str
    secret_key: str = field(repr=False)
    webhook_signing_secret: str = field(repr=False)


def parse_keys(value: Any, secret_id: str, required: tuple[str, ...] = REQUIRED_FIELDS) -> UploadcareKeys:
    if not isinstance(value, dict):
        raise SecretConfigError(f"secret {secret_id} is not a JSON object")
    missing = [name for name in required if not isinstance(value.get(name), str) or not value[name]]
    if missing:
        raise SecretConfigError(f"secret {secret_id} lacks {', '.join(missing)}")
    return UploadcareKeys(
        public_key=str(value.get("public_key", "")),
        secret_key=str(value.get("secret_key", "")),
        webhook_signing_secret=str(value.get("webhook_signing_secret", "")),
    )


def secrets_manager_fetcher(config: Config | None = None) -> Callable[[str, bool], Any]:
    """Reads through a Powertools SecretsProvider of this key store's own, with its cache.

    The provider gets a client from boto3's default session: `parameters.get_secret` would open a second session of
    its own, which cost about 40 ms of the webhook's first request (measured by `make bench`). The functions pass a
    client `config` with short timeouts (botocore's defaults, 60 s reads and retries, outlast a 5 s webhook).
    """
    provider = parameters.SecretsProvider(boto3_client=boto3.client("secretsmanager", config=config))

    def fetch(secret_id: str, force: bool) -> Any:
        return provider.get(secret_id, transform="json", max_age=CACHE_SECONDS, force_fetch=force)

    return fetch


class KeyStore:
    """Cached access to one secret, with a rate-limited forced refresh. Thread-safe."""

    def __init__(
        self,
        secret_id: str,
        *,
        required: tuple[str, ...] = REQUIRED_FIELDS,
        fetch: Callable[[str, bool], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        min_refresh_seconds: float = MIN_REFRESH_SECONDS,
        retry_failed_refresh_seconds: float = RETRY_FAILED_REFRESH_SECONDS,
    ) -> None:
        self.secret_id = secret_id
        self._required = required
        self._fetch = fetch or secrets_manager_fetcher()
        self._clock = clock
        self._min_refresh = min_refresh_seconds
        self._retry_failed = retry_failed_refresh_seconds
        self._next_refresh: float | None = None  # the clock time before which a re-read is refused
        self._refresh_failed: str | None = None  # why the last re-read failed, if it did
        self._lock = threading.Lock()

    def get(self) -> UploadcareKeys:
        return self._read(force=False)

    def refresh(self) -> UploadcareKeys | None:
        """Re-read the secret, bypassing the cache, unless that was done less than a minute ago (then None). A re-read
        that failed (SecretUnavailableError) may be tried again after RETRY_FAILED_REFRESH_SECONDS; until then
        `refresh` raises SecretUnavailableError again, without a call (the caller answers "try later", not "no").

        The read happens under the lock, so a thread that finds a re-read under way waits for it and its next `get()`
        returns the new value (a copier batch meeting a rotated key gets one 401 per record at once).
        """
        with self._lock:
            now = self._clock()
            if self._next_refresh is not None and now < self._next_refresh:
                if self._refresh_failed is not None:  # what the secret holds now is unknown: not "nothing new"
                    raise SecretUnavailableError(f"{self._refresh_failed} (a re-read is tried again shortly)")
                return None
            self._next_refresh = now + self._retry_failed
            try:
                keys = self._read(force=True)
            except SecretUnavailableError as error:
                self._refresh_failed = str(error)
                raise
            self._refresh_failed = None
            self._next_refresh = now + self._min_refresh
            return keys

    def _read(self, force: bool) -> UploadcareKeys:
        try:
            value = self._fetch(self.secret_id, force)
        except parameters.exceptions.TransformParameterError as error:
            raise SecretConfigError(f"secret {self.secret_id} is not valid JSON") from error
        except parameters.exceptions.GetParameterError as error:
            raise SecretUnavailableError(
                f"cannot read secret {self.secret_id}: {type(error.__cause__).__name__}"
            ) from error
        return parse_keys(value, self.secret_id, self._required)
