"""`make up`, `make down`, `make drain`: a local stack that stays up between commands, for trying the ops CLI.

`python -m devkit.up up` starts a moto server, the Uploadcare emulator and a webhook endpoint (the webhook function
behind devkit.webhook_gateway, the stack's `WebhookUrl`) as background processes on 127.0.0.1, builds the stack's
resources on moto from template.yaml (devkit.local_resources), publishes them as the CloudFormation stack
`uploadcare-s3-copy` on moto (so `--stack uploadcare-s3-copy`, the README's stack name, reads them exactly as
against AWS), registers a few sample files in the emulator, and writes into the state folder (`.local-stack/`, or
$LOCAL_STACK_DIR):

* `env`: the `export` lines that point a shell at the servers (`source .local-stack/env`); with them, every
  `uploadcare-s3-copy` command of the README works as printed;
* `state.json`: ports, process ids, the stack's resources and the functions' environment;
* `moto.log`, `emulator.log`, `webhook.log`, `copier.log`: what the servers and the functions wrote.

`drain` runs the copier function over the copy queue once, as Lambda's SQS event source would, and says what it did;
`status` says what runs; `down` stops all three (SIGTERM, then SIGKILL) and removes the state folder. Nothing here
touches AWS: every process is told the moto endpoint and fake credentials.

The emulator's admin routes (add a file, mark one removed, inject a fault) work on the running emulator: see
`python -m devkit.up --help` and docs/local-development.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from devkit.emulator.routes import ADMIN_ROUTES
from devkit.emulator.state import DEMO_PUBLIC_KEY, DEMO_SECRET_KEY
from devkit.local_resources import LocalStack, StackSpec, create_stack, publish_stack
from devkit.make_events import PATH as WEBHOOK_PATH
from devkit.servers import aws_env, free_port, wait_until_ready
from uploadcare_s3_copy_cli.base import plural
from uploadcare_s3_copy_cli.queueing import queue_depths

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR_ENV = "LOCAL_STACK_DIR"
DEFAULT_STATE_DIR = ROOT / ".local-stack"
STACK_NAME = "uploadcare-s3-copy"  # the stack name of samconfig.toml and the README's examples
STORAGE = "local-storage"
PREFIX = "uploadcare/"
READY_SECONDS = 30.0
ADMIN = "__emulator__"

# A few files, uploaded in 2025 (the README's `audit --from 2025-01-01` finds them; all older than its 15 minutes).
SAMPLES = (
    ("harbour-at-dusk.jpg", 48_113, "2025-03-02T09:15:00Z"),
    ("quarterly report.pdf", 24_410, "2025-04-11T14:02:00Z"),
    ("voice-memo.m4a", 6_250, "2025-06-20T18:40:00Z"),
    ("board-minutes.docx", 3_220, "2025-09-05T08:00:00Z"),
)

ADMIN_HELP = f"""{ADMIN_ROUTES}

