"""`make up` / `make drain` / `make down`: the README's "Try the command line" block runs as printed against a local
stack in the background (moto + the emulator on loopback), and `make down` leaves no process or port behind."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from devkit.servers import aws_env
from tests.conftest import ROOT

README_BLOCK = re.compile(r"## Try the command line on your machine\n.*?```sh\n(?P<block>.*?)```", re.DOTALL)


def readme_commands() -> list[str]:
    found = README_BLOCK.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert found, "README.md has its 'Try the command line on your machine' block"
    return [line.split("  #")[0].strip() for line in found.group("block").splitlines() if line.strip()]


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "local-stack"
    yield folder
    # Whatever happened, nothing started here outlives the test.
    subprocess.run(
        [sys.executable, "-m", "devkit.up", "down", "--state-dir", str(folder)],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )


def clean_env(state_dir: Path, tmp_path: Path) -> dict[str, str]:
    """A user's shell: no AWS settings of the test session, the state folder and a cache of the test's own."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    return {**env, "LOCAL_STACK_DIR": str(state_dir), "XDG_CACHE_HOME": str(tmp_path / "cache")}


def test_the_readme_block_runs_as_printed_and_make_down_leaves_nothing(state_dir: Path, tmp_path: Path) -> None:
    # Given the README's commands, the state folder moved into this test's temporary folder
    commands = readme_commands()
    assert commands[0] == "make up"
    assert commands[-1] == "make down"
    script = "\n".join(line.replace(".local-stack/", f"{state_dir}/") for line in commands)

    # When they run in one shell, one after another (stopping at the first failure)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", f"set -x\n{script}"],
        cwd=ROOT,
        env=clean_env(state_dir, tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    # Then every command succeeded, the copies were made and proved, and the audit says so
    assert done.returncode == 0, done.stdout + done.stderr
    assert "✓ Registered webhook #1" in done.stdout
    assert "All good." in done.stdout
    assert "Backfill finished: 4 files seen, 4 queued" in done.stdout
    assert "Copier: 1 batch, 4 records: 4 done, 0 given back." in done.stdout
    assert "4 of 4 files verified" in done.stdout
    assert "The dead-letter queue is empty" in done.stdout
    # and `make down` stopped both servers: their pids are gone, their ports closed, the state folder removed
    servers = re.findall(r"^  [^:]+:\s+http://(?:localhost|127\.0\.0\.1):(\d+)\S*\s+pid (\d+)$", done.stdout, re.M)
    ports, pids = [int(port) for port, _ in servers], [int(pid) for _, pid in servers]
    assert len(servers) == 3  # moto, the emulator, the webhook endpoint
    assert not any(alive(pid) for pid in pids)
    assert not any(listening(port) for port in ports)
    assert not state_dir.exists()


def up(state_dir: Path, tmp_path: Path, *action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devkit.up", *action, "--state-dir", str(state_dir)],
        cwd=ROOT,
        env=clean_env(state_dir, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_second_up_reuses_the_running_stack_and_invoke_running_targets_it(state_dir: Path, tmp_path: Path) -> None:
    # Given a stack that is up
    first = up(state_dir, tmp_path, "up")
    assert first.returncode == 0, first.stderr
    state = json.loads((state_dir / "state.json").read_text())

    # When `up` runs again, and the local runner invokes the webhook against the running stack
    second = up(state_dir, tmp_path, "up")
    event = "events/webhook-file-uploaded.json"
    invoked = subprocess.run(
        [sys.executable, "-m", "devkit.invoke", "WebhookFunction", "--running", "-e", event],
        cwd=ROOT,
        env=clean_env(state_dir, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    drained = up(state_dir, tmp_path, "drain")
    status = up(state_dir, tmp_path, "status")
    exports = up(state_dir, tmp_path, "env")

    # Then the same servers are kept, the webhook queued its request on that stack's queue, and drain copied it
    assert second.returncode == 0
    assert "Already up" in second.stdout
    assert json.loads((state_dir / "state.json").read_text())["moto_pid"] == state["moto_pid"]
    assert invoked.returncode == 0, invoked.stderr
    assert json.loads(invoked.stdout)["statusCode"] == 202
    assert "1 message on the copy queue" in invoked.stderr
    assert drained.returncode == 0, drained.stderr
    assert "Copier: 1 batch, 1 record: 1 done, 0 given back." in drained.stdout
    # and status and env say what runs and how to reach it
    assert status.returncode == 0
    assert status.stdout.count(" running") == 3
    assert exports.stdout == (state_dir / "env").read_text()
    assert f"export AWS_ENDPOINT_URL=http://localhost:{state['moto_port']}" in exports.stdout


def test_without_a_running_stack_drain_and_invoke_running_say_to_run_make_up(state_dir: Path, tmp_path: Path) -> None:
    drained = up(state_dir, tmp_path, "drain")
    status = up(state_dir, tmp_path, "status")
    down = up(state_dir, tmp_path, "down")

    assert status.returncode == 1
    assert status.stdout == "Nothing is up.\n"
    assert drained.returncode == 1
    assert drained.stderr.strip() == "drain: nothing is up: run `make up` first"
    assert down.returncode == 0
    assert "Nothing is up" in down.stdout


def test_an_upload_to_the_emulator_reaches_the_stacks_webhook_endpoint_and_make_drain_copies_it(
    state_dir: Path, tmp_path: Path
) -> None:
    # Given a stack that is up, its webhook registered at the emulator
    assert up(state_dir, tmp_path, "up").returncode == 0
    state = json.loads((state_dir / "state.json").read_text())
    env = {**clean_env(state_dir, tmp_path), **aws_env(state["aws_endpoint"])}
    registered = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "uploadcare-s3-copy"), "webhook", "register", "--stack", state["stack_name"]],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert registered.returncode == 0, registered.stderr

    # When a file is uploaded through the emulator's Upload API
    upload = ("hello.txt", b"hello", "text/plain")
    fields: dict[str, str | tuple[str, bytes, str]] = {
        "UPLOADCARE_PUB_KEY": "demopublickey",
        "UPLOADCARE_STORE": "1",
        "file": upload,
    }
    answer = urllib3.request("POST", f"{state['emulator_url']}base/", fields=fields, timeout=10.0)
    uuid = json.loads(answer.data)["file"]
    deliveries: list[dict[str, object]] = []
    for _ in range(100):
        counters = urllib3.request("GET", f"{state['emulator_url']}__emulator__/counters", timeout=10.0).json()
        deliveries = [d for d in counters["deliveries"] if d["uuid"] == uuid]
        if deliveries:
            break
        time.sleep(0.1)
    drained = up(state_dir, tmp_path, "drain")

    # Then the emulator delivered the signed webhook to the stack's endpoint, which queued it (202), and drain copied it
    assert answer.status == 200
    target = f"http://127.0.0.1:{state['gateway_port']}/webhooks/uploadcare"
    log = (state_dir / "webhook.log").read_text()
    assert deliveries == [{"uuid": uuid, "event": "file.uploaded", "target_url": target, "status": 202}], log
    assert "Copier: 1 batch, 1 record: 1 done, 0 given back." in drained.stdout


def readme_cli_examples() -> list[str]:
    """Every `uploadcare-s3-copy ...` command the README prints, inline or in a block, each once."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    inline = [" ".join(found.split()) for found in re.findall(r"`(?:\.venv/bin/)?(uploadcare-s3-copy [^`]+)`", text)]
    blocks = re.findall(r"^\s*(uploadcare-s3-copy [^#\n]+)", text, re.MULTILINE)
    return list(dict.fromkeys(command.strip() for command in [*inline, *blocks]))


def test_every_cli_example_in_the_readme_runs_as_printed_against_the_local_stack(
    state_dir: Path, tmp_path: Path
) -> None:
    # Given a local stack with its webhook registered, its files backfilled and copied (the README's first steps)
    assert up(state_dir, tmp_path, "up").returncode == 0
    state = json.loads((state_dir / "state.json").read_text())
    env = clean_env(state_dir, tmp_path)
    image = next(sample["uuid"] for sample in state["samples"] if sample["original_filename"].endswith(".jpg"))
    examples = readme_cli_examples()
    assert len(examples) >= 6

    def run(command: str) -> subprocess.CompletedProcess[str]:
        """In a shell that sourced the env file, as the README says."""
        line = command.replace("<uuid of an image>", image)
        script = f"source {shlex.quote(str(state_dir / 'env'))}\n{line}"
        return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False)

    for command in (f"uploadcare-s3-copy webhook register --stack {state['stack_name']}",
                    f"uploadcare-s3-copy backfill --from 2024-01-01 --stack {state['stack_name']}"):  # fmt: skip
        assert run(command).returncode == 0
    assert up(state_dir, tmp_path, "drain").returncode == 0

    # When each README example runs, exactly as printed (the one placeholder filled in)
    failed = {}
    for command in examples:
        done = run(command)
        if done.returncode != 0:
            failed[command] = done.stdout + done.stderr

    # Then every one of them succeeds
    assert failed == {}
