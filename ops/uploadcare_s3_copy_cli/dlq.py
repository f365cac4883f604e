"""`dlq list` and `dlq redrive`: the dead-letter queue grouped by failure reason, and moving messages back.

Reading is not consuming: messages are received with a short visibility timeout and made visible again at once.
A redrive sends each message's original body to the copy queue and deletes it from the DLQ only after the send
succeeded, so a failure midway loses nothing (at worst a request is queued twice, which the copier's idempotency
absorbs). The `reason` and `detail` attributes are the copier's (reasons.py); a message without them was moved by
SQS itself after `maxReceiveCount` transient failures.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from uploadcare_s3_copy.reasons import Reason
from uploadcare_s3_copy_cli.base import EXIT_OK, EXIT_PROBLEMS, plural
from uploadcare_s3_copy_cli.context import Context
from uploadcare_s3_copy_cli.queueing import MAX_BATCH, queue_depths

NO_REASON = "none"  # the group of messages SQS moved after maxReceiveCount (no `reason` attribute)
REASONS = (*(str(reason) for reason in Reason), NO_REASON)  # what `dlq redrive --reason` accepts
PEEK_VISIBILITY_SECONDS = 30  # hidden while the listing is read, then made visible again at once
HOLD_VISIBILITY_SECONDS = 120  # hidden while a redrive sends them on
RECEIVE_WAIT_SECONDS = 1  # long polling asks every SQS server: no message is missed for being on another one
DEFAULT_LIST_MAX = 1000
DEFAULT_EXAMPLES = 3


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    reason: str  # NO_REASON when the message has no `reason` attribute
    detail: str
    uuid: str
    filename: str

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> DeadLetter:
        attributes = message.get("MessageAttributes") or {}

        def attribute(name: str) -> str:
            return str((attributes.get(name) or {}).get("StringValue") or "")

        body = str(message.get("Body", ""))
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        request = request if isinstance(request, dict) else {}
        return cls(
            message_id=str(message["MessageId"]),
            receipt_handle=str(message["ReceiptHandle"]),
            body=body,
            reason=attribute("reason") or NO_REASON,
            detail=attribute("detail"),
            uuid=attribute("uuid") or str(request.get("uuid") or "?"),
            filename=str(request.get("original_filename") or ""),
        )


def group_by_reason(letters: Iterable[DeadLetter]) -> list[tuple[str, list[DeadLetter]]]:
    """Reasons with their messages, the largest group first (ties by name)."""
    groups: dict[str, list[DeadLetter]] = {}
    for letter in letters:
        groups.setdefault(letter.reason, []).append(letter)
    return sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))


def matches(letter: DeadLetter, reasons: Sequence[str]) -> bool:
    return not reasons or letter.reason in reasons


class DeadLetterQueue:
    def __init__(self, sqs: Any, url: str) -> None:
        self._sqs = sqs
        self.url = url

    def receive(self, visibility: int, limit: int | None = None) -> Iterator[list[DeadLetter]]:
        """Batches of messages not seen before in this run, each hidden for `visibility` seconds, until as many
        as the queue counted at the start were seen, `limit` is reached, or the queue answers empty."""
        expected, _ = queue_depths(self._sqs, self.url)
        seen: set[str] = set()
        long_polled = False
        while len(seen) < expected and (limit is None or len(seen) < limit):
            answer = self._sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=MAX_BATCH if limit is None else min(MAX_BATCH, limit - len(seen)),
                MessageAttributeNames=["All"],
                VisibilityTimeout=visibility,
                WaitTimeSeconds=RECEIVE_WAIT_SECONDS if long_polled else 0,
            )
            letters = [DeadLetter.from_message(m) for m in answer.get("Messages", [])]
            fresh = [letter for letter in letters if letter.message_id not in seen]
            if not fresh:  # empty, or only messages seen before whose visibility ran out
                if long_polled:
                    return
                long_polled = True  # a short poll asks only some SQS servers: one long poll decides
                continue
            seen.update(letter.message_id for letter in fresh)
            yield fresh

    def release(self, letters: Sequence[DeadLetter]) -> None:
        """Visible again now, for the copier's next look or another listing."""
        for start in range(0, len(letters), MAX_BATCH):
            chunk = letters[start : start + MAX_BATCH]
            entries = [
                {"Id": str(n), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
                for n, letter in enumerate(chunk)
            ]
            self._sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)

    def delete(self, letters: Sequence[DeadLetter]) -> list[DeadLetter]:
        """Deletes them; returns those SQS did not delete."""
        entries = [{"Id": str(n), "ReceiptHandle": letter.receipt_handle} for n, letter in enumerate(letters)]
        if not entries:
            return []
        answer = self._sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)
        return [letters[int(item["Id"])] for item in answer.get("Failed", [])]


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_groups(groups: list[tuple[str, list[DeadLetter]]], examples: int, say: Callable[[str], None]) -> None:
    width = max((len(reason) for reason, _ in groups), default=0)
    for reason, letters in groups:
        label = reason if reason != NO_REASON else f"{NO_REASON} (moved by SQS after repeated transient failures)"
        say(f"  {label:<{width}}  {len(letters):>5}")
        for letter in letters[:examples]:
            name = f"  {_shorten(letter.filename, 30)}" if letter.filename else ""
            say(f"      {letter.uuid}{name}  {_shorten(letter.detail, 100) or '-'}")
        if len(letters) > examples:
            say(f"      … and {len(letters) - examples} more")


