"""The fault soak at reduced size (`make soak` runs it with 1,000 files): both handlers, the emulator and moto,
~20 % transient faults, ~5 % duplicate deliveries out of order, wrong-size copies, files over 5 GB, and both
secrets rotated mid-run. Every file must end verified once or in the DLQ with its reason, and the counts add up."""

from __future__ import annotations

import io
from collections import Counter

from devkit.soak import SoakConfig, report, run_soak, soak_flow

REDUCED = SoakConfig(files=150, seed=20261125, too_large=2)


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
    assert sum(f.deliveries for f in result.files) - len(result.files) >= 5  # duplicates were accepted
    assert Counter(f.expect for f in result.files) == Counter(verified=146, verification_failed=2, too_large=2)
    assert result.verified == 146
    assert result.dead_lettered == 4
    assert result.leftover == 0
    assert result.poll.given_back > 0  # transient faults really were retried through the queue
    assert result.uploadcare_answers[401] >= 1  # the copier met the rotated REST key, and recovered
