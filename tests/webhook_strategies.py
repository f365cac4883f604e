"""Hypothesis strategies for hostile webhook input, shared by the in-memory and the moto property tests.

`deliveries()` draws a body that "Uploadcare" signed (so only the body can be wrong) together with the answer the
webhook owes it, known by construction rather than recomputed from the code under test: a sample `file.uploaded`
payload with its fields replaced by valid or invalid values, duplicate JSON keys (the last one counts), numbers as
strings, deep nesting, invalid UTF-8, a BOM, padding past the size cap, any formatting, sent plain or base64.
`arbitrary_events()` draws requests of any shape from someone who does not know the signing secret.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.webhook_support import event_for, sample_payload
from uploadcare_s3_copy.source_changes import SOURCE_CHANGE_EVENTS
from uploadcare_s3_copy.webhook.signing import sign

DEEP = 100_000  # nesting past any JSON parser's recursion limit: must be refused, not crash
# More digits than Python parses into an int by default: the whole body is then not JSON (a ValueError, no crash).
HUGE_INT = "1" + "0" * 5000
# Characters that have broken JSON, logging and queue round trips elsewhere: lone surrogates, non-characters
# (U+FFFE/U+FFFF are refused by SQS), NUL and other controls, bidi overrides, a BOM, astral characters.
NASTY = ["\ud800", "\udfff", "\ufffe", "\uffff", "\x00", "\x1f", "\x7f", "\u202e", "\ufeff", "\U0001f4a9", '"', "\\"]
TEXT = st.lists(st.one_of(st.characters(), st.sampled_from(NASTY)), max_size=40).map("".join)
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=20,
)


@dataclass(frozen=True)
class Delivery:
    """A signed webhook body and what the webhook must answer to it."""

    raw: bytes
    base64: bool
    expect: int  # the HTTP status owed
    uuid: str | None = None  # when 202: the one copy request's file
    size: int | None = None
    queued_as: str | None = None  # when 202: the copy request's event
    why: str = ""

    def event(self, secret: str) -> dict[str, Any]:
        """The HTTP API event carrying this body, signed over its raw bytes with `secret`."""
        event = event_for(b"", secret=None, base64_encoded=self.base64)
        if self.base64:
            event["body"] = base64.b64encode(self.raw).decode("ascii")
        else:  # bytes that are not UTF-8 can only reach a text body as lone surrogates
            event["body"] = self.raw.decode("utf-8", errors="surrogateescape")
        event["headers"]["x-uc-signature"] = sign(secret, self.raw)
        return event


def _broken_uuid(draw: st.DrawFn, good: str) -> Any:
    return draw(st.sampled_from([good.upper(), good + "~2", good + "\n", " " + good, good.replace("-", ""), 42, None]))


def _broken_size(draw: st.DrawFn) -> tuple[Any, str | None]:
    """(value, raw JSON text to write instead of json.dumps(value))."""
    kind = draw(st.sampled_from(["huge", "negative", "string", "float", "bool", "null", "inf"]))
    if kind == "huge":
        return None, HUGE_INT
    if kind == "inf":
        return None, "1e400"
    if kind == "negative":
        return draw(st.integers(max_value=-1)), None
    if kind == "string":  # a number as a string
        return str(draw(st.integers(0, 10**9))), None
    if kind == "float":
        return draw(st.integers(0, 10**6)) + 0.5, None
    return {"bool": True, "null": None}[kind], None


@st.composite
def file_objects(draw: st.DrawFn, broken: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """A webhook `data` object (one field made unusable when `broken`), and raw JSON for fields json.dumps cannot
    write."""
    data: dict[str, Any] = copy.deepcopy(sample_payload()["data"])
    raw: dict[str, str] = {}
    data["uuid"] = str(draw(st.uuids()))
    data["size"] = draw(st.integers(0, 10**15))
    for name in ("original_filename", "mime_type", "original_file_url"):
        data[name] = draw(st.one_of(TEXT, TEXT, st.none()))
    if draw(st.booleans()):
        data["metadata"] = draw(JSON_VALUE)  # anything at all where nobody looks
    if draw(st.booleans()):
        del data["mime_type"]  # optional
    if not broken:
        return data, raw
    what = draw(st.sampled_from(["uuid", "size", "text", "missing uuid", "missing size"]))
    if what == "uuid":
        data["uuid"] = _broken_uuid(draw, data["uuid"])
    elif what == "size":
        data["size"], size_raw = _broken_size(draw)
        if size_raw is not None:
            raw["size"] = size_raw
    elif what == "text":
        data[draw(st.sampled_from(["original_filename", "mime_type", "original_file_url"]))] = draw(
            st.sampled_from([7, ["a"], {"b": 1}, True])
        )
    else:
        del data[what.removeprefix("missing ")]
    return data, raw


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _dumps(value: Any, ascii_only: bool) -> str:
    """JSON as a serialiser writing UTF-8 would: lone surrogates (not encodable) escaped even when not ASCII-only."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    return _LONE_SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def _object_text(items: list[tuple[str, Any | str]], raw_keys: frozenset[str], style: str) -> str:
    """A JSON object written from (key, value) pairs in order, keys repeated as given; values named in `raw_keys`
    are already JSON text."""
    colon, comma = {"compact": (":", ","), "spaced": (": ", ", "), "lines": (" : ", ",\n  ")}[style]
    ascii_only = style == "spaced"
    parts = [
        _dumps(key, ascii_only) + colon + (value if key in raw_keys else _dumps(value, ascii_only))
        for key, value in items
    ]
    return "{" + comma.join(parts) + "}"