def list_command(ctx: Context, args: argparse.Namespace) -> int:
    ctx.resources.require("dlq list", "dlq_url")
    dlq = DeadLetterQueue(ctx.aws("sqs"), str(ctx.resources.dlq_url))
    letters: list[DeadLetter] = []
    try:
        for batch in dlq.receive(PEEK_VISIBILITY_SECONDS, args.max):
            letters.extend(batch)
    finally:
        dlq.release(letters)
    if not letters:
        ctx.say(f"The dead-letter queue is empty ({dlq.url}).")
        return EXIT_OK
    more = " (--max reached; there may be more)" if len(letters) >= args.max else ""
    ctx.say(f"{plural(len(letters), 'message')} in the dead-letter queue{more}:")
    render_groups(group_by_reason(letters), args.examples, ctx.say)
    ctx.say("Fix the cause, then: uploadcare-s3-copy dlq redrive [--reason REASON]")
    return EXIT_PROBLEMS


def redrive_command(ctx: Context, args: argparse.Namespace) -> int:
    ctx.resources.require("dlq redrive", "dlq_url", "queue_url")
    dlq = DeadLetterQueue(ctx.aws("sqs"), str(ctx.resources.dlq_url))
    queue = ctx.copy_queue()
    reasons: list[str] = args.reason or []
    limit: int | None = args.max
    held: list[DeadLetter] = []  # received but not ours to move: made visible again at the end
    moved: list[DeadLetter] = []
    failed = 0
    try:
        for batch in dlq.receive(HOLD_VISIBILITY_SECONDS):
            wanted: list[DeadLetter] = []
            for letter in batch:
                room = limit is None or len(moved) + len(wanted) < limit
                (wanted if room and matches(letter, reasons) else held).append(letter)
            unsent = {entry.index for entry in queue.send_batch([letter.body for letter in wanted])}
            sent = [letter for n, letter in enumerate(wanted) if n not in unsent]
            held.extend(letter for n, letter in enumerate(wanted) if n in unsent)
            undeleted = dlq.delete(sent)  # after the send: a failure in between leaves a copy in both queues
            held.extend(undeleted)
            failed += len(unsent) + len(undeleted)
            moved.extend(letter for letter in sent if letter not in undeleted)
            if limit is not None and len(moved) >= limit:
                break
    finally:
        dlq.release(held)
    if not moved and not failed:
        which = f" with reason {', '.join(reasons)}" if reasons else ""
        ctx.say(f"Nothing to redrive{which}: {plural(len(held), 'other message')} left in the dead-letter queue.")
        return EXIT_OK
    counts = ", ".join(f"{reason} {len(group)}" for reason, group in group_by_reason(moved))
    ctx.say(f"Moved {plural(len(moved), 'message')} to the copy queue ({counts or '-'}).")
    if held:
        left = ", ".join(f"{reason} {len(group)}" for reason, group in group_by_reason(held))
        ctx.say(f"Left in the dead-letter queue: {len(held)} ({left}).")
    if failed:
        ctx.say(
            f"{plural(failed, 'message')} could not be moved (sent but not deleted, or not sent): "
            "run dlq redrive again."
        )
        return EXIT_PROBLEMS
    return EXIT_OK
