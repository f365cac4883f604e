"""Helpers shared by the emulator's own tests and the client's tests against it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from devkit.emulator import UploadcareEmulator
from tests.integration.conftest import EMULATOR_STORAGE
from uploadcare_s3_copy.uploadcare import FilesPage


def at_most(pages: Iterator[FilesPage], limit: int = 20) -> Iterator[FilesPage]:
    """Pages of a listing, failing instead of looping forever when `next` never ends."""
    taken = list(itertools.islice(pages, limit + 1))
    assert len(taken) <= limit, "the listing's `next` links do not end"
    return iter(taken)


def bucket_of(emulator: UploadcareEmulator) -> str:
    return emulator.storages[EMULATOR_STORAGE].bucket
