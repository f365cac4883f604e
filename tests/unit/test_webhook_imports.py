"""Cold start is part of the product: importing the webhook handler reads no configuration and loads nothing heavy
that it does not use (bench/webhook_cold_warm.py measures the time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench.webhook_cold_warm import PYTHONPATH, UNWANTED

CHECK = """
import json, sys
import handle_webhook
print(json.dumps(sorted(name for name in sys.argv[1].split(",") if name in sys.modules)))
"""


def test_the_handler_imports_without_configuration_and_without_unwanted_modules() -> None:
    # Given an environment with none of the function's settings
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": PYTHONPATH, "AWS_DEFAULT_REGION": "us-east-1"}

    # When a fresh interpreter imports the handler
    done = subprocess.run(
        [sys.executable, "-c", CHECK, ",".join(UNWANTED)], env=env, capture_output=True, text=True, check=False
    )

    # Then the import succeeds (settings are read on first use) and none of the unwanted modules was loaded
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    assert "uploadcare_s3_copy.uploadcare" in UNWANTED
