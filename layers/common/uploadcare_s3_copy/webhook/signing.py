"""Uploadcare webhook signatures, `X-Uc-Signature` (docs/uploadcare-protocol.md, "Webhook signature").

When a webhook has a signing secret, every delivery carries
    X-Uc-Signature: v1=<hex HMAC-SHA256(signing_secret, raw body bytes)>
The signature is checked over the raw bytes as received (never over re-serialised JSON) by comparing the WHOLE
header value in constant time. Uploadcare writes the hex digest in lowercase; since the whole value is compared, an
uppercase digest does not match (and is reported as malformed). There is no timestamp or nonce in the scheme:
replays are harmless because the copier is idempotent.
"""

from __future__ import annotations

import hashlib
import hmac
import re

HEADER = "x-uc-signature"
SCHEME_PREFIX = "v1="
# Exactly what Uploadcare sends: the v1 scheme and a lowercase SHA-256 hex digest.
_WELL_FORMED = re.compile(r"v1=[0-9a-f]{64}")


def sign(signing_secret: str, body: bytes) -> str:
    """The header value Uploadcare sends for `body` (used by the sample-event generator and the tests)."""
    digest = hmac.new(signing_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return SCHEME_PREFIX + digest


def is_well_formed(header: str) -> bool:
    """True when the value has the shape of a v1 signature; a value that fails this can match no secret."""
    return _WELL_FORMED.fullmatch(header) is not None


def verify(header: str | None, body: bytes, signing_secret: str) -> bool:
    """Constant-time comparison of the whole header value with the one `signing_secret` gives for `body`."""
    if not header or not signing_secret:
        return False
    expected = sign(signing_secret, body).encode("ascii")
    return hmac.compare_digest(header.encode("utf-8", errors="backslashreplace"), expected)
