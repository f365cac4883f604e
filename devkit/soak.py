"""Fault soak: N files through BOTH handlers on loopback, with transient faults, duplicates, rotation and bad files.

`python -m devkit.soak --files 1000` (or `make soak`) runs it at full size and prints a summary table; the test
suite runs a reduced version (tests/integration/test_soak.py). Everything random comes from one seeded
`random.Random`, and the seed is printed, so a failing run can be replayed exactly with `--seed`.

What it does, on a moto server and the Uploadcare emulator (devkit/flow.py wires them from template.yaml):
* registers N files: ~1 % whose copy comes out one byte too long (must end `verification_failed`), a few over
  5 GB (must end `too_large`, with no Uploadcare call), the rest good;
* scripts transient faults on ~20 % of them, one or two each: 429 with `Retry-After` 0 or 1 s, 5xx (500, 502,
  503, 504), `File is not ready yet.`, and answers slower than the copier's read timeout (the copier runs with a
  short Lambda timeout, so its deadline-bound read gives up; the emulator copies anyway, later, as Uploadcare
  would: the retry must then find the file already there);
* delivers every file's signed `file.uploaded` webhook through `handle_webhook.lambda_handler`, shuffled (out of
  upload order), ~5 % of them twice, while the copier runs over the queue between chunks of deliveries as Lambda's
  SQS event source would (`devkit.sqs_poller`), so duplicates meet copies in progress and copies already done;
* rotates the Uploadcare REST secret key (in the emulator and in Secrets Manager) a third of the way through, and
  the webhook signing secret (in Secrets Manager first, then in what "Uploadcare" signs with) two thirds of the
  way, as docs/deploy.md says to;
* models Uploadcare's own webhook retries: a delivery answered with anything but 2xx is sent again later;
* with `--lost-webhooks`, never delivers the webhooks of ~10 % of the good files; once the queue has settled, one
  scheduled reconciler run must find them in Uploadcare's file list and queue them, and `uploadcare-s3-copy audit`
  gives the figure ("N of M files verified");
* with `--aws-faults`, also fails AWS under both functions (devkit/aws_faults.py, a proxy in front of moto that the
  handlers' boto3 clients use as their endpoint): for ~10 % of the files one chosen call of theirs is throttled,
  answered 5xx or slowed past the read timeout (the idempotency claim, its save after a verified copy, its delete
  after a permanent failure, the ledger's proof, the verifying head_object, the webhook's enqueue, the copier's
  dead-letter send), and Secrets Manager fails at the REST key rotation. The copier then runs as Lambda's event
  source would: records it gives back keep the visibility it set (back-off, in-progress windows), so every wait is
  served on its real schedule.

Then it checks, per file: every good one verified in S3 (right key, right size) with exactly one successful remote
copy (`emulator.copies(uuid) == 1`) and never parked; every bad one in the DLQ with its `reason` (once per accepted
delivery); the copy queue empty; verified + dead-lettered == total. The summary says, per fault kind, how many files
met it and how they ended.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import random
import sys
import time
import uuid as uuidlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from devkit import ROOT, aws_faults
from devkit.aws_faults import AwsFaultProxy, Call, Rule
from devkit.emulator import EmulatedFile, Fault
from devkit.flow import LocalFlow
from devkit.servers import aws_env, moto_server
from devkit.sqs_poller import PollStats, queue_name
from uploadcare_s3_copy.copier.app import IDEMPOTENCY_KEY_PREFIX
from uploadcare_s3_copy.copier.rules import (
    AFTER_COPY_SECONDS,
    AWS_ATTEMPTS,
    AWS_READ_SECONDS,
    SAFETY_MARGIN_SECONDS,
)
from uploadcare_s3_copy.copier.settings import load_copier_settings
from uploadcare_s3_copy.copy_request import CopyRequest
from uploadcare_s3_copy.webhook.adapters import SQS_CLIENT_CONFIG as WEBHOOK_SQS_CONFIG

DEFAULT_SEED = 20261125
FULL_SIZE = 1000
LOST_RATE = 0.10  # --lost-webhooks: good files whose webhook never comes
TOO_LARGE_BYTES = 5 * 1024**3 + 1
# The copier's Lambda timeout in the soak. The copier bounds a remote copy by the invocation's deadline minus a safety
# margin and the room kept for the calls after it (copier/rules.py), so this timeout leaves a remote copy about 3.5 s:
# short enough that "slow" answers time out without making the soak slow, long enough that a loaded machine still
# starts its calls (it needs 2 s to start one).
FUNCTION_TIMEOUT_SECONDS = SAFETY_MARGIN_SECONDS + AFTER_COPY_SECONDS + 3.5
# How long a "slow" remote copy takes before it copies anyway: far longer than the read timeout above, so the retry
# has long finished (and copied) when the late copy finds the object there and answers 200.
SLOW_SECONDS = 30.0
FAULT_LABELS = {
    "throttled": "429 Too Many Requests (Retry-After 0 or 1 s)",
    "server_error": "5xx (500, 502, 503, 504)",
    "not_ready": "400 File is not ready yet.",
    "slow": "slower than the read timeout (the copier gives up)",
}
# AWS faults (`--aws-faults`): one per chosen file, met by that file's own call (the rule matches its UUID, its
# queue message or its idempotency record). A fault meets every attempt of the call (the copier's clients try twice,
# the webhook's SendMessage twice), so the code sees the failure botocore could not retry away.
AWS_FAULT_LABELS = {
    "claim_failed": "DynamoDB PutItem throttled (idempotency claim, before the copy)",
    "save_failed": "DynamoDB UpdateItem throttled (idempotency save, after a verified copy)",
    "ledger_failed": "DynamoDB PutItem 500 (the copy ledger's proof, after a verified copy)",
    "head_error": "S3 HeadObject 500 (the verification after the copy)",
    "head_slow": "S3 HeadObject slower than the read timeout",
    "enqueue_failed": "SQS SendMessage 503 (webhook to the copy queue)",
    "park_failed": "SQS SendMessage 503 (copier to the DLQ)",
    "delete_failed": "DynamoDB DeleteItem 500 (idempotency record after a permanent failure)",
}
GOOD_FILE_AWS_FAULTS = ("claim_failed", "save_failed", "ledger_failed", "head_error", "head_slow", "enqueue_failed")
BAD_FILE_AWS_FAULTS = ("park_failed", "delete_failed", "enqueue_failed")
# How long the run may wait at the end for records the copier gave back (a back-off, an in-progress window).
SETTLE_SECONDS = 600.0
NOT_DEAD_LETTERED = frozenset({"verified", "wrong_size", "queued", "lost"})  # LocalFlow outcome states
FILENAMES = (
    "photo.jpg",
    "Übersicht 2024.pdf",
    "clip (1).mp4",
    "notes",
    "a b c.TXT",
    "Fjällräven \u2013 sommar.png",
    "().png",
    "archive.tar.gz",
)


@dataclass(frozen=True)
class SoakConfig:
    files: int = FULL_SIZE
    seed: int = DEFAULT_SEED
    fault_rate: float = 0.20  # files with one or two scripted transient faults
    duplicate_rate: float = 0.05  # files whose webhook is delivered twice
    wrong_size_rate: float = 0.01  # files whose copy comes out with the wrong size
    too_large: int = 3  # files over 5 GB
    chunk: int = 50  # webhook deliveries between two runs of the copier over the queue
    function_timeout: float = FUNCTION_TIMEOUT_SECONDS
    slow_seconds: float = SLOW_SECONDS
    rotate: bool = True  # rotate the REST secret key, then the signing secret, mid-run
    aws_faults: bool = False  # fail AWS calls too (needs the fault proxy: `run_soak(..., proxy=...)`)
    aws_fault_rate: float = 0.10  # good files with one AWS fault
    bad_aws_fault_rate: float = 0.5  # bad files (wrong size, over 5 GB) with one: there are few of them
    lost_rate: float = 0.0  # good files whose webhook is never delivered (the reconciler must find them)


@dataclass
class SoakFile:
    file: EmulatedFile
    expect: str  # "verified", "verification_failed" or "too_large"
    faults: tuple[Fault, ...] = ()
    deliveries: int = 0  # webhook deliveries answered 2xx
    end: str = "lost"  # where it ended: verified | <DLQ reason> | wrong_size | lost
    copies: int = 0  # the emulator's successful (201) remote copies of it
    calls: int = 0  # remote_copy requests naming it
    aws_fault: str = ""  # a key of AWS_FAULT_LABELS, or ""
    lost: bool = False  # its webhook is never delivered
    aws_rule: Rule | None = None  # the proxy's rule for it (its `hits`: how many calls met it)

    @property
    def met_aws_fault(self) -> bool:
        return self.aws_rule is not None and self.aws_rule.hits > 0


@dataclass
class SoakResult:
    config: SoakConfig
    files: list[SoakFile]
    statuses: Counter[int] = field(default_factory=Counter)  # webhook answers, retries included
    uploadcare_retries: int = 0  # deliveries sent again because the webhook answered non-2xx
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    leftover: int = 0
    poll: PollStats = field(default_factory=PollStats)
    uploadcare_answers: Counter[int] = field(default_factory=Counter)
    faults_left: Counter[str] = field(default_factory=Counter)  # scripted faults never reached, by kind
    secrets_faulted: int = 0  # Secrets Manager calls failed by the proxy (--aws-faults)
    aws_calls: Counter[str] = field(default_factory=Counter)  # every AWS call the proxy saw, by operation
    verified_parked: list[str] = field(default_factory=list)  # UUIDs in the DLQ whose copy is in S3, right size
    reconcile: dict[str, Any] = field(default_factory=dict)  # the reconciler run's summary (--lost-webhooks)
    audit: dict[str, Any] = field(default_factory=dict)  # `audit --json` after it
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def verified(self) -> int:
        return sum(f.end == "verified" for f in self.files)

    @property
    def dead_lettered(self) -> int:
        return sum(f.end not in NOT_DEAD_LETTERED for f in self.files)

    def faults_injected(self) -> Counter[str]:
        return Counter(fault.kind for f in self.files for fault in f.faults)


def plan_files(config: SoakConfig, rng: random.Random, flow: LocalFlow) -> list[SoakFile]:
    """Registers the files in the emulator and scripts their faults."""
    wrong_size = max(1, round(config.files * config.wrong_size_rate))
    kinds = ["too_large"] * config.too_large + ["verification_failed"] * wrong_size
    kinds += ["verified"] * (config.files - len(kinds))
    rng.shuffle(kinds)
    planned: list[SoakFile] = []
    for expect in kinds:
        name = rng.choice(FILENAMES)
        if expect == "too_large":
            file = flow.add_file(original_filename="raw footage.mov", size=TOO_LARGE_BYTES + rng.randrange(1024**3))
        else:
            file = flow.add_file(
                original_filename=name, size=rng.randrange(1, 4096), wrong_size=expect == "verification_failed"
            )
        faults: tuple[Fault, ...] = ()
        if rng.random() < config.fault_rate:
            faults = tuple(_fault(rng, config) for _ in range(1 if rng.random() < 0.8 else 2))
            flow.emulator.script(file.uuid, *faults)
        planned.append(SoakFile(file, expect, faults))
    return planned


def plan_aws_faults(
    config: SoakConfig, files: list[SoakFile], bodies: dict[str, dict[str, Any]], flow: LocalFlow, proxy: AwsFaultProxy
) -> None:
    """Gives ~`aws_fault_rate` of the good files and ~`bad_aws_fault_rate` of the bad ones one AWS fault each, as a
    proxy rule that only that file's calls match. Its own seeded stream: the rest of the plan stays as without it."""
    rng = random.Random(f"aws-{config.seed}")
    settings = load_copier_settings(os.environ)
    queue, dlq = queue_name(flow.stack.queue_url), queue_name(flow.stack.dlq_url)
    for soaked in files:
        good = soaked.expect == "verified"
        if rng.random() >= (config.aws_fault_rate if good else config.bad_aws_fault_rate):
            continue
        kind = rng.choice(GOOD_FILE_AWS_FAULTS if good else BAD_FILE_AWS_FAULTS)
        uuid = soaked.file.uuid
        request = CopyRequest.from_file_info(bodies[uuid]["data"], event="file.uploaded", origin="webhook")
        record = idempotency_record_id(settings.specs[0].idempotency_key(request.uuid))
        soaked.aws_fault = kind
        soaked.aws_rule = _aws_rule(proxy, kind, uuid, record, queue=queue, dlq=dlq, ledger=flow.stack.ledger_table)


