"""The copy queue from the command line: the shared BatchSender, its failures as CliError; queue depths."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from uploadcare_s3_copy import queueing
from uploadcare_s3_copy.queueing import MAX_BATCH, FailedEntry, QueueSendError
from uploadcare_s3_copy_cli.base import CliError

__all__ = ["MAX_BATCH", "BatchSender", "FailedEntry", "queue_depths"]


class BatchSender(queueing.BatchSender):
    """Sends copy requests to the copy queue in batches of ten; a refused request is a CliError."""

    def send_all(self, bodies: Sequence[str]) -> int:
        try:
            return super().send_all(bodies)
        except QueueSendError as error:
            raise CliError(str(error)) from error


def queue_depths(sqs: Any, queue_url: str) -> tuple[int, int]:
    """(messages waiting, messages in flight), as SQS approximates them."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return int(attributes.get(names[0], 0)), int(attributes.get(names[1], 0))
