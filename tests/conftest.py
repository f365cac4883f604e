"""Shared test helpers: paths to the byte-exact vectors and the sample events (one source of truth)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
EVENTS = ROOT / "events"


def load_vector(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())