def _aws_rule(proxy: AwsFaultProxy, kind: str, uuid: str, record: str, *, queue: str, dlq: str, ledger: str) -> Rule:
    def names(*texts: str) -> Callable[[Call], bool]:
        return lambda call: all(call.mentions(text) for text in texts)

    every_attempt = {"times": AWS_ATTEMPTS}
    if kind == "claim_failed":
        return proxy.add("dynamodb:PutItem", aws_faults.Fault.throttled(), when=names(record), **every_attempt)
    if kind == "save_failed":
        return proxy.add("dynamodb:UpdateItem", aws_faults.Fault.throttled(), when=names(uuid), **every_attempt)
    if kind == "ledger_failed":
        written = names(uuid, f'"{ledger}"')  # the TableName field of the ledger's PutItem
        return proxy.add("dynamodb:PutItem", aws_faults.Fault.server_error(), when=written, **every_attempt)
    if kind == "delete_failed":
        return proxy.add("dynamodb:DeleteItem", aws_faults.Fault.server_error(), when=names(record), **every_attempt)
    if kind in ("head_error", "head_slow"):
        fault = aws_faults.Fault.server_error() if kind == "head_error" else aws_faults.Fault.slow(AWS_READ_SECONDS + 1)
        return proxy.add("s3:HeadObject", fault, when=lambda call: uuid in call.path, **every_attempt)
    if kind == "enqueue_failed":
        attempts = WEBHOOK_SQS_CONFIG.retries["total_max_attempts"]
        to_queue = names(uuid, f'/{queue}"')  # the QueueUrl field of the webhook's SendMessage
        return proxy.add("sqs:SendMessage", aws_faults.Fault.unavailable(), when=to_queue, times=attempts)
    if kind == "park_failed":
        to_dlq = names(uuid, f'/{dlq}"')
        return proxy.add("sqs:SendMessage", aws_faults.Fault.unavailable(), when=to_dlq, **every_attempt)
    raise ValueError(f"unknown AWS fault kind {kind!r}; known: {', '.join(AWS_FAULT_LABELS)}")


