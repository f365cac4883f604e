"""Counts the AWS API calls a process makes, by service and operation, from botocore's `before-call` event.

`install()` wraps botocore's client factory so that every client created afterwards, from any session (boto3's
default one, and the fresh `boto3.Session()` in which Powertools' parameters create their Secrets Manager client),
registers the counting hook on its own `meta.events`. `before-call` fires once per API call (retries are below it,
in the endpoint), so a count is API calls, not HTTP attempts. Used only by the benchmark's calls-per-file run.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from botocore.client import ClientCreator

_counts: Counter[str] = Counter()
_lock = threading.Lock()
_installed = False


def _count(model: Any, **_kwargs: Any) -> None:
    name = f"{model.service_model.service_name}:{model.name}"
    with _lock:
        _counts[name] += 1


def install() -> None:
    """Hooks every client created from now on; safe to call twice."""
    global _installed  # noqa: PLW0603 - one patch per process
    if _installed:
        return
    original = ClientCreator.create_client

    def create_client(self: ClientCreator, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-call", _count)
        return client

    ClientCreator.create_client = create_client
    _installed = True


def snapshot() -> dict[str, int]:
    """Calls so far, as `{"<service>:<Operation>": count}`."""
    with _lock:
        return dict(_counts)
