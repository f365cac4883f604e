"""Powertools' SQS batch processing, with the records of a batch run concurrently on a bounded thread pool."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType


class RetryLater(Exception):
    """Raised to Powertools' batch processor so the record becomes a batch item failure (SQS redelivers it)."""


class ConcurrentBatchProcessor(BatchProcessor):
    """Powertools' SQS batch processor with the records run on a thread pool; its failure bookkeeping is kept."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        # Every record failing is reported as batch item failures like any other, not raised as a function error.
        super().__init__(EventType.SQS, raise_on_entire_batch_failure=False)
        self._pool = pool

    def process(self) -> list[tuple[Any, ...]]:
        return list(self._pool.map(self._process_record, self.records))
