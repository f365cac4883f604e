"""AWS failures at the process edge, for the reliability tests: an API call of the functions' boto3 clients fails
the way botocore reports a throttled or unreachable service, while everything else talks to the moto server.

`AwsFaults.install(monkeypatch)` wraps `boto3.client` so every client created afterwards (the copier builds its
clients at cold start) consults the fault table before each call; the test clients are affected only when a rule
matches them. Rules match a service, an operation and optionally a predicate over the call's parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError


def throttled(operation: str) -> ClientError:
    code = "ProvisionedThroughputExceededException"
    return ClientError(
        {"Error": {"Code": code, "Message": "Rate of requests exceeds the allowed throughput."}}, operation
    )


def unavailable(operation: str) -> EndpointConnectionError:
    return EndpointConnectionError(endpoint_url=f"https://unreachable.invalid/{operation}")


def service_error(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "Service is unavailable."}}, operation)


@dataclass
class Rule:
    service: str
    operation: str
    error: Callable[[str], Exception]
    when: Callable[[dict[str, Any]], bool] = lambda params: True
    times: int | None = None  # None: until removed
    hits: int = 0


@dataclass
class AwsFaults:
    rules: list[Rule] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> AwsFaults:
        real_client = boto3.client

        def client(service_name: str, *args: Any, **kwargs: Any) -> Any:
            created = real_client(service_name, *args, **kwargs)
            created.meta.events.register("provide-client-params", self._check)
            return created

        monkeypatch.setattr(boto3, "client", client)
        return self

    def fail(
        self,
        service: str,
        operation: str,
        error: Callable[[str], Exception],
        *,
        when: Callable[[dict[str, Any]], bool] = lambda params: True,
        times: int | None = None,
    ) -> Rule:
        rule = Rule(service, operation, error, when, times)
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def _check(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.endpoint_prefix
        for rule in self.rules:
            if (rule.service, rule.operation) != (service, model.name) or not rule.when(params):
                continue
            if rule.times is not None and rule.hits >= rule.times:
                continue
            rule.hits += 1
            raise rule.error(model.name)
