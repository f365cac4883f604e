"""Entry point of the copier function: SQS batches of copy requests (partial batch responses).

All logic lives in `uploadcare_s3_copy.copier`. The app (settings, clients, idempotency, thread pool) is built from
the environment on the first invocation and kept for the container's life; a bad configuration raises there, on
every invocation, so the stack fails loudly. Tests set the environment first and call `app.cache_clear()` to start
over.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

from uploadcare_s3_copy.copier import Copier, build_copier
from uploadcare_s3_copy.observability import logger, metrics
from uploadcare_s3_copy.tracing import tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@cache
def app() -> Copier:
    return build_copier(os.environ)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app().handle(event, context)