def idempotency_record_id(key: dict[str, str]) -> str:
    """The `id` Powertools gives the copier's idempotency record for `key` (key prefix # md5 of the sorted JSON). If
    Powertools ever hashes differently, the claim and delete faults stop matching, which the summary shows as
    "0 met" and the reduced soak test fails on."""
    digest = hashlib.md5(json.dumps(key, sort_keys=True).encode(), usedforsecurity=False).hexdigest()
    return f"{IDEMPOTENCY_KEY_PREFIX}#{digest}"


def _fault(rng: random.Random, config: SoakConfig) -> Fault:
    kind = rng.choices(["throttled", "server_error", "not_ready", "slow"], weights=[30, 30, 25, 15])[0]
    if kind == "throttled":
        return Fault.throttled(retry_after=rng.choice([0, 1]))
    if kind == "server_error":
        return Fault.server_error(rng.choice([500, 502, 503, 504]))
    if kind == "not_ready":
        return Fault.not_ready()
    return Fault.slow(config.slow_seconds)


@dataclass
class _Uploadcare:
    """What Uploadcare's webhook sender holds: the signing secret it signs with and the deliveries it will retry."""

    signing_secret: str
    retries: list[dict[str, Any]] = field(default_factory=list)


def run_soak(flow: LocalFlow, config: SoakConfig, proxy: AwsFaultProxy | None = None) -> SoakResult:
    """Runs the soak on a started `LocalFlow`; `result.problems` lists every broken promise (empty: all kept).
    With `config.aws_faults`, `proxy` is the fault proxy the handlers' AWS clients go through (`fault_proxy`)."""
    if config.aws_faults and proxy is None:
        raise ValueError("aws_faults needs the fault proxy in front of moto: run_soak(flow, config, proxy=...)")
    started = time.monotonic()
    rng = random.Random(config.seed)
    files = plan_files(config, rng, flow)
    by_uuid = {f.file.uuid: f for f in files}
    bodies = {f.file.uuid: flow.webhook_body(f.file) for f in files}
    if config.aws_faults and proxy is not None:
        plan_aws_faults(config, files, bodies, flow, proxy)
    # With AWS faults the copier's give-backs keep their visibility (an in-progress window must really pass);
    # without, they come back at once, which keeps the plain soak quick.
    give_back: int | None = None if config.aws_faults else 0
    _lose_webhooks(files, rng, config.lost_rate)
    order = [f.file.uuid for f in files if not f.lost]
    order += rng.sample(order, round(config.files * config.duplicate_rate))
    rng.shuffle(order)

    result = SoakResult(config, files)
    sender = _Uploadcare(flow.stack.spec.signing_secret)

    def deliver(uuid: str) -> None:
        status = flow.deliver(bodies[uuid], sender.signing_secret)
        result.statuses[status] += 1
        if 200 <= status < 300:
            by_uuid[uuid].deliveries += 1
        else:  # Uploadcare retries any non-2xx answer later (for up to 72 hours)
            sender.retries.append(bodies[uuid])

    def run_copier() -> None:
        stats = flow.run_copier(function_timeout=config.function_timeout, give_back_visibility=give_back)
        _add_stats(result.poll, stats)
        pending, sender.retries = sender.retries, []
        for body in pending[:]:
            result.uploadcare_retries += 1
            deliver(str(body["data"]["uuid"]))

    # The REST key rotates a third of the way, but never before the copier has run once with the old key.
    rotate_at = max(len(order) // 3, config.chunk)
    for n, uuid in enumerate(order):
        if config.rotate and n == rotate_at:
            if proxy is not None and config.aws_faults:  # the copier's re-read after its 401s fails at first
                proxy.add("secretsmanager:GetSecretValue", aws_faults.Fault.unavailable(), times=AWS_ATTEMPTS)
            _rotate_secret_key(flow, config.seed)
        if config.rotate and n == 2 * len(order) // 3:
            _rotate_signing_secret(flow, sender, config.seed)
        deliver(uuid)
        if (n + 1) % config.chunk == 0:
            run_copier()
    if not _settle(flow, run_copier, sender, waits=give_back is None):
        result.problems.append(f"the copy queue did not settle within {SETTLE_SECONDS:.0f} s")
    if config.lost_rate:
        _heal(flow, result, lambda: _settle(flow, run_copier, sender, waits=give_back is None))

    _collect(flow, result)
    if proxy is not None:
        result.aws_calls = Counter(proxy.calls)
        result.secrets_faulted = len(proxy.hits_of("secretsmanager:GetSecretValue"))
    result.seconds = time.monotonic() - started
    result.problems += check(result)
    return result


def _heal(flow: LocalFlow, result: SoakResult, settle: Callable[[], bool]) -> None:
    """One scheduled reconcile run (it must find the files no webhook announced), the copier over what it queued,
    then the audit."""
    result.reconcile = flow.reconcile()
    if not settle():
        result.problems.append(f"the copy queue did not settle within {SETTLE_SECONDS:.0f} s of the reconcile")
    result.audit = _audit(flow)


def _lose_webhooks(files: list[SoakFile], rng: random.Random, rate: float) -> None:
    good = [f for f in files if f.expect == "verified"]
    for lost in rng.sample(good, round(len(good) * rate)):
        lost.lost = True


def _audit(flow: LocalFlow) -> dict[str, Any]:
    """`uploadcare-s3-copy audit --json --to <now>` against the flow's stack (moto directly, not the fault proxy)."""
    from uploadcare_s3_copy_cli.app import main as cli  # noqa: PLC0415 - only the lost-webhook mode needs the CLI

    out = io.StringIO()
    environ = {**os.environ, **flow.stack.copier_env(), **flow.stack.reconciler_env()}
    if flow.endpoint:
        environ["AWS_ENDPOINT_URL"] = flow.endpoint
    cli(["audit", "--json", "--to", datetime.now(UTC).isoformat()], environ=environ, out=out, err=io.StringIO())
    try:
        answer: dict[str, Any] = json.loads(out.getvalue())
    except ValueError:
        return {"error": out.getvalue()[:300]}
    return answer


def _settle(flow: LocalFlow, run_copier: Callable[[], None], sender: _Uploadcare, *, waits: bool) -> bool:
    """Runs the copier until the queue (given-back records too) and Uploadcare's retries are empty; False if that
    took longer than SETTLE_SECONDS. `waits`: given-back records keep their visibility, so wait for them to come
    back; otherwise they come back at once, and five rounds that leave something over mean `check` will say what."""
    settle_by = time.monotonic() + SETTLE_SECONDS
    rounds = 0
    while True:
        run_copier()
        rounds += 1
        if not sender.retries and flow.queue_depth() == 0:
            return True
        if not waits and rounds == 5:
            return True
        if time.monotonic() > settle_by:
            return False
        if waits:
            time.sleep(1.0)


# The two rotations happen at different points: in this one process both handlers share Powertools' secret cache
# (in AWS each container has its own), so a re-read by one would otherwise hide the other's rotation path.
_SECRET_KEY = "rotated-secret-key-{seed}"  # noqa: S105 - a made-up key for the emulator
_SIGNING_SECRET = "rotated-signing-{seed}"  # noqa: S105 - ditto


def _rotate_secret_key(flow: LocalFlow, seed: int) -> None:
    """A new Uploadcare REST secret key: valid in Uploadcare at once, in Secrets Manager at the same moment."""
    flow.stack.put_secret(secret_key=_SECRET_KEY.format(seed=seed))
    flow.emulator.rotate_secret_key(_SECRET_KEY.format(seed=seed))


def _rotate_signing_secret(flow: LocalFlow, sender: _Uploadcare, seed: int) -> None:
    """A new webhook signing secret: into Secrets Manager first, then into Uploadcare's webhook (docs/deploy.md)."""
    signing_secret = _SIGNING_SECRET.format(seed=seed)[:32]  # Uploadcare allows at most 32 characters
    flow.stack.put_secret(secret_key=_SECRET_KEY.format(seed=seed), webhook_signing_secret=signing_secret)
    sender.signing_secret = signing_secret


def _add_stats(total: PollStats, stats: PollStats) -> None:
    total.batches += stats.batches
    total.received += stats.received
    total.deleted += stats.deleted
    total.given_back += stats.given_back
    total.handler_errors += stats.handler_errors


def _collect(flow: LocalFlow, result: SoakResult) -> None:
    result.dead_letters = flow.dead_letters()
    result.leftover = flow.queue_depth()
    outcomes = flow.outcomes([f.file for f in result.files], result.dead_letters)
    for soaked in result.files:
        outcome = outcomes[soaked.file.uuid]
        soaked.end = outcome.reason if outcome.state == "dead_lettered" else outcome.state
        soaked.copies = flow.emulator.copies(soaked.file.uuid)
        soaked.calls = flow.emulator.copy_calls(soaked.file.uuid)
        result.faults_left.update(fault.kind for fault in flow.emulator.pending_faults(soaked.file.uuid))
    parked = {_attribute(message, "uuid") for message in result.dead_letters}
    result.verified_parked = [
        f.file.uuid for f in result.files if f.file.uuid in parked and flow.object_size(f.file) == f.file.size
    ]
    result.uploadcare_answers = Counter(
        record.status for record in flow.emulator.requests if record.uri == "/files/remote_copy/"
    )


def check(result: SoakResult) -> list[str]:
    """Every promise the soak checks, as a list of what was broken."""
    problems = _check_files(result)
    reasons = Counter(_attribute(m, "uuid") for m in result.dead_letters)
    for soaked in result.files:
        parked = reasons.get(soaked.file.uuid, 0)
        if soaked.expect != "verified" and parked != soaked.deliveries:
            problems.append(f"{soaked.file.uuid}: {parked} DLQ messages for {soaked.deliveries} accepted deliveries")
    if result.verified_parked:
        problems.append(f"{len(result.verified_parked)} files parked although verified: {result.verified_parked[:5]}")
    unexplained = [m for m in result.dead_letters if not _attribute(m, "reason") or not _attribute(m, "detail")]
    if unexplained:
        problems.append(f"{len(unexplained)} DLQ messages without a reason or detail (moved by SQS after retries)")
    if result.leftover:
        problems.append(f"{result.leftover} messages left on the copy queue")
    if result.poll.handler_errors:
        problems.append(f"the copier failed {result.poll.handler_errors} whole invocations")
    # A 503 says "try again later" (Uploadcare does): expected only where AWS itself was failed under the webhook.
    refused = {
        status: n
        for status, n in result.statuses.items()
        if not 200 <= status < 300 and not (result.config.aws_faults and status == 503)
    }
    if refused:
        problems.append(f"{sum(refused.values())} correctly signed deliveries were refused ({refused})")
    if result.verified + result.dead_lettered != len(result.files):
        problems.append(f"{result.verified} verified + {result.dead_lettered} dead-lettered != {len(result.files)}")
    if result.config.lost_rate:
        problems += _check_healing(result)
    return problems


def _check_healing(result: SoakResult) -> list[str]:
    """The reconcile run queued exactly the lost files, and the audit agrees with what S3 and the DLQ say."""
    problems: list[str] = []
    lost = sum(f.lost for f in result.files)
    if result.reconcile.get("queued") != lost or result.reconcile.get("complete") is not True:
        problems.append(f"the reconcile run queued {result.reconcile.get('queued')} of the {lost} lost files")
    audit = result.audit
    if (audit.get("files"), audit.get("verified")) != (len(result.files), result.verified):
        problems.append(f"audit says {audit.get('verified')} of {audit.get('files')}, S3 says {result.verified}")
    if audit.get("missing") or audit.get("mismatched"):
        problems.append(f"audit found missing or mismatched pairs: {audit.get('missing')} {audit.get('mismatched')}")
    if len(audit.get("dead_lettered") or []) != result.dead_lettered:
        problems.append(
            f"audit lists {len(audit.get('dead_lettered') or [])} dead-lettered, the DLQ {result.dead_lettered}"
        )
    return problems


def _check_files(result: SoakResult) -> list[str]:
    problems: list[str] = []
    for soaked in result.files:
        uuid = soaked.file.uuid
        if soaked.end != soaked.expect:
            problems.append(f"{uuid}: expected {soaked.expect}, ended {soaked.end}")
        if soaked.deliveries == 0 and not soaked.lost:
            problems.append(f"{uuid}: no delivery of its webhook was ever accepted")
        if soaked.lost and soaked.deliveries:
            problems.append(f"{uuid}: its webhook was to be lost, yet {soaked.deliveries} deliveries were accepted")
        expected_copies = 0 if soaked.expect == "too_large" else 1
        if soaked.copies != expected_copies:
            problems.append(f"{uuid}: {soaked.copies} successful remote copies, expected {expected_copies}")
        if soaked.expect == "too_large" and soaked.calls:
            problems.append(f"{uuid}: over 5 GB, yet remote_copy was called {soaked.calls} times")
    return problems


def _attribute(message: dict[str, Any], name: str) -> str:
    return str(message.get("MessageAttributes", {}).get(name, {}).get("StringValue", ""))


def report(result: SoakResult, out: TextIO) -> None:
    """The summary table."""
    config = result.config
    rows: list[tuple[str, str]] = [
        ("seed", str(config.seed)),
        ("files", str(len(result.files))),
        ("  good", str(sum(f.expect == "verified" for f in result.files))),
        ("  wrong-size copy (must end verification_failed)", str(_expecting(result, "verification_failed"))),
        ("  over 5 GB (must end too_large)", str(_expecting(result, "too_large"))),
        ("webhook deliveries (duplicates and Uploadcare retries included)", str(sum(result.statuses.values()))),
        ("  answered", ", ".join(f"{status}: {n}" for status, n in sorted(result.statuses.items()))),
        ("  duplicates", str(sum(f.deliveries for f in result.files) - sum(not f.lost for f in result.files))),
        ("  Uploadcare retries of non-2xx answers", str(result.uploadcare_retries)),
        ("secrets rotated mid-run (REST secret key, then signing secret)", "yes" if config.rotate else "no"),
        ("files with scripted faults", str(sum(bool(f.faults) for f in result.files))),
    ]
    rows += [
        (f"  {FAULT_LABELS[kind]}", f"{n} scripted, {n - result.faults_left[kind]} hit")
        for kind, n in sorted(result.faults_injected().items())
    ]
    if config.aws_faults:
        rows += _aws_fault_rows(result)
    if config.lost_rate:
        summary = result.reconcile
        rows += [
            ("webhooks never delivered (lost)", str(sum(f.lost for f in result.files))),
            (
                "  reconcile run: checked / verified / queued / dead-lettered",
                f"{summary.get('checked')} / {summary.get('verified')} / {summary.get('queued')} / "
                f"{summary.get('dead_lettered')}",
            ),
            ("  lost files verified after it", str(sum(f.lost and f.end == "verified" for f in result.files))),
            ("audit", f"{result.audit.get('verified')} of {result.audit.get('files')} files verified"),
        ]
    rows += [
        ("remote_copy answers", ", ".join(f"{s}: {n}" for s, n in sorted(result.uploadcare_answers.items()))),
        ("copier invocations (batches)", str(result.poll.batches)),
        (
            "  records received / done / given back",
            f"{result.poll.received} / {result.poll.deleted} / {result.poll.given_back}",
        ),
        ("  whole-invocation failures", str(result.poll.handler_errors)),
        ("verified in S3, exactly one successful copy each", str(result.verified)),
        ("in the DLQ with a reason (files)", str(result.dead_lettered)),
        ("  of them verified in S3 (must be 0)", str(len(result.verified_parked))),
    ]
    dlq = Counter(_attribute(m, "reason") for m in result.dead_letters)
    rows += [(f"  {reason} (messages)", str(n)) for reason, n in sorted(dlq.items())]
    rows += [
        ("left on the copy queue", str(result.leftover)),
        (
            "verified + dead-lettered = total",
            f"{result.verified} + {result.dead_lettered} = "
            f"{result.verified + result.dead_lettered} of {len(result.files)}",
        ),
        ("wall time", f"{result.seconds:.1f} s"),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"\nFault soak (seed {config.seed})\n", file=out)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}", file=out)
    if result.problems:
        print(f"\nSOAK FAILED: {len(result.problems)} problem(s)", file=out)
        for problem in result.problems[:50]:
            print(f"  {problem}", file=out)
    else:
        print("\nSoak OK: every good file verified once, every bad one in the DLQ with its reason.", file=out)


