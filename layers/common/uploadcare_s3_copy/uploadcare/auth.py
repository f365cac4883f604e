"""The `Uploadcare` request-signing scheme of the REST API v0.7 (docs/uploadcare-protocol.md, "REST API auth").

    Authorization: Uploadcare <public_key>:<signature>
    signature      = hex(HMAC-SHA1(secret_key, METHOD \\n md5hex(body) \\n Content-Type \\n Date \\n URI))

The body is serialised once and the very bytes that are signed are sent. GET requests sign `application/json` and
the md5 of the empty body too. Every request carries the v0.7 `Accept` header.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

ACCEPT = "application/vnd.uploadcare-v0.7+json"
CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class Credentials:
    public_key: str
    secret_key: str = field(repr=False)


def string_to_sign(method: str, body: bytes, content_type: str, date: str, uri: str) -> str:
    return "\n".join([method.upper(), hashlib.md5(body, usedforsecurity=False).hexdigest(), content_type, date, uri])


def request_signature(secret_key: str, method: str, body: bytes, content_type: str, date: str, uri: str) -> str:
    """The hex signature of one REST request (not to be confused with a webhook's `X-Uc-Signature`)."""
    message = string_to_sign(method, body, content_type, date, uri).encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha1).hexdigest()
