"""The webhook function: Uploadcare `file.uploaded` (or `file.deleted`, `file.infected`) in, one copy request on the
queue out.

`settings` (its environment), `answers` (what Uploadcare is told), `signing` (X-Uc-Signature), `rules` (the pure
decisions), `adapters` (SQS) and `app` (the wiring the handler in functions/webhook calls).
"""

from uploadcare_s3_copy.webhook.app import WEBHOOK_SECRET_FIELDS, WebhookApp, build_app

__all__ = ["WEBHOOK_SECRET_FIELDS", "WebhookApp", "build_app"]
