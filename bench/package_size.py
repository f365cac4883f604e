"""Sizes of what `sam build` produces for deployment: each function's code and the common layer.

Read from `.aws-sam/build` (the Makefile's `make sam-build` output); built first when absent. The zipped size is
what a deployment uploads (deflate, as `sam deploy` zips a folder); the unzipped size is what Lambda's 250 MB limit
on a function plus its layers counts.
"""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".aws-sam" / "build"
ARTIFACTS = ("WebhookFunction", "CopierFunction", "CommonLayer")


def folder_sizes(folder: Path) -> dict[str, int]:
    """Files, bytes unzipped and bytes zipped (deflate) of everything under `folder`."""
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(folder))
    return {"files": len(files), "bytes": sum(path.stat().st_size for path in files), "zipped": buffer.tell()}


def package_sizes(build: Path = BUILD, *, build_if_missing: bool = True) -> dict[str, Any]:
    missing = [name for name in ARTIFACTS if not (build / name).is_dir()]
    built_now = False
    if missing and build_if_missing:
        print(f"bench: {', '.join(missing)} not in {build}; running `make sam-build` ...", flush=True)
        subprocess.run(["make", "sam-build"], cwd=ROOT, check=True)  # noqa: S607 - the project's own Makefile
        built_now = True
    sizes: dict[str, Any] = {name: folder_sizes(build / name) for name in ARTIFACTS if (build / name).is_dir()}
    return {"build_dir": str(build.relative_to(ROOT)), "built_now": built_now, "artifacts": sizes}
