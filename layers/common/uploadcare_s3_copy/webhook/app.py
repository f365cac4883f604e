"""The webhook function's wiring: settings, the signing key store and the queue, built once per container.

`WebhookApp` runs the rules (`webhook.rules`) against the adapters, logs one line per answer and counts it.
Cold start matters here: nothing imported is heavier than boto3 and Powertools' core, and neither the Uploadcare
REST client nor the copier is imported at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from uploadcare_s3_copy import secrets as secret_store
from uploadcare_s3_copy.observability import logger, metrics
from uploadcare_s3_copy.secrets import KeyStore, SecretConfigError, SecretUnavailableError
from uploadcare_s3_copy.webhook import signing
from uploadcare_s3_copy.webhook.adapters import (
    SECRETS_CLIENT_CONFIG,
    SQS_CLIENT_CONFIG,
    MessageSender,
    QueueUnavailableError,
    SqsCopyQueue,
)
from uploadcare_s3_copy.webhook.answers import (
    Refused,
    WebhookAnswer,
    WebhookReason,
    ignored,
    queued,
    rejected,
    unavailable,
)
from uploadcare_s3_copy.webhook.rules import (
    SigningKeys,
    check_signature,
    copy_request_from,
    derived_from,
    header,
    hook_event,
    parse_payload,
    queued_event,
    read_body,
    request_method,
)
from uploadcare_s3_copy.webhook.settings import WebhookSettings, load_webhook_settings

# The webhook needs only the signing secret; the REST keys in the same secret are the copier's business.
WEBHOOK_SECRET_FIELDS = ("webhook_signing_secret",)


@dataclass
class WebhookApp:
    """One container's webhook: settings, the signing key store and the queue, built once by `build_app`."""

    settings: WebhookSettings
    keys: SigningKeys
    queue: MessageSender

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Answers one HTTP API request; logs and counts the answer."""
        answer = self.answer(event)
        _record(answer)
        return answer.to_http()

    def answer(self, event: Mapping[str, Any]) -> WebhookAnswer:
        try:
            return self._answer(event)
        except Refused as refused:
            return refused.answer

    def _answer(self, event: Mapping[str, Any]) -> WebhookAnswer:
        if request_method(event) != "POST":
            raise Refused(
                rejected(405, WebhookReason.METHOD_NOT_ALLOWED, "only POST is accepted", headers={"allow": "POST"})
            )
        body = read_body(event, self.settings.max_body_bytes)
        try:
            check_signature(header(event, signing.HEADER), body, self.keys)
        except SecretUnavailableError as error:
            logger.error("cannot read the signing secret", extra={"error": str(error)})
            return unavailable(WebhookReason.SECRET_UNAVAILABLE, "the signing secret cannot be read; try again later")
        except SecretConfigError as error:
            logger.error("the signing secret is not configured", extra={"error": str(error)})
            raise
        payload = parse_payload(body)
        event_name = hook_event(payload)
        queued_as = queued_event(event_name, payload)
        if queued_as is None:
            return ignored(WebhookReason.OTHER_EVENT, f"event {event_name}")
        request = copy_request_from(payload, queued_as)
        logger.set_correlation_id(request.uuid)
        if self.settings.skip_derived and derived_from(payload):
            return ignored(WebhookReason.DERIVED_FILE, "derived file")
        try:
            self.queue.send(request.to_message())
        except QueueUnavailableError as error:
            logger.error("cannot send the copy request", extra={"error": str(error)})
            return unavailable(WebhookReason.QUEUE_UNAVAILABLE, "the copy queue is unavailable; try again later")
        return queued(request.uuid)


def _record(answer: WebhookAnswer) -> None:
    """One log line and the metrics of an answer: totals without dimensions, plus a by-reason breakdown."""
    fields = {"status": answer.status, "outcome": answer.body["status"], "reason": answer.reason}
    if answer.status >= 500:
        logger.error("webhook answered", extra=fields)
    elif answer.status >= 400:
        logger.warning("webhook answered", extra=fields)
    else:
        logger.info("webhook answered", extra=fields)
    metrics.add_metric(name="WebhookReceived", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=answer.metric, unit=MetricUnit.Count, value=1)
    if answer.reason is not None:  # a small, fixed set of values: WebhookReason
        with single_metric(
            name=answer.metric, unit=MetricUnit.Count, value=1, namespace=metrics.namespace
        ) as by_reason:
            by_reason.add_dimension(name="reason", value=str(answer.reason))


def build_app(environ: Mapping[str, str]) -> WebhookApp:
    """Reads the settings (raising `ConfigError` naming every bad variable) and creates the clients, once."""
    settings = load_webhook_settings(environ)
    sqs = boto3.client("sqs", config=SQS_CLIENT_CONFIG)  # honours AWS_ENDPOINT_URL by itself
    fetch = secret_store.secrets_manager_fetcher(SECRETS_CLIENT_CONFIG)
    keys = KeyStore(settings.secret_id, required=WEBHOOK_SECRET_FIELDS, fetch=fetch)
    return WebhookApp(settings=settings, keys=keys, queue=SqsCopyQueue(sqs, settings.copy_queue_url))
