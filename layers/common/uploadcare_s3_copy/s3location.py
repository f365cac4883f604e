"""`s3://bucket/key` URLs as Uploadcare returns them in `result`."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """Split `s3://<bucket>/<key>`; the key is kept byte for byte (spaces, unicode and `%` included)."""
        scheme, sep, rest = url.partition("://")
        if scheme != "s3" or not sep:
            raise ValueError(f"not an s3:// URL: {url!r}")
        bucket, slash, key = rest.partition("/")
        if not bucket or not slash or not key:
            raise ValueError(f"s3 URL without bucket or key: {url!r}")
        return cls(bucket=bucket, key=key)

    def candidate_keys(self) -> tuple[str, ...]:
        """Keys to look for: as given, then percent-decoded.

        Whether Uploadcare percent-encodes the key inside `result` is not documented, so both readings are tried.
        """
        decoded = unquote(self.key)
        return (self.key,) if decoded == self.key else (self.key, decoded)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"
