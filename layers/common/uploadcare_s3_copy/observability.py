"""The one place that creates the Powertools Logger, Tracer and Metrics every module imports.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE, which the
template sets. Nothing here logs secrets, signatures or whole payloads: log fields are chosen, never dumped.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
