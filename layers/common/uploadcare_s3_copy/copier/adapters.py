"""The copier's I/O on SQS: giving records back sooner, and the dead-letter queue with machine-readable reasons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from uploadcare_s3_copy.observability import logger
from uploadcare_s3_copy.reasons import CopyFailure

DLQ_DETAIL_LIMIT = 1000
SQS_BATCH_LIMIT = 10


class Redelivery:
    """Shortens the wait of given-back records (ChangeMessageVisibility on the copy queue). Best effort: when it
    fails, or no queue URL is configured, SQS redelivers after the queue's visibility timeout as usual."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def delay_all(self, delays: Sequence[tuple[str, int]]) -> int:
        """(receipt handle, seconds) for each given-back record, in ChangeMessageVisibilityBatch calls of ten (one
        call for a whole copier batch). Returns how many were set."""
        if not self._queue_url:
            return 0
        done = 0
        for start in range(0, len(delays), SQS_BATCH_LIMIT):
            chunk = delays[start : start + SQS_BATCH_LIMIT]
            entries = [
                {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                for n, (handle, seconds) in enumerate(chunk)
            ]
            try:
                answer = self._sqs.change_message_visibility_batch(QueueUrl=self._queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as error:
                logger.warning("Could not set the retry waits", extra={"error": type(error).__name__})
                continue
            failed = answer.get("Failed", [])
            if failed:
                codes = sorted({str(item.get("Code", "")) for item in failed})
                logger.warning("Some retry waits were not set", extra={"failed": len(failed), "codes": codes})
            done += len(chunk) - len(failed)
        return done


class DeadLetters:
    """Sends a permanently failed request to the DLQ: the body (narrowed to the failed spec by the copier when
    the request was for several), the reason, detail, uuid and spec as attributes."""

    def __init__(self, sqs: Any, dlq_url: str) -> None:
        self._sqs = sqs
        self._dlq_url = dlq_url

    def send(self, body: str, failure: CopyFailure, uuid: str | None, *, spec: str | None = None) -> None:
        attributes = {
            "reason": {"DataType": "String", "StringValue": str(failure.reason)},
            "detail": {"DataType": "String", "StringValue": failure.detail[:DLQ_DETAIL_LIMIT] or "-"},
        }
        if uuid:
            attributes["uuid"] = {"DataType": "String", "StringValue": uuid}
        if spec:
            attributes["spec"] = {"DataType": "String", "StringValue": spec}
        if failure.request_id:
            attributes["uploadcare_request_id"] = {"DataType": "String", "StringValue": failure.request_id}
        self._sqs.send_message(QueueUrl=self._dlq_url, MessageBody=body, MessageAttributes=attributes)
