"""A local Uploadcare REST API v0.7 emulator for the tests, the demo and the benchmarks. Never deployed.

It serves the endpoints this project uses (`POST /files/remote_copy/`, `GET /files/`, `GET /files/<uuid>/`,
`GET /project/`, `GET`/`POST /webhooks/`) over real HTTP and checks requests as strictly as Uploadcare documents
them (REST API reference, "Authentication" and the endpoint pages; summed up in docs/uploadcare-protocol.md):

* a route that does not exist, including a path without its trailing slash: 404 `{"detail": "Not found."}`;
* `Accept` other than `application/vnd.uploadcare-v0.7+json`: 406, the one answer sent as `application/json`;
* `Authorization: Uploadcare <public_key>:<signature>`, signature checked with the project's own
  `uploadcare_s3_copy.uploadcare.auth.request_signature`, and a `Date` (RFC 2822) at most 15 minutes off the
  emulator's clock, else 401; `Uploadcare.Simple` over plain HTTP: 400, as Uploadcare answers it.

A remote copy writes the file's deterministic bytes (`content(uuid)`) into the storage's bucket with boto3, so the
copy can be verified with `head_object` against the same moto server. Faults can be scripted per file, and
counters and a request log say what the client did.

Two ways to use it:

* in-process: `with UploadcareEmulator(storages=[Storage("mytarget", "bucket")]) as emulator: ...`;
* as a process (`PYTHONPATH=layers/common:.`):
  `python -m devkit.emulator --port 8765 --storage mytarget=bucket/prefix/ --aws-endpoint http://localhost:5000`
  prints its URL on the first line of stdout and serves until SIGTERM or SIGINT. It is then driven through the
  unsigned admin API under `/__emulator__/` (see `routes.RestApi._admin`).

Choices where Uploadcare's behaviour is undocumented (docs/uploadcare-protocol.md marks them open): `${effects}`
renders as the operations exactly as written in the CDN URL (`-/resize/200x/`); a webhook created without
`version` is stored with version `""` (such requests have been treated as older versions); `previous` links of
`GET /files/` are always null.

The package, by concern: `state` (what the project holds and the Python face the tests drive), `routes` (the HTTP
answers, REST and admin), `server` (the socket, `UploadcareEmulator`) and `__main__` (the process).
"""

from devkit.emulator.server import UploadcareEmulator
from devkit.emulator.state import (
    DEMO_PUBLIC_KEY,
    DEMO_SECRET_KEY,
    MAX_CONTENT_BYTES,
    CopyStats,
    EmulatedFile,
    Fault,
    RequestRecord,
    Storage,
    file_content,
    parse_source,
)

__all__ = [
    "DEMO_PUBLIC_KEY",
    "DEMO_SECRET_KEY",
    "MAX_CONTENT_BYTES",
    "CopyStats",
    "EmulatedFile",
    "Fault",
    "RequestRecord",
    "Storage",
    "UploadcareEmulator",
    "file_content",
    "parse_source",
]
