"""The copier function: copy requests from the queue -> Uploadcare remote copies proved in S3, or the DLQ.

`settings` (its environment), `patterns` (object keys), `rules` (the pure decisions and the deadline), `outcomes`
(what a record ends as), `service` (one copy and its proof), `adapters` (SQS: redelivery, DLQ), `batch` (the
concurrent batch processor) and `app` (the wiring the handler in functions/copier calls).
"""

from uploadcare_s3_copy.copier.app import Copier, build_copier

__all__ = ["Copier", "build_copier"]
