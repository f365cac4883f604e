"""Key rotation mid-run: the Uploadcare REST secret key and the webhook signing secret change while files flow
through both functions. After at most one re-read of the secret per container, every delivery signed with the
secret in force is accepted, and nothing is lost: what was refused is accepted when Uploadcare retries it.

Both handlers run in this one process, where Powertools' secret cache would be shared; in AWS each container has
its own. So every key store built here gets a cache of its own (a `SecretsProvider` per container) and a count of
its forced re-reads, and, where a test says so, a clock it controls for the once-a-minute re-read limit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider

from devkit.emulator import EmulatedFile
from devkit.flow import LocalFlow
from devkit.make_events import WRONG_SIGNING_SECRET
from devkit.sqs_poller import PollStats, poll_once
from uploadcare_s3_copy import secrets
from uploadcare_s3_copy.secrets import KeyStore

NEW_SECRET_KEY = "rotated-rest-secret-key"
NEW_SIGNING_SECRET = "rotated-signing-secret"


@dataclass
class Container:
    """One function container's key store: its own secret cache, its re-reads and its clock."""

    store: KeyStore
    rereads: int = 0
    now: float = 1000.0


@dataclass
class Containers:
    created: list[Container] = field(default_factory=list)

    def of(self, required: tuple[str, ...]) -> Container:
        """The container whose key store needs `required` (the webhook: the signing secret; the copier: the keys)."""
        [found] = [c for c in self.created if c.store._required == required]
        return found


@pytest.fixture
def containers(monkeypatch: pytest.MonkeyPatch) -> Containers:
    made = Containers()
    real_init = KeyStore.__init__

    def init(self: KeyStore, secret_id: str, **kwargs: Any) -> None:
        provider = SecretsProvider()
        container = Container(self)

        def fetch(name: str, force: bool) -> Any:
            container.rereads += force
            return provider.get(name, transform="json", max_age=secrets.CACHE_SECONDS, force_fetch=force)

        def clock() -> float:
            return container.now

        real_init(self, secret_id, **{**kwargs, "fetch": fetch, "clock": clock})
        made.created.append(container)

    monkeypatch.setattr(KeyStore, "__init__", init)
    return made


@pytest.fixture
def flow(aws: str, containers: Containers) -> Iterator[LocalFlow]:
    with LocalFlow.start(aws, name=f"rotation-{uuid.uuid4().hex[:8]}") as running:
        yield running


@dataclass
class Uploadcare:
    """Uploadcare's webhook sender: signs with the secret it holds now, and retries any non-2xx answer later."""

    flow: LocalFlow
    signing_secret: str
    pending: list[dict[str, Any]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)

    def deliver(self, file: EmulatedFile, secret: str | None = None) -> int:
        return self._send(self.flow.webhook_body(file), secret or self.signing_secret)

    def retry(self, before: Callable[[], None] = lambda: None) -> list[int]:
        before()
        pending, self.pending = self.pending, []
        return [self._send(body, self.signing_secret) for body in pending]

    def _send(self, body: dict[str, Any], secret: str) -> int:
        status = self.flow.deliver(body, secret)
        self.answers.append(status)
        if not 200 <= status < 300:
            self.pending.append(body)
        return status


def copier_once(flow: LocalFlow) -> PollStats:
    import handle_copy  # noqa: PLC0415

    stats = PollStats()
    poll_once(flow.sqs, flow.stack.queue_url, handle_copy.lambda_handler, batch_size=10, stats=stats)
    return stats


def assert_all_verified_once(flow: LocalFlow, files: list[EmulatedFile]) -> None:
    outcomes = flow.outcomes(files)
    assert {o.state for o in outcomes.values()} == {"verified"}
    assert [flow.emulator.copies(f.uuid) for f in files] == [1] * len(files)
    assert flow.queue_depth() == 0


def test_both_secrets_rotated_mid_run_cost_one_reread_per_container_and_lose_nothing(
    flow: LocalFlow, containers: Containers
) -> None:
    uploadcare = Uploadcare(flow, flow.stack.spec.signing_secret)
    # Given both functions warm with the old secret: five files delivered and copied
    before = [flow.add_file(size=10 + n) for n in range(5)]
    assert [uploadcare.deliver(f) for f in before] == [202] * 5
    flow.run_copier()
    webhook, copier = containers.of(("webhook_signing_secret",)), containers.of(("public_key", "secret_key"))

    # When both secrets are rotated, as docs/deploy.md says (Secrets Manager first, then Uploadcare), ten files
    # are uploaded and delivered signed with the new signing secret, and two deliveries Uploadcare had signed
    # before the switch arrive late
    flow.stack.put_secret(secret_key=NEW_SECRET_KEY, webhook_signing_secret=NEW_SIGNING_SECRET)
    flow.emulator.rotate_secret_key(NEW_SECRET_KEY)
    old_secret, uploadcare.signing_secret = uploadcare.signing_secret, NEW_SIGNING_SECRET
    after = [flow.add_file(size=100 + n) for n in range(10)]
    new_answers = [uploadcare.deliver(f) for f in after]
    late = [flow.add_file(size=200 + n) for n in range(2)]
    late_answers = [uploadcare.deliver(f, old_secret) for f in late]
    retried = uploadcare.retry()
    first_batch = copier_once(flow)
    flow.run_copier()

    # Then every delivery signed with the secret in force was accepted, the webhook re-read the secret once
    assert new_answers == [202] * 10
    assert webhook.rereads == 1
    # And the two signed with the retired secret were refused, then accepted when Uploadcare retried them
    assert late_answers == [401, 401]
    assert retried == [202, 202]
    # And the copier met Uploadcare's 401, re-read the secret once and copied the whole batch in that invocation
    assert copier.rereads == 1
    assert first_batch.given_back == 0
    assert first_batch.deleted == 10
    assert_all_verified_once(flow, [*before, *after, *late])
    assert flow.dead_letters() == []


def test_a_rotation_right_after_a_forged_delivery_is_picked_up_within_a_minute_and_nothing_is_lost(
    flow: LocalFlow, containers: Containers
) -> None:
    uploadcare = Uploadcare(flow, flow.stack.spec.signing_secret)
    # Given a warm webhook that has just re-read the secret because of a forged (well-formed, wrong) signature
    first = flow.add_file(size=5)
    assert uploadcare.deliver(first) == 202
    assert uploadcare.deliver(first, WRONG_SIGNING_SECRET) == 401
    webhook = containers.of(("webhook_signing_secret",))
    assert webhook.rereads == 1
    uploadcare.pending.clear()  # the forgery is not Uploadcare's to retry

    # When the signing secret is rotated within that minute and a delivery signed with the new one arrives
    flow.stack.put_secret(webhook_signing_secret=NEW_SIGNING_SECRET)
    uploadcare.signing_secret = NEW_SIGNING_SECRET
    file = flow.add_file(size=6)
    refused = uploadcare.deliver(file)

    # Then it is refused (the once-a-minute limit holds against floods of bad signatures), Uploadcare retries it
    # after the minute, and the retry is accepted after one more re-read: nothing lost
    assert refused == 401

    def a_minute_passes() -> None:
        webhook.now += 61

    assert uploadcare.retry(before=a_minute_passes) == [202]
    assert webhook.rereads == 2
    flow.run_copier()
    assert_all_verified_once(flow, [first, file])
