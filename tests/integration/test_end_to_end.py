"""End to end over real HTTP on loopback: signed webhooks in through the webhook handler, the copy queue, the
copier run as Lambda's SQS event source would, remote copies through the Uploadcare emulator, proof in S3.

120 files, with duplicates, out-of-order redeliveries and scripted faults. For every file: verified in S3, or in the
DLQ with the reason it deserved; and verified + dead-lettered adds up to the total.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator

import pytest

from devkit.emulator import EmulatedFile, Fault
from devkit.flow import LocalFlow
from devkit.make_events import WRONG_SIGNING_SECRET

SEED = 20261124


@pytest.fixture
def flow(aws: str) -> Iterator[LocalFlow]:
    with LocalFlow.start(aws, name="e2e") as running:
        yield running


def test_a_hundred_and_twenty_webhooks_each_end_verified_or_dead_lettered(flow: LocalFlow) -> None:
    rng = random.Random(SEED)
    # Given 120 files: most plain, some with transient faults, some that must fail, each with its expected end
    expected: dict[str, str] = {}
    files: list[EmulatedFile] = []
    for n in range(120):
        kind = n % 12
        name = rng.choice(["photo.jpg", "Übersicht 2024.pdf", "clip (1).mp4", "notes", "a b c.TXT"])
        if kind == 10:
            file = flow.add_file(original_filename=name, size=100 + n, wrong_size=True)
            expected[file.uuid] = "verification_failed"
        elif kind == 11 and n < 60:
            file = flow.add_file(original_filename="huge.mov", size=5 * 1024**3 + n)
            expected[file.uuid] = "too_large"
        else:
            file = flow.add_file(original_filename=name, size=100 + n)
            expected[file.uuid] = "verified"
            fault = {1: Fault.throttled(retry_after=0), 2: Fault.server_error(503), 3: Fault.not_ready()}.get(kind)
            if fault:
                flow.emulator.script(file.uuid, fault)
        files.append(file)
    gone = files[-1]  # unknown to Uploadcare by the time of its copy (purged): parked as not_found
    expected[gone.uuid] = "not_found"

    # When their webhooks arrive: shuffled, 15 of the first 60 redelivered after later files' first deliveries,
    # 10 preceded by an unrelated event, and 5 forgeries that must be refused
    deliveries = [flow.webhook_body(f) for f in files]
    rng.shuffle(deliveries)
    statuses = Counter(flow.deliver(body) for body in deliveries[:60])
    flow.emulator.forget_file(gone.uuid)
    flow.run_copier()
    redelivered = rng.sample(deliveries[:60], 15)
    statuses.update(flow.deliver(body) for body in [*redelivered, *deliveries[60:]])
    statuses.update(flow.deliver(flow.webhook_body(f, event="file.stored")) for f in files[:10])
    forged = Counter(flow.deliver(body, WRONG_SIGNING_SECRET) for body in deliveries[:5])
    stats = flow.run_copier()

    # Then the webhook answered 202 to every genuine file.uploaded, 200 to the others, 401 to the forgeries
    assert statuses == Counter({202: 135, 200: 10})
    assert forged == Counter({401: 5})
    # And every file ended where it should, with nothing left on the queue
    dead_letters = flow.dead_letters()
    outcomes = flow.outcomes(files, dead_letters)
    ended = {uuid: (o.reason if o.state == "dead_lettered" else o.state) for uuid, o in outcomes.items()}
    assert ended == expected
    verified = sum(1 for o in outcomes.values() if o.state == "verified")
    dead = sum(1 for o in outcomes.values() if o.state == "dead_lettered")
    assert verified + dead == len(files) == 120
    # A redelivered webhook of a failed file is tried again and parked again: never a file in the DLQ without cause
    dead_uuids = {m["MessageAttributes"]["uuid"]["StringValue"] for m in dead_letters}
    assert dead_uuids == {uuid for uuid, end in expected.items() if end != "verified"}
    assert flow.queue_depth() == 0
    assert stats.handler_errors == 0
    # And no file was copied twice, whatever the redeliveries
    copies = {f.uuid: flow.emulator.copies(f.uuid) for f in files}
    assert all(copies[uuid] == 1 for uuid, end in expected.items() if end in {"verified", "verification_failed"})
    assert all(copies[uuid] == 0 for uuid, end in expected.items() if end in {"too_large", "not_found"})
