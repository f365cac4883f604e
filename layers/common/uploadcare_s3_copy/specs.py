"""Copy specs: the copies a deployment makes of each file (docs/design.md, "Copy specs").

`COPY_SPECS` is a JSON array of at most MAX_SPECS objects; unset, the one spec `original` is made from
`COPY_TARGET`, `TARGET_BUCKET`, `TARGET_PREFIX`, `COPY_PATTERN` and `MAKE_PUBLIC`. Parsed once per cold start into
frozen `CopySpec`s; every problem of the value is named in one `ConfigError`.

A spec with `effects` copies a processed version: the `remote_copy` source becomes `<uuid>/<effects>`, and since its
size is not known in advance its proof is an object with `ContentLength > 0`. A spec with `"pattern": null` sends
no `pattern` (the storage's own applies); its key cannot be predicted, so its proof needs Uploadcare's `result`.
`mime_types` limits a spec to some files (`image/*`, `application/pdf`); a spec with effects defaults to `image/*`,
since the CDN's operations apply to images: any other file is skipped for that spec (no call, no item), and the
reconciler and `audit` do not count it as missing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from uploadcare_s3_copy.copy_request import MAX_SPECS, SPEC_NAME_PATTERN
from uploadcare_s3_copy.ledger import DEFAULT_SPEC
from uploadcare_s3_copy.patterns import PatternError, predict_key, validate_pattern
from uploadcare_s3_copy.settings import BUCKET_NAME, EnvReader, parse_bool

DEFAULT_PATTERN = "${default}"
IMAGE_TYPES = ("image/*",)
# A CDN operation chain: `-/<operation>/<argument>/.../`, one or more, e.g. `-/resize/1200x/-/format/webp/`.
_EFFECTS = re.compile(r"\A(?:-/[a-z_]+/(?:[A-Za-z0-9_.,:%+~=]+(?:-[A-Za-z0-9_.,:%+~=]+)*/)*)+\Z")
_MIME_TYPE = re.compile(r"\A(?:\*/\*|[a-z0-9][a-z0-9.+-]*/(?:\*|[a-z0-9][a-z0-9.+-]*))\Z")
_TARGET = re.compile(r"\A[^\s/]{1,255}\Z")
_PREFIX = re.compile(r"\A[^*?]{0,512}\Z")  # no IAM wildcards; a folder prefix ends in `/`
_FIELDS = frozenset({"name", "target", "bucket", "prefix", "pattern", "effects", "make_public", "mime_types"})


@dataclass(frozen=True)
class CopySpec:
    name: str
    target: str  # the Uploadcare custom storage name
    bucket: str  # the S3 bucket behind it: a copy reported anywhere else is `unexpected_bucket`
    prefix: str = ""
    pattern: str | None = DEFAULT_PATTERN  # None: no `pattern` sent, the storage's own applies
    effects: str = ""  # CDN operations; empty: the original
    make_public: bool = False
    mime_types: tuple[str, ...] = ()  # empty: every file

    @property
    def processed(self) -> bool:
        return bool(self.effects)

    def source(self, uuid: str) -> str:
        """`remote_copy`'s `source`: the UUID, or `<uuid>/<effects>` for a processed version."""
        return f"{uuid}/{self.effects}" if self.effects else uuid

    def applies_to(self, mime_type: str) -> bool:
        """Whether this spec copies a file of `mime_type`. A file of unknown type is tried (Uploadcare decides)."""
        if not self.mime_types or not mime_type:
            return True
        kind = mime_type.split(";", 1)[0].strip().lower()
        major = kind.split("/", 1)[0]
        return any(wanted in ("*/*", kind, f"{major}/*") for wanted in self.mime_types)

    def idempotency_key(self, uuid: str) -> dict[str, str]:
        """What makes two copy requests the same copy (never the SQS message id, which changes per redelivery).
        For the `original` spec made from the single-copy variables it is what it was before specs existed, so an
        upgrade does not copy the files of the last 72 hours again."""
        return {"uuid": uuid, "target": self.target, "pattern": self.pattern or "", "effects": self.effects}

    def predicted_key(self, uuid: str, original_filename: str) -> str | None:
        """The key Uploadcare should give the copy, or None when the storage's own pattern applies."""
        if self.pattern is None:
            return None
        return predict_key(self.prefix, self.pattern, uuid, original_filename, self.effects)

    def describe(self) -> str:
        what = f"processed {self.effects}" if self.effects else "original"
        return f"{self.name}: {what} -> storage {self.target!r} (s3://{self.bucket}/{self.prefix})"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "bucket": self.bucket,
            "prefix": self.prefix,
            "pattern": self.pattern,
            "effects": self.effects,
            "make_public": self.make_public,
            "mime_types": list(self.mime_types),
        }


