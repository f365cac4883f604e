"""The webhook's I/O: the copy queue on SQS."""

from __future__ import annotations

from typing import Any, Protocol

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

# Fail fast and let Uploadcare retry rather than outlive the function's timeout (5 s in template.yaml): a SendMessage
# takes tens of milliseconds, so two attempts of at most 1 s connect + 1 s read, with standard back-off, fit.
SQS_CLIENT_CONFIG = Config(connect_timeout=1, read_timeout=1, retries={"mode": "standard", "total_max_attempts": 2})
# The secret is read on a cold start (and at most once a minute after a signature mismatch): one attempt of at most
# 1 s connect + 1.5 s read, so a slow Secrets Manager is answered 503 (Uploadcare retries) well within the 5 s.
SECRETS_CLIENT_CONFIG = Config(
    connect_timeout=1, read_timeout=1.5, retries={"mode": "standard", "total_max_attempts": 1}
)


class QueueUnavailableError(Exception):
    """The copy request could not be sent; the message says why (an AWS error code or a connection problem)."""


class MessageSender(Protocol):
    """Where the webhook puts one copy request."""

    def send(self, message: str) -> None: ...


class SqsCopyQueue:
    """The copy queue on SQS; the message body is exactly `CopyRequest.to_message()`."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url

    def send(self, message: str) -> None:
        try:
            self._client.send_message(QueueUrl=self.queue_url, MessageBody=message)
        except ClientError as error:
            raise QueueUnavailableError(str(error.response.get("Error", {}).get("Code", "ClientError"))) from error
        except BotoCoreError as error:
            raise QueueUnavailableError(type(error).__name__) from error
