"""What `make e2e` would run against AWS (devkit/e2e.py's AwsPlatform), checked with a stand-in `sam` that records
its arguments: the build, then a non-interactive deploy of the throwaway stack with its parameters and region."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from devkit.e2e import AwsPlatform, Settings


def recording_sam(folder: Path) -> tuple[Path, Path]:
    log = folder / "calls.jsonl"
    sam = folder / "sam"
    sam.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps([sys.argv[1:], os.environ.get('SAM_CLI_TELEMETRY')]) + '\\n')\n"
    )
    sam.chmod(sam.stat().st_mode | stat.S_IEXEC)
    return sam, log


def test_deploy_builds_then_deploys_the_stack_without_prompts(tmp_path: Path) -> None:
    sam, log = recording_sam(tmp_path)
    settings = Settings("pub", "sec", "e2e-storage", "acme-e2e", prefix="", region="eu-west-1")

    AwsPlatform("eu-west-1", sam=sam).deploy("uploadcare-s3-copy-e2e-abc123", "the-secret", settings)

    (build, build_telemetry), (deploy, deploy_telemetry) = [json.loads(line) for line in log.read_text().splitlines()]
    assert build[0] == "build"
    assert deploy[:1] == ["deploy"]
    assert deploy[deploy.index("--stack-name") + 1] == "uploadcare-s3-copy-e2e-abc123"
    assert deploy[deploy.index("--region") + 1] == "eu-west-1"
    assert {"--resolve-s3", "--no-confirm-changeset", "--no-fail-on-empty-changeset"} <= set(deploy)
    assert deploy[deploy.index("--capabilities") + 1] == "CAPABILITY_IAM"
    overrides = deploy[deploy.index("--parameter-overrides") + 1 :]
    assert overrides == [
        "UploadcareSecretId=the-secret",
        "UploadcareStorageName=e2e-storage",
        "TargetBucketName=acme-e2e",
    ]  # an empty prefix is left to the template's default
    assert build_telemetry == deploy_telemetry == "0"
