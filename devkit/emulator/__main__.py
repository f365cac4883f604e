"""`python -m devkit.emulator`: the emulator as a process (see the package's docstring)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

import devkit.emulator
from devkit.emulator.routes import ADMIN_ROUTES
from devkit.emulator.server import UploadcareEmulator
from devkit.emulator.state import DEMO_PUBLIC_KEY, DEMO_SECRET_KEY, Storage

# ---------------------------------------------------------------------------------------------------------------
# As a process


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.emulator",
        description=(devkit.emulator.__doc__ or "").split("\n")[0],
        epilog=ADMIN_ROUTES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (a Docker bridge address works too)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--public-key", default=DEMO_PUBLIC_KEY)
    parser.add_argument(
        "--secret-key",
        default=os.environ.get("EMULATOR_SECRET_KEY", DEMO_SECRET_KEY),
        help="default: $EMULATOR_SECRET_KEY, else demosecretkey",
    )
    parser.add_argument(
        "--storage", action="append", default=[], type=Storage.parse, help="NAME=BUCKET[/PREFIX], repeatable"
    )
    parser.add_argument("--aws-endpoint", default=os.environ.get("AWS_ENDPOINT_URL"), help="S3 endpoint (moto)")
    parser.add_argument("--already-exists-with-result", action="store_true")
    parser.add_argument("--copy-delay", type=float, default=0.0, help="seconds every remote copy takes")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    if not args.aws_endpoint:
        parser.error("--aws-endpoint (or AWS_ENDPOINT_URL) is required: the emulator writes copies to S3 there")
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(name, value)  # moto accepts anything; boto3 needs something
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emulator = UploadcareEmulator(
        public_key=args.public_key,
        secret_key=args.secret_key,
        storages=args.storage,
        aws_endpoint=args.aws_endpoint,
        host=args.host,
        port=args.port,
        already_exists_with_result=args.already_exists_with_result,
        copy_delay=args.copy_delay,
        verbose=args.verbose,
    )
    with emulator:
        print(emulator.url, flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
