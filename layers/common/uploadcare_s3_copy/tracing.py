"""The Powertools Tracer of the copier and the reconciler, apart from `observability.py` so that the webhook never
creates it: creating a Tracer imports the X-Ray SDK, whose recorder builds a botocore client of its own, the largest
single cost of a cold start (README, "Performance"). The webhook's traces keep Lambda's own segments (the template
keeps `Tracing: Active`); they lose the handler subsegment and the SQS/Secrets Manager call subsegments.
"""

from aws_lambda_powertools import Tracer

tracer = Tracer()
