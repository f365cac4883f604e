"""A stand-in for the Lambda context object, for running handlers in-process (tests, the demo, benchmarks).

It has what Powertools' `inject_lambda_context` reads and what a handler may ask for its time budget.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field


@dataclass
class LambdaContext:
    function_name: str = "uploadcare-s3-copy-local"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:uploadcare-s3-copy-local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_seconds: float = 30.0
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/uploadcare-s3-copy-local"
    log_stream_name: str = "local"
    _deadline: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