For example, after `source .local-stack/env` ($UPLOADCARE_EMULATOR_URL is the emulator's URL), an upload whose
file.uploaded webhook the emulator delivers to the stack's webhook endpoint (after `webhook register`):
  curl -s -F UPLOADCARE_PUB_KEY=demopublickey -F UPLOADCARE_STORE=1 -F file=@a.jpg "${{UPLOADCARE_EMULATOR_URL}}base/"
and the admin routes:
  curl -s -X POST "${{UPLOADCARE_EMULATOR_URL}}{ADMIN}/files" -d '{{"original_filename": "new.png", "size": 2048}}'
  curl -s -X POST "${{UPLOADCARE_EMULATOR_URL}}{ADMIN}/files/<uuid>/faults" -d '{{"faults": [{{"kind": "throttled"}}]}}'
  curl -s -X DELETE "${{UPLOADCARE_EMULATOR_URL}}{ADMIN}/files/<uuid>"
"""


class UpError(Exception):
    """A failure worth one line (never a traceback)."""


@dataclass(frozen=True)
class UpState:
    """What `up` started and built; saved as state.json."""

    moto_pid: int
    emulator_pid: int
    gateway_pid: int
    moto_port: int
    emulator_port: int
    gateway_port: int
    aws_endpoint: str
    emulator_url: str
    stack_name: str
    queue_url: str
    dlq_url: str
    bucket: str
    secret_id: str
    ledger_table: str
    environments: Mapping[str, Mapping[str, str]]
    handlers: Mapping[str, str]
    timeouts: Mapping[str, float]
    samples: list[dict[str, Any]]

    @property
    def pids(self) -> tuple[int, int, int]:
        return (self.moto_pid, self.emulator_pid, self.gateway_pid)

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}{WEBHOOK_PATH}"

    def local_stack(self) -> LocalStack:
        """The stack as devkit.local_resources describes one (for the local runner and the copier)."""
        return LocalStack(
            spec=StackSpec(
                name=self.stack_name,
                storage=STORAGE,
                prefix=PREFIX,
                api_url=self.emulator_url,
                public_key=DEMO_PUBLIC_KEY,
                secret_key=DEMO_SECRET_KEY,
            ),
            secret_id=self.secret_id,
            bucket=self.bucket,
            queue_url=self.queue_url,
            dlq_url=self.dlq_url,
            table=str(self.environments["CopierFunction"].get("IDEMPOTENCY_TABLE", "")),
            ledger_table=self.ledger_table,
            environments=self.environments,
            handlers=self.handlers,
            timeouts=self.timeouts,
        )


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ[STATE_DIR_ENV]) if environ.get(STATE_DIR_ENV) else DEFAULT_STATE_DIR


def load_state(folder: Path) -> UpState | None:
    try:
        data = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as error:
        raise UpError(f"{folder / 'state.json'} is not valid JSON ({error}); `make down` clears it") from error
    return UpState(**data)


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own child not reaped yet) has exited: /proc says Z.
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
        return status[0] != "Z"
    return True


def _command_line(pid: int) -> str:
    """The process's command line: /proc on Linux, `ps` elsewhere (macOS); "" when it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return ""  # Linux, and the process is gone
    except OSError:
        return ""
    done = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _start(argv: list[str], log: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """A server in its own session: it outlives this process (and `make`) until `down` stops it."""
    with log.open("ab") as sink:
        return subprocess.Popen(
            argv,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            cwd=ROOT,
            start_new_session=True,
        )


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    try:
        wait_until_ready(url, process, READY_SECONDS)
    except RuntimeError as error:
        raise UpError(f"{error}; see {log}") from error


def admin(emulator_url: str, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
    """One call to the emulator's admin API."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - a loopback URL built here
        f"{emulator_url}{ADMIN}/{path.lstrip('/')}", data=data, method=method
    )
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        return json.loads(answer.read() or b"null")


def env_lines(state: UpState) -> list[str]:
    """`export` lines for a shell: the servers, fake credentials, the stack name and the venv's CLI on the PATH."""
    values = {
        **aws_env(state.aws_endpoint),
        "UPLOADCARE_S3_COPY_STACK": state.stack_name,
        "UPLOADCARE_EMULATOR_URL": state.emulator_url,
    }
    lines = [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    lines.append("unset AWS_PROFILE")  # a profile's own credentials or region would win over these
    lines.append(f'export PATH={shlex.quote(str(ROOT / ".venv" / "bin"))}:"$PATH"')
    return lines


def up(folder: Path, out: Any = sys.stdout) -> UpState:
    existing = load_state(folder)
    if existing is not None:
        if all(is_running(pid) for pid in existing.pids):
            print(f"Already up (state in {folder}).", file=out)
            return existing
        stop(existing)  # a half-dead stack from before: start again from nothing
        _clear(folder)
    folder.mkdir(parents=True, exist_ok=True)
    moto_port, emulator_port, gateway_port = free_port(), free_port(), free_port()
    endpoint = f"http://localhost:{moto_port}"
    env = {**os.environ, **aws_env(endpoint), "PYTHONUNBUFFERED": "1"}  # the logs as they happen
    env.pop("AWS_PROFILE", None)
    moto_log, emulator_log = folder / "moto.log", folder / "emulator.log"
    moto = _start([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)], moto_log, env)
    emulator: subprocess.Popen[bytes] | None = None
    gateway: subprocess.Popen[bytes] | None = None
    try:
        _wait_ready(f"http://127.0.0.1:{moto_port}/moto-api/", moto, moto_log)
        bucket = f"{STACK_NAME}-copies"  # as create_stack names it
        emulator_env = {**env, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "common"), str(ROOT)])}
        emulator = _start(
            [
                sys.executable,
                "-m",
                "devkit.emulator",
                "--port",
                str(emulator_port),
                "--storage",
                f"{STORAGE}={bucket}/{PREFIX}",
                "--aws-endpoint",
                endpoint,
            ],
            emulator_log,
            emulator_env,
        )
        emulator_url = f"http://127.0.0.1:{emulator_port}/"
        _wait_ready(f"{emulator_url}{ADMIN}/", emulator, emulator_log)
        webhook_url = f"http://127.0.0.1:{gateway_port}{WEBHOOK_PATH}"
        built = _build(moto_port, emulator_port, endpoint, emulator_url, webhook_url)
        # The webhook function behind a local stand-in for API Gateway, with the stack's environment (state.json).
        gateway_log = folder / "webhook.log"
        state = UpState(moto_pid=moto.pid, emulator_pid=emulator.pid, gateway_pid=0, gateway_port=gateway_port, **built)
        _save(folder, state)
        gateway = _start(
            [sys.executable, "-m", "devkit.webhook_gateway", "--port", str(gateway_port), "--state-dir", str(folder)],
            gateway_log,
            emulator_env,
        )
        _wait_ready(webhook_url, gateway, gateway_log)
        state = replace(state, gateway_pid=gateway.pid)
        _save(folder, state)
    except BaseException:
        for process in (moto, emulator, gateway):
            if process is not None:
                _terminate(process.pid)
        raise
    return state