def _aws_fault_rows(result: SoakResult) -> list[tuple[str, str]]:
    """Per AWS fault kind: how many files met it (of those planned) and where the ones that met it ended."""
    with_aws = [f for f in result.files if f.aws_fault]
    met_total = sum(f.met_aws_fault for f in with_aws)
    rows = [("files with an AWS fault (met / planned)", f"{met_total} / {len(with_aws)}")]
    for kind, label in AWS_FAULT_LABELS.items():
        planned = [f for f in with_aws if f.aws_fault == kind]
        if planned:
            met = [f for f in planned if f.met_aws_fault]
            ended = ", ".join(f"{end}: {n}" for end, n in sorted(Counter(f.end for f in met).items())) or "-"
            rows.append((f"  {label}", f"{len(met)} / {len(planned)} met; ended {ended}"))
    rows.append(("  Secrets Manager GetSecretValue 503 at the key rotation (calls)", str(result.secrets_faulted)))
    rows.append(("AWS calls through the fault proxy", str(sum(result.aws_calls.values()))))
    return rows


def _expecting(result: SoakResult, end: str) -> int:
    return sum(f.expect == end for f in result.files)


@contextlib.contextmanager
def soak_flow(endpoint: str, log: TextIO | None = None) -> Iterator[LocalFlow]:
    """A LocalFlow of its own (unique names, so several can share one moto server)."""
    # Grace 0: the soak's files are minutes old, and the reconciler must look at them (--lost-webhooks).
    parameters = {"ReconcileGraceSeconds": "0"}
    name = f"soak-{uuidlib.uuid4().hex[:8]}"
    with LocalFlow.start(endpoint, name=name, log=log or io.StringIO(), parameters=parameters) as flow:
        yield flow