class CopySpecsError(ValueError):
    """`COPY_SPECS` is malformed; `problems` names each problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_copy_specs(raw: str) -> tuple[CopySpec, ...]:
    """The specs of a `COPY_SPECS` value; raises CopySpecsError naming every problem."""
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise CopySpecsError([f"COPY_SPECS is not JSON ({error.args[0] if error.args else error})"]) from error
    if not isinstance(value, list):
        raise CopySpecsError(["COPY_SPECS is not a JSON array of copy specs"])
    if not 1 <= len(value) <= MAX_SPECS:
        raise CopySpecsError([f"COPY_SPECS has {len(value)} copy specs; 1 to {MAX_SPECS} are allowed"])
    problems: list[str] = []
    specs = [_spec(item, index, problems) for index, item in enumerate(value)]
    parsed = [spec for spec in specs if spec is not None]
    _check_distinct(parsed, problems)
    if problems:
        raise CopySpecsError(problems)
    return tuple(parsed)


def _spec(item: Any, index: int, problems: list[str]) -> CopySpec | None:  # noqa: PLR0912 - one check per field
    where = f"COPY_SPECS[{index}]"
    if not isinstance(item, dict):
        problems.append(f"{where} is not a JSON object")
        return None
    found = len(problems)
    name = item.get("name")
    if isinstance(name, str) and SPEC_NAME_PATTERN.match(name):
        where = f"COPY_SPECS[{index}] ({name})"
    else:
        problems.append(f"{where}: name {name!r} is not a spec name (1-32 of a-z, 0-9 and -, not starting with -)")
    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        problems.append(f"{where}: unknown field {', '.join(unknown)} (known: {', '.join(sorted(_FIELDS))})")
    target = item.get("target")
    if not isinstance(target, str) or not _TARGET.match(target):
        problems.append(f"{where}: target {target!r} is not an Uploadcare custom storage name")
    bucket = item.get("bucket")
    if not isinstance(bucket, str) or not BUCKET_NAME.match(bucket):
        problems.append(f"{where}: bucket {bucket!r} is not an S3 bucket name")
    prefix = item.get("prefix", "")
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        problems.append(f"{where}: prefix {prefix!r} is not a key prefix (a string without * or ?)")
    pattern = item.get("pattern", DEFAULT_PATTERN)
    if pattern is not None and not isinstance(pattern, str):
        problems.append(f"{where}: pattern {pattern!r} is not a string or null")
    elif pattern is not None:
        try:
            validate_pattern(pattern)
        except PatternError as error:
            problems.append(f"{where}: pattern {pattern!r}: {error}")
    effects = item.get("effects", "")
    if isinstance(effects, str) and effects and not effects.endswith("/"):
        effects += "/"
    if not isinstance(effects, str) or (effects and not _EFFECTS.match(effects)):
        problems.append(
            f"{where}: effects {item.get('effects')!r} are not CDN operations (like -/resize/1200x/-/format/webp/)"
        )
    make_public = item.get("make_public", False)
    if not isinstance(make_public, bool):
        problems.append(f"{where}: make_public {make_public!r} is not true or false")
    mime_types = item.get("mime_types", list(IMAGE_TYPES) if effects else [])
    if not isinstance(mime_types, list) or not all(
        isinstance(kind, str) and _MIME_TYPE.match(kind) for kind in mime_types
    ):
        problems.append(f"{where}: mime_types {mime_types!r} is not a list of types like image/* or application/pdf")
    if len(problems) > found:
        return None
    return CopySpec(
        name=str(name),
        target=str(target),
        bucket=str(bucket),
        prefix=str(prefix),
        pattern=pattern,
        effects=str(effects),
        make_public=bool(make_public),
        mime_types=tuple(mime_types),
    )


def _check_distinct(specs: Iterable[CopySpec], problems: list[str]) -> None:
    names: set[str] = set()
    copies: dict[tuple[str, str, str], str] = {}
    for spec in specs:
        if spec.name in names:
            problems.append(f"COPY_SPECS names copy spec {spec.name!r} twice")
        names.add(spec.name)
        same = (spec.target, spec.pattern or "", spec.effects)
        if same in copies and copies[same] != spec.name:
            problems.append(
                f"COPY_SPECS: {copies[same]!r} and {spec.name!r} make the same copy (same target, pattern and effects)"
            )
        copies.setdefault(same, spec.name)


def read_copy_specs(read: EnvReader, *, single_required: bool = True) -> tuple[CopySpec, ...]:
    """The deployment's specs from an environment: `COPY_SPECS`, else the one `original` spec from the single-copy
    variables (required of the copier; a function that only needs the spec names passes `single_required=False`).
    Problems are added to `read`, which names them all at once."""
    raw = read.optional("COPY_SPECS", "")
    if raw:
        try:
            return parse_copy_specs(raw)
        except CopySpecsError as error:
            read.problems.extend(error.problems)
            return ()
    take = read.required if single_required else (lambda name: read.optional(name, ""))
    target, bucket = take("COPY_TARGET"), take("TARGET_BUCKET")
    read.check(not bucket or bool(BUCKET_NAME.match(bucket)), f"TARGET_BUCKET={bucket!r} is not an S3 bucket name")
    pattern = read.optional("COPY_PATTERN", DEFAULT_PATTERN) or DEFAULT_PATTERN
    try:
        validate_pattern(pattern)
    except PatternError as error:
        read.check(False, f"COPY_PATTERN: {error}")
    make_public = read.parsed("MAKE_PUBLIC", False, parse_bool, "true or false")
    prefix = read.optional("TARGET_PREFIX", "")
    return (CopySpec(DEFAULT_SPEC, target, bucket, prefix, pattern, "", make_public),)


def specs_by_name(specs: Iterable[CopySpec]) -> Mapping[str, CopySpec]:
    return {spec.name: spec for spec in specs}
