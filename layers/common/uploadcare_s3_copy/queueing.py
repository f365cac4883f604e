"""Putting copy requests on the copy queue, ten per SendMessageBatch, retrying the entries SQS could not take.

Used by the reconciler function and, through `uploadcare_s3_copy_cli.queueing`, by the ops CLI's `backfill`,
`copy` and `audit --requeue`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

MAX_BATCH = 10  # SendMessageBatch takes at most ten entries
SEND_ATTEMPTS = 3


class QueueSendError(Exception):
    """Some copy requests could not be sent; the message counts them and gives SQS's reasons."""


@dataclass(frozen=True)
class FailedEntry:
    index: int  # position in the batch that was given
    problem: str  # SQS's code and message


class BatchSender:
    """Sends copy requests to the copy queue in batches of ten (SendMessageBatch)."""

    def __init__(self, sqs: Any, queue_url: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._sqs = sqs
        self.url = queue_url
        self._sleep = sleep

    def send_batch(self, bodies: Sequence[str]) -> list[FailedEntry]:
        """Sends up to ten bodies; entries SQS failed on its side are tried again. Returns what still failed.
        A failure of the whole call (botocore's ClientError or BotoCoreError) is raised as it is."""
        if len(bodies) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} messages per batch, not {len(bodies)}")
        pending = dict(enumerate(bodies))
        problems: dict[int, str] = {}
        given_up: set[int] = set()
        for attempt in range(SEND_ATTEMPTS):
            if not pending:
                break
            if attempt:
                self._sleep(0.5 * 2**attempt)
            entries = [{"Id": str(index), "MessageBody": body} for index, body in pending.items()]
            answer = self._sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
            for item in answer.get("Successful", []):
                pending.pop(int(item["Id"]), None)
            for item in answer.get("Failed", []):
                index = int(item["Id"])
                problems[index] = f"{item.get('Code', '?')}: {item.get('Message', '')}".strip()
                if item.get("SenderFault"):  # our mistake (too big, bad characters): sending again cannot help
                    pending.pop(index, None)
                    given_up.add(index)
        return [FailedEntry(index, problems.get(index, "not sent")) for index in sorted(given_up | set(pending))]

    def send_all(self, bodies: Sequence[str]) -> int:
        """Sends every body in batches of ten; raises QueueSendError when any could not be sent. Returns how many
        were sent."""
        for start in range(0, len(bodies), MAX_BATCH):
            failed = self.send_batch(bodies[start : start + MAX_BATCH])
            if failed:
                problems = "; ".join(sorted({entry.problem for entry in failed}))
                raise QueueSendError(f"SQS refused {len(failed)} of the copy requests ({problems})")
        return len(bodies)