@contextlib.contextmanager
def fault_proxy(flow: LocalFlow, endpoint: str, *, enabled: bool = True) -> Iterator[AwsFaultProxy | None]:
    """The AWS fault proxy in front of `endpoint` (moto), with both functions cold-started so that their clients
    use it; the soak's own checks (and the emulator's writes) keep going to moto directly. None when not `enabled`."""
    if not enabled:
        yield None
        return
    with AwsFaultProxy(endpoint).running() as proxy, _environment({"AWS_ENDPOINT_URL": proxy.url}):
        flow.reset_functions()
        try:
            yield proxy
        finally:
            flow.reset_functions()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=FULL_SIZE)
    parser.add_argument("--seed", type=int, default=None, help=f"default: {DEFAULT_SEED}")
    parser.add_argument("--no-rotate", action="store_true", help="keep both secrets unchanged")
    parser.add_argument(
        "--aws-faults",
        action="store_true",
        help="also fail AWS calls of both functions (through a fault proxy in front of moto); waits are real",
    )
    parser.add_argument(
        "--lost-webhooks",
        action="store_true",
        help="never deliver ~10 %% of the good files' webhooks; a reconcile run must find them, then audit",
    )
    parser.add_argument("--log", type=Path, default=ROOT / ".soak" / "handlers.log", help="the handlers' JSON logs")
    args = parser.parse_args(argv)
    if args.files < 10:
        parser.error(f"--files must be at least 10 (got {args.files}): the plan needs room for its bad files")
    config = SoakConfig(
        files=args.files,
        seed=DEFAULT_SEED if args.seed is None else args.seed,
        rotate=not args.no_rotate,
        aws_faults=args.aws_faults,
        lost_rate=LOST_RATE if args.lost_webhooks else 0.0,
    )
    args.log.parent.mkdir(parents=True, exist_ok=True)
    extra = " + AWS fault proxy" if config.aws_faults else ""
    print(f"Soak: {config.files} files, seed {config.seed}; moto server + Uploadcare emulator{extra} on 127.0.0.1 ...")
    with (
        moto_server(args.log.parent / "moto.log") as endpoint,
        open(args.log, "w", encoding="utf-8") as log,
        _environment(aws_env(endpoint)),
        soak_flow(endpoint, log) as flow,
        fault_proxy(flow, endpoint, enabled=config.aws_faults) as proxy,
    ):
        result = run_soak(flow, config, proxy)
    report(result, sys.stdout)
    print(f"\nHandler logs: {args.log}")
    return 1 if result.problems else 0


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


if __name__ == "__main__":
    sys.exit(main())