def _data_text(data: dict[str, Any], raw: dict[str, str], style: str) -> str:
    items = [(key, raw.get(key, value)) for key, value in data.items()]
    return _object_text(items, frozenset(raw), style)


@st.composite
def deliveries(draw: st.DrawFn, max_body_bytes: int, *, valid_only: bool = False) -> Delivery:
    """A signed body and its answer; `valid_only`: always a usable `file.uploaded` (owed 202)."""
    payload = sample_payload()
    style = draw(st.sampled_from(["compact", "spaced", "lines"]))
    data_ok = valid_only or draw(st.integers(0, 3)) > 0
    data, raw = draw(file_objects(broken=not data_ok))
    event_name = "file.uploaded"
    if not valid_only and draw(st.integers(0, 4)) == 0:
        event_name = draw(
            st.sampled_from(["file.stored", "file.deleted", "file.infected", "", "x" * 200, "FILE.UPLOADED"])
        )
    payload["hook"]["event"] = event_name
    hook_ok = bool(event_name)
    if not valid_only and draw(st.integers(0, 19)) == 0:
        payload["hook"] = draw(st.sampled_from([None, "file.uploaded", {"event": 1}, {}, []]))
        hook_ok = False
    duplicate = draw(st.sampled_from([None, None, "decoy first", "decoy last"]))
    if valid_only and duplicate == "decoy last":
        duplicate = "decoy first"
    decoy_ok = draw(st.booleans())
    decoy, decoy_raw = draw(file_objects(broken=not decoy_ok))
    decoy_raw = {} if valid_only else decoy_raw  # a decoy may be unusable, but a valid body must stay JSON
    data_entries = [_data_text(data, raw, style)]
    effective, effective_ok, effective_raw = data, data_ok, raw
    if duplicate == "decoy first":
        data_entries.insert(0, _data_text(decoy, decoy_raw, style))
    elif duplicate == "decoy last":
        data_entries.append(_data_text(decoy, decoy_raw, style))
        effective, effective_ok, effective_raw = decoy, decoy_ok, decoy_raw
    if draw(st.booleans()):
        payload["initiator"] = draw(JSON_VALUE)  # derived-file detection must cope with any shape
    # The other members in any order, the `data` members among them in their own order (the last one counts)
    items: list[tuple[str, Any]] = draw(st.permutations([(k, v) for k, v in payload.items() if k != "data"]))
    slots = sorted(draw(st.lists(st.integers(0, len(items)), min_size=len(data_entries), max_size=len(data_entries))))
    for offset, (slot, entry) in enumerate(zip(slots, data_entries, strict=True)):
        items.insert(slot + offset, ("data", entry))
    text = _object_text(items, frozenset({"data"}), style)

    # A deletion or an infection needs no size (one missing or null is 0); the one broken field may be that.
    source_change = event_name in SOURCE_CHANGE_EVENTS
    sizeless = "size" not in effective_raw and effective.get("size") is None
    effective_ok = effective_ok or (source_change and sizeless)
    expect = 202 if effective_ok else 400
    if hook_ok and event_name not in ("file.uploaded", *SOURCE_CHANGE_EVENTS):
        expect = 200  # other events are ignored before the file is looked at
    if not hook_ok:
        expect = 400
    if HUGE_INT in text:  # no JSON parser here takes it: refused whatever the event
        expect = 400
    wrappings = ["none"] * 8 + ["deep", "array", "bom", "not utf-8", "truncated", "padded", "padded"]
    wrapping = draw(st.sampled_from(["none", "padded"] if valid_only else wrappings))
    body, refused = _wrapped(draw, text.encode("utf-8"), wrapping, max_body_bytes, valid_only)
    if refused:
        expect = 400
    if len(body) > max_body_bytes:
        expect = 413
    return Delivery(
        raw=body,
        base64=draw(st.booleans()),
        expect=expect,
        uuid=effective.get("uuid") if expect == 202 else None,
        size=(effective.get("size") or 0) if expect == 202 else None,
        queued_as=event_name if expect == 202 else None,
        why=f"{style}, data {'ok' if effective_ok else 'bad'}, duplicate {duplicate}, {wrapping}, event {event_name!r}",
    )


