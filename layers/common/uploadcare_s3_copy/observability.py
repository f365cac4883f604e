"""The one place that creates the Powertools Logger and Metrics every module imports (the Tracer: `tracing.py`).

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE, which the
template sets. Nothing here logs secrets, signatures or whole payloads: log fields are chosen, never dumped.
"""

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
