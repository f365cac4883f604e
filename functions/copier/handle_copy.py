"""Copier Lambda: SQS batches of copy requests -> remote copies proved with head_object, or the DLQ with a reason.

A thin entry point: Powertools decorators and one call. The logic is `uploadcare_s3_copy.copier` (common layer).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from uploadcare_s3_copy.copier import Copier, build_copier
from uploadcare_s3_copy.observability import logger, metrics, tracer

_copier: Copier | None = None


def current_copier() -> Copier:
    """Built on the first invocation of a container (not at import) and reused while the container is warm."""
    global _copier  # noqa: PLW0603 - one per container is the point
    if _copier is None:
        _copier = build_copier(os.environ)
    return _copier


def reset() -> None:
    """Forget the container's copier (tests change the environment between cases)."""
    global _copier  # noqa: PLW0603
    _copier = None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return current_copier().handle(event, context)
