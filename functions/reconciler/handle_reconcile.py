"""Entry point of the reconciler function: on its EventBridge schedule (event `{}`), or invoked by hand with
`{"from": ISO, "to": ISO}` or `{"full": true}`. Returns the run's summary.

All logic lives in `uploadcare_s3_copy.reconciler`. The app is built from the environment on the first invocation
and kept for the container's life; tests set the environment first and call `app.cache_clear()` to start over.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

from uploadcare_s3_copy.observability import logger, metrics
from uploadcare_s3_copy.reconciler import ReconcilerApp, build_reconciler
from uploadcare_s3_copy.tracing import tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@cache
def app() -> ReconcilerApp:
    return build_reconciler(os.environ)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app().handle(event, context)