def _save(folder: Path, state: UpState) -> None:
    (folder / "state.json").write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
    (folder / "env").write_text("\n".join(env_lines(state)) + "\n", encoding="utf-8")


def _build(moto_port: int, emulator_port: int, endpoint: str, emulator_url: str, webhook_url: str) -> dict[str, Any]:
    """The stack on moto (published as a CloudFormation stack) and the sample files in the emulator."""
    with pointed_at(endpoint):
        stack = create_stack(
            StackSpec(
                name=STACK_NAME,
                public_key=DEMO_PUBLIC_KEY,
                secret_key=DEMO_SECRET_KEY,
                storage=STORAGE,
                prefix=PREFIX,
                api_url=emulator_url,
                log_level="INFO",
            )
        )
        publish_stack(stack, api_url=emulator_url, webhook_url=webhook_url)
    samples = []
    for name, size, uploaded in SAMPLES:
        info = admin(
            emulator_url, "POST", "files", {"original_filename": name, "size": size, "datetime_uploaded": uploaded}
        )
        samples.append({"uuid": info["uuid"], "original_filename": name, "size": size, "uploaded": uploaded})
    return {
        "moto_port": moto_port,
        "emulator_port": emulator_port,
        "aws_endpoint": endpoint,
        "emulator_url": emulator_url,
        "stack_name": STACK_NAME,
        "queue_url": stack.queue_url,
        "dlq_url": stack.dlq_url,
        "bucket": stack.bucket,
        "secret_id": stack.secret_id,
        "ledger_table": stack.ledger_table,
        "environments": {name: dict(values) for name, values in stack.environments.items()},
        "handlers": dict(stack.handlers),
        "timeouts": dict(stack.timeouts),
        "samples": samples,
    }


