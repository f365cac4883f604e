"""Entry point of the webhook function: `POST /webhooks/uploadcare` on an HTTP API (payload format 2.0).

All logic lives in `uploadcare_s3_copy.webhook`. The app (settings, SQS client, key store) is built from the
environment on the first invocation and kept for the container's life; a bad configuration raises there, on every
invocation, so the stack fails loudly instead of answering 2xx. Tests set the environment first and call
`app.cache_clear()` to start over.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

from uploadcare_s3_copy.observability import logger, metrics
from uploadcare_s3_copy.webhook import WebhookApp, build_app

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@cache
def app() -> WebhookApp:
    return build_app(os.environ)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics  # no Tracer here: it would import the X-Ray SDK at cold start (uploadcare_s3_copy/tracing.py)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app().handle(event)