def _wrapped(draw: st.DrawFn, body: bytes, wrapping: str, max_body_bytes: int, valid_only: bool) -> tuple[bytes, bool]:
    """The body as sent after `wrapping`, and whether that alone makes it a 400."""
    if wrapping == "deep":
        return b'{"nested": ' + b"[" * DEEP + b"]" * DEEP + b", " + body[1:], True
    if wrapping == "array":
        return b"[" + body + b"]", True
    if wrapping == "bom":
        return b"\xef\xbb\xbf" + body, True
    if wrapping == "not utf-8":
        at = draw(st.integers(0, len(body)))
        invalid = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]))
        return body[:at] + invalid + body[at:], True
    if wrapping == "truncated":
        return body[: draw(st.integers(0, len(body) - 1))], True
    if wrapping == "padded":  # whitespace is valid JSON: only the size decides
        room = max_body_bytes - len(body)
        return body + b" " * draw(st.sampled_from([room] if valid_only else [room, room + 1])), False
    return body, False


SIGNATURE_LIKE = st.one_of(
    TEXT,
    st.binary(min_size=32, max_size=32).map(lambda b: "v1=" + b.hex()),
    st.binary(min_size=32, max_size=32).map(lambda b: "v1=" + b.hex().upper()),
    st.just(""),
)
HEADER_NAMES = st.sampled_from(["x-uc-signature", "X-Uc-Signature", "X-UC-SIGNATURE", "content-type", "x-other"])


@st.composite
def arbitrary_events(draw: st.DrawFn) -> dict[str, Any]:
    """A request of any shape, from someone without the signing secret."""
    headers: Any = draw(
        st.one_of(
            st.dictionaries(st.one_of(HEADER_NAMES, TEXT), st.one_of(SIGNATURE_LIKE, st.integers(), st.none())),
            st.none(),
            st.lists(st.tuples(HEADER_NAMES, SIGNATURE_LIKE)),
            TEXT,
        )
    )
    body: Any = draw(
        st.one_of(
            TEXT,
            st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
            st.builds(json.dumps, st.just(sample_payload())),
            st.none(),
            st.integers(),
            JSON_VALUE,
        )
    )
    event: dict[str, Any] = {
        "version": "2.0",
        "headers": headers,
        "body": body,
        "isBase64Encoded": draw(st.one_of(st.booleans(), st.none(), TEXT)),
    }
    method = draw(st.sampled_from(["POST", "POST", "post", "GET", "PUT", "", None]))
    if draw(st.integers(0, 9)):
        event["requestContext"] = {"http": {"method": method, "path": "/webhooks/uploadcare"}}
    return event


@st.composite
def tampered_events(draw: st.DrawFn) -> dict[str, Any]:
    """The signed sample upload with its signature or its body changed in one way that must break the match."""
    changed = event_for(sample_payload())
    value: str = changed["headers"]["x-uc-signature"]
    how = draw(st.sampled_from(["flip", "upper", "space", "no scheme", "other scheme", "twice", "body", "truncate"]))
    if how == "flip":
        at = draw(st.integers(3, len(value) - 1))
        changed["headers"]["x-uc-signature"] = value[:at] + ("0" if value[at] != "0" else "1") + value[at + 1 :]
    elif how == "upper":
        changed["headers"]["x-uc-signature"] = "v1=" + value[3:].upper()
        if changed["headers"]["x-uc-signature"] == value:  # all digits: nothing to upper-case
            changed["headers"]["x-uc-signature"] = value + "0"
    elif how == "space":
        changed["headers"]["x-uc-signature"] = draw(st.sampled_from([" " + value, value + " ", value + "\n"]))
    elif how == "no scheme":
        changed["headers"]["x-uc-signature"] = value[3:]
    elif how == "other scheme":
        changed["headers"]["x-uc-signature"] = "v2=" + value[3:]
    elif how == "twice":
        changed["headers"]["x-uc-signature"] = value + "," + value
    elif how == "body":
        changed["body"] = changed["body"] + " "
    else:
        changed["headers"]["x-uc-signature"] = value[: draw(st.integers(0, len(value) - 1))]
    return changed