@contextlib.contextmanager
def pointed_at(endpoint: str, extra: Mapping[str, str] | None = None) -> Iterator[None]:
    """This process's AWS clients at the local moto server (and `extra` variables) for the block, then as before."""
    saved = dict(os.environ)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update({**(extra or {}), **aws_env(endpoint)})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _terminate(pid: int, grace: float = 5.0) -> None:
    """SIGTERM to the server's process group, SIGKILL after `grace` seconds; reaped when it is our child."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and is_running(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if is_running(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def stop(state: UpState) -> list[int]:
    """Stops the servers `state` names (only processes that are still ours); returns the pids stopped."""
    stopped = []
    markers = ((state.moto_pid, "moto.server"), (state.emulator_pid, "devkit.emulator"))
    for pid, marker in (*markers, (state.gateway_pid, "devkit.webhook_gateway")):
        if is_running(pid) and marker in _command_line(pid):
            _terminate(pid)
            stopped.append(pid)
    return stopped


def _clear(folder: Path) -> None:
    for name in ("state.json", "env", "moto.log", "emulator.log", "webhook.log", "copier.log"):
        (folder / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


def down(folder: Path, out: Any = sys.stdout) -> int:
    state = load_state(folder)
    if state is None:
        print(f"Nothing is up (no {folder / 'state.json'}).", file=out)
        _clear(folder)
        return 0
    stopped = stop(state)
    _clear(folder)
    which = ", ".join(str(pid) for pid in stopped) or "none were still running"
    print(f"Stopped moto, the Uploadcare emulator and the webhook endpoint (pids {which}); removed {folder}.", file=out)
    print("A shell that sourced its env file still points at them: open a new one.", file=out)
    return 0


def require_up(folder: Path) -> UpState:
    state = load_state(folder)
    if state is None:
        raise UpError("nothing is up: run `make up` first")
    dead = [pid for pid in state.pids if not is_running(pid)]
    if dead:
        raise UpError(f"the local stack is down (pid {', '.join(map(str, dead))} gone): `make down && make up`")
    return state


def drain_queue(folder: Path, out: Any = sys.stdout) -> int:
    """The copier over the copy queue once (every batch until the queue is empty), as the SQS event source would."""
    state = require_up(folder)
    stack = state.local_stack()
    log_path = folder / "copier.log"
    with pointed_at(state.aws_endpoint, stack.copier_env()), log_path.open("a", encoding="utf-8") as log:
        import boto3  # noqa: PLC0415 - after the environment points at moto

        from devkit.flow import LocalFlow, functions_output_to  # noqa: PLC0415
        from devkit.sqs_poller import drain  # noqa: PLC0415
        from uploadcare_s3_copy.observability import metrics  # noqa: PLC0415

        metrics.namespace = os.environ["POWERTOOLS_METRICS_NAMESPACE"]
        LocalFlow.reset_functions()
        import handle_copy  # noqa: PLC0415

        sqs = boto3.client("sqs")
        with functions_output_to(log):
            timeout = stack.timeouts.get("CopierFunction", 300.0)
            stats = drain(sqs, state.queue_url, handle_copy.lambda_handler, function_timeout=timeout)
        waiting = {url: queue_depths(sqs, url)[0] for url in (state.queue_url, state.dlq_url)}
    if not stats.received:
        print("The copy queue is empty: nothing to copy.", file=out)
    else:
        batches, records = plural(stats.batches, "batch", "batches"), plural(stats.received, "record")
        print(f"Copier: {batches}, {records}: {stats.deleted} done, {stats.given_back} given back.", file=out)
    print(
        f"Now {waiting[state.queue_url]} on the copy queue, {waiting[state.dlq_url]} in the dead-letter queue"
        f"{' (uploadcare-s3-copy dlq list)' if waiting[state.dlq_url] else ''}; the copier's log: {log_path}",
        file=out,
    )
    return 0


def print_up(state: UpState, folder: Path, out: Any = sys.stdout) -> None:
    env_file = folder / "env"
    shown = os.path.relpath(env_file) if env_file.is_relative_to(Path.cwd()) else str(env_file)
    print(f"Local stack {state.stack_name!r} is up:", file=out)
    print(f"  AWS (moto):          {state.aws_endpoint}   pid {state.moto_pid}", file=out)
    print(f"  Uploadcare emulator: {state.emulator_url}   pid {state.emulator_pid}", file=out)
    print(f"  webhook endpoint:    {state.webhook_url}   pid {state.gateway_pid}", file=out)
    print(f"  bucket s3://{state.bucket}/{PREFIX}, storage {STORAGE!r}, logs in {folder}", file=out)
    print("Sample files in the emulator (uploaded in 2025):", file=out)
    for sample in state.samples:
        print(f"  {sample['uuid']}  {sample['original_filename']} ({sample['size']:,} bytes)", file=out)
    print(f"\nPoint a shell at it, then use the CLI as the README shows:\n  source {shown}", file=out)
    print(f"  uploadcare-s3-copy doctor --stack {state.stack_name}", file=out)
    print(f"  uploadcare-s3-copy backfill --from 2025-01-01 --stack {state.stack_name}", file=out)
    print("  make drain        # the copier over the queue, once", file=out)
    print(f"  uploadcare-s3-copy audit --stack {state.stack_name} --from 2025-01-01 --check-objects", file=out)
    print("  make down         # stop it all", file=out)
    print(f"The export lines ({env_file}):", file=out)
    for line in env_lines(state):
        print(f"  {line}", file=out)


def status(folder: Path, out: Any = sys.stdout) -> int:
    state = load_state(folder)
    if state is None:
        print("Nothing is up.", file=out)
        return 1
    for name, pid, url in (
        ("AWS (moto)", state.moto_pid, state.aws_endpoint),
        ("Uploadcare emulator", state.emulator_pid, state.emulator_url),
        ("webhook endpoint", state.gateway_pid, state.webhook_url),
    ):
        print(f"  {name:<20} {url}  pid {pid}  {'running' if is_running(pid) else 'NOT running'}", file=out)
    return 0 if all(is_running(pid) for pid in state.pids) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.up",
        description=(__doc__ or "").split("\n\n")[0],
        epilog=ADMIN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "action",
        choices=("up", "down", "drain", "status", "env"),
        help="up: start and build; down: stop and clean up; drain: run the copier over the queue once; "
        "status: what runs; env: print the export lines",
    )
    parser.add_argument(
        "--state-dir", type=Path, help=f"where the state goes (default ${STATE_DIR_ENV}, else {DEFAULT_STATE_DIR})"
    )
    args = parser.parse_args(argv)
    folder = args.state_dir or state_dir()
    try:
        if args.action == "up":
            print_up(up(folder), folder)
            return 0
        if args.action == "down":
            return down(folder)
        if args.action == "drain":
            return drain_queue(folder)
        if args.action == "env":
            print("\n".join(env_lines(require_up(folder))))
            return 0
        return status(folder)
    except UpError as error:
        print(f"{args.action}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
