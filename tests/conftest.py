"""Shared test helpers: paths to the byte-exact vectors and the sample events (one source of truth)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
EVENTS = ROOT / "events"


def load_vector(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


# Property tests are repeatable by default (CI and local runs draw the same examples, and no example database
# carries state between runs); HYPOTHESIS_PROFILE=explore draws fresh random examples, many more of them.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("explore", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
