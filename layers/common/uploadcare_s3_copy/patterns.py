"""Uploadcare `remote_copy` patterns: validation and prediction of the object key a copy will get.

Placeholders as documented for `POST /files/remote_copy/` (REST API v0.7, "Copy file to remote storage"):
`${default}` = `${uuid}/${auto_filename}`, `${auto_filename}` = `${filename}${effects}${ext}`, plus `${effects}`,
`${filename}`, `${uuid}` and `${ext}`. Any other `${...}` is refused by Uploadcare, so it is refused here at cold
start instead of once per file.
"""

from __future__ import annotations

import os
import re

PLACEHOLDERS = frozenset({"default", "auto_filename", "effects", "filename", "uuid", "ext"})
_COMPOSITE = {
    "default": "${uuid}/${auto_filename}",
    "auto_filename": "${filename}${effects}${ext}",
}
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
# Uploadcare keeps only these characters of the file name (image(1).jpeg -> image1.jpeg), and `noroot` when none.
_NOT_KEPT = re.compile(r"[^a-zA-Z0-9_]")
EMPTY_FILENAME = "noroot"


class PatternError(ValueError):
    """The pattern uses a placeholder Uploadcare does not know, or is malformed."""


def validate_pattern(pattern: str) -> str:
    if not pattern:
        raise PatternError("the pattern is empty")
    unknown = sorted({name for name in _PLACEHOLDER.findall(pattern) if name not in PLACEHOLDERS})
    if unknown:
        names = ", ".join("${" + name + "}" for name in unknown)
        allowed = ", ".join("${" + name + "}" for name in sorted(PLACEHOLDERS))
        raise PatternError(f"unknown placeholder {names} (allowed: {allowed})")
    if "${" in _PLACEHOLDER.sub("", pattern):
        raise PatternError("a '${' is not closed with '}'")
    return pattern


def split_filename(original_filename: str) -> tuple[str, str]:
    """(file name without extension, extension with its period); a leading dot is not an extension."""
    base, ext = os.path.splitext(original_filename)
    return base, ext


def sanitize_filename(base: str) -> str:
    return _NOT_KEPT.sub("", base) or EMPTY_FILENAME


def expand_pattern(pattern: str, uuid: str, original_filename: str, effects: str = "") -> str:
    base, ext = split_filename(original_filename)
    values = {"uuid": uuid, "filename": sanitize_filename(base), "ext": ext, "effects": effects}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in _COMPOSITE:
            return _PLACEHOLDER.sub(substitute, _COMPOSITE[name])
        return values[name]

    return _PLACEHOLDER.sub(substitute, validate_pattern(pattern))


def predict_key(prefix: str, pattern: str, uuid: str, original_filename: str, effects: str = "") -> str:
    """The key Uploadcare gives the copy: the storage prefix and the expanded pattern joined as they are.

    A prefix meant as a folder ends in `/`. Which details Uploadcare really applies is partly unverified, so the
    copier uses this only when a 200 answer carries no `result`, and a miss ends as `verification_failed`.
    """
    return prefix + expand_pattern(pattern, uuid, original_filename, effects)
