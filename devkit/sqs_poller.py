"""Runs a handler over an SQS queue the way Lambda's SQS event source mapping does, for local runs and tests.

Receives up to `batch_size` messages, builds the Lambda SQS event (the record shape of the `aws:sqs` event
source), invokes the handler, deletes the records that are not listed in `batchItemFailures`, and makes the
failed ones visible again (so they are redelivered, and after `maxReceiveCount` moved to the DLQ by SQS itself).
A handler that raises is a failure of the whole batch: nothing is deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devkit.lambda_context import LambdaContext

Handler = Callable[[dict[str, Any], Any], Any]


def queue_name(queue_url: str) -> str:
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


def queue_arn(queue_url: str, region: str = "us-east-1", account: str = "123456789012") -> str:
    return f"arn:aws:sqs:{region}:{account}:{queue_name(queue_url)}"


def to_lambda_record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", "0"),
            "SenderId": attributes.get("SenderId", "local"),
            "ApproximateFirstReceiveTimestamp": attributes.get("ApproximateFirstReceiveTimestamp", "0"),
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": arn.split(":")[3],
    }


@dataclass
class PollStats:
    batches: int = 0
    received: int = 0
    deleted: int = 0
    given_back: int = 0
    handler_errors: int = 0
    responses: list[Any] = field(default_factory=list)


def poll_once(
    sqs: Any,
    queue_url: str,
    handler: Handler,
    *,
    batch_size: int = 10,
    function_timeout: float = 300.0,
    stats: PollStats | None = None,
    give_back_visibility: int | None = 0,
) -> int:
    """One receive + invoke + delete round; returns how many messages were received (0 when the queue is empty).

    Failed records are made visible again after `give_back_visibility` seconds (0: at once, for quick local runs);
    None leaves them as the handler left them, as Lambda does (the queue's visibility timeout, or what the
    copier set with ChangeMessageVisibility).
    """
    stats = stats if stats is not None else PollStats()
    answer = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=batch_size,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
        WaitTimeSeconds=0,
    )
    messages = answer.get("Messages", [])
    if not messages:
        return 0
    arn = queue_arn(queue_url)
    event = {"Records": [to_lambda_record(message, arn) for message in messages]}
    stats.batches += 1
    stats.received += len(messages)
    try:
        response = handler(event, LambdaContext(function_name="CopierFunction", timeout_seconds=function_timeout))
    except Exception:  # a failed invocation: Lambda gives the whole batch back
        stats.handler_errors += 1
        failed = {message["MessageId"] for message in messages}
    else:
        stats.responses.append(response)
        failures = (response or {}).get("batchItemFailures", [])
        failed = {item["itemIdentifier"] for item in failures}
    for message in messages:
        if message["MessageId"] in failed:
            if give_back_visibility is not None:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=give_back_visibility
                )
            stats.given_back += 1
        else:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            stats.deleted += 1
    return len(messages)


def drain(
    sqs: Any,
    queue_url: str,
    handler: Handler,
    *,
    batch_size: int = 10,
    max_rounds: int = 1000,
    function_timeout: float = 300.0,
    give_back_visibility: int | None = 0,
) -> PollStats:
    """Poll until the queue answers empty or `max_rounds` is reached. With `give_back_visibility` 0 (the default)
    failed records come back at once, so "empty" includes their redeliveries; with None they keep the visibility
    the handler set, and "empty" means nothing is visible right now (see `poll_once`)."""
    stats = PollStats()
    for _ in range(max_rounds):
        received = poll_once(
            sqs,
            queue_url,
            handler,
            batch_size=batch_size,
            function_timeout=function_timeout,
            stats=stats,
            give_back_visibility=give_back_visibility,
        )
        if received == 0:
            break
    return stats
