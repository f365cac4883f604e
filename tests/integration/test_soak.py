"""The fault soak at reduced size (`make soak` runs it with 1,000 files): both handlers, the emulator and moto,
~20 % transient faults, ~5 % duplicate deliveries out of order, wrong-size copies, files over 5 GB, both secrets
rotated mid-run, and 10 % of the webhooks never delivered (a reconcile run must find those files); then again with
AWS calls failed under both functions (`make soak SOAK_ARGS="--aws-faults"`
at full size). Every file must end verified once or in the DLQ with its reason, and the counts add up."""

from __future__ import annotations

import io
from collections import Counter

from devkit.soak import AWS_FAULT_LABELS, SoakConfig, fault_proxy, report, run_soak, soak_flow

REDUCED = SoakConfig(files=150, seed=20261125, too_large=2, lost_rate=0.1)


def test_the_reduced_soak_keeps_every_promise(aws: str) -> None:
    # Given 150 files through both handlers with faults, duplicates, bad files and both secrets rotated
    with soak_flow(aws) as flow:
        # When the soak runs
        result = run_soak(flow, REDUCED)

    summary = io.StringIO()
    report(result, summary)
    print(summary.getvalue())  # shown by pytest -s and on failure: the figures and the seed

    # Then nothing was broken, and the run really contained what it claims to test
    assert result.problems == []
    faults = result.faults_injected()
    assert set(faults) == {"throttled", "server_error", "not_ready", "slow"}
    assert sum(bool(f.faults) for f in result.files) >= 20  # ~20 % of 150
    delivered = [f for f in result.files if not f.lost]
    assert sum(f.deliveries for f in delivered) - len(delivered) >= 5  # duplicates were accepted
    assert Counter(f.expect for f in result.files) == Counter(verified=146, verification_failed=2, too_large=2)
    assert result.verified == 146
    assert result.dead_lettered == 4
    assert result.leftover == 0
    assert result.poll.given_back > 0  # transient faults really were retried through the queue
    assert result.uploadcare_answers[401] >= 1  # the copier met the rotated REST key, and recovered
    # And the 15 webhooks never delivered were found by one reconcile run: every good file verified, audit agrees
    lost = [f for f in result.files if f.lost]
    assert len(lost) == 15
    assert all(f.end == "verified" and f.copies == 1 for f in lost)
    assert result.reconcile["queued"] == 15
    assert (result.audit["verified"], result.audit["files"]) == (146, 150)


AWS_FAULTED = SoakConfig(
    files=60,
    seed=20261203,
    too_large=2,
    chunk=20,  # the copier runs between the two rotations: it meets the Secrets Manager fault at the first
    wrong_size_rate=0.05,
    fault_rate=0.0,  # no Uploadcare faults on top (the soak above has them): each would double a record's back-off
    aws_faults=True,
    aws_fault_rate=0.3,
    bad_aws_fault_rate=1.0,
)


def test_the_reduced_soak_with_aws_faults_keeps_every_promise(aws: str) -> None:
    # Given 60 files, a third of them with an AWS call failed under them (every kind), Secrets Manager failing at the
    # REST key rotation, and the copier polled as Lambda would: what it gives back keeps the visibility it set, so
    # back-offs and in-progress windows really pass
    with soak_flow(aws) as flow, fault_proxy(flow, aws) as proxy:
        # When the soak runs
        result = run_soak(flow, AWS_FAULTED, proxy)

    summary = io.StringIO()
    report(result, summary)
    print(summary.getvalue())

    # Then nothing was broken: every good file verified with one copy, none parked, the bad ones parked with a reason
    assert result.problems == []
    assert result.verified_parked == []
    assert result.verified == 55
    assert result.dead_lettered == 5
    # And every kind of AWS fault was planned for some file, and every planned one was met by its file's own call
    faulted = [f for f in result.files if f.aws_fault]
    assert {f.aws_fault for f in faulted} == set(AWS_FAULT_LABELS), "this seed no longer plans every kind"
    assert [f.file.uuid for f in faulted if not f.met_aws_fault] == []
    assert result.secrets_faulted >= 1  # Secrets Manager failed at the key rotation, and the run recovered
    assert result.statuses[503] >= 1  # the webhook's failed enqueue was answered "try later", and retried
    assert result.uploadcare_retries == result.statuses[503]
