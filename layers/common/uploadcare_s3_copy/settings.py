"""Reading a function's environment: every problem collected, then one `ConfigError` that names them all.

Each function has its own frozen settings type (`webhook.settings`, `copier.settings`), loaded once per cold start
with an `EnvReader`, so a misconfigured stack is fixed in one deploy, not one per variable. Logic receives those
values as arguments and never reads `os.environ` itself. The variables are listed in docs/configuration.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TypeVar

DEFAULT_API_URL = "https://api.uploadcare.com/"
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")

_T = TypeVar("_T")


class ConfigError(Exception):
    """One or more environment variables are missing or malformed; the message names every one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration: " + "; ".join(problems))
        self.problems = problems


class EnvReader:
    """Reads variables from an environment mapping, collecting every problem instead of stopping at the first."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.problems: list[str] = []

    def required(self, name: str) -> str:
        value = self._environ.get(name, "").strip()
        if not value:
            self.problems.append(f"{name} is required")
        return value

    def optional(self, name: str, default: str) -> str:
        return self._environ.get(name, default).strip()

    def parsed(self, name: str, default: _T, parse: Callable[[str], _T], expected: str) -> _T:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            return parse(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not {expected}")
            return default

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)

    def done(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


def parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"true", "1", "yes"}:
        return True
    if lowered in {"false", "0", "no"}:
        return False
    raise ValueError(raw)


def parse_url(raw: str) -> str:
    """An http(s) base URL, given a trailing slash."""
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", raw):
        raise ValueError(raw)
    return raw if raw.endswith("/") else raw + "/"
