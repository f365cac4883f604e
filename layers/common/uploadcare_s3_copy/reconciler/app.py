"""The reconciler function's wiring: settings, clients and the run, once per container; metrics per run."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config as BotoConfig

from uploadcare_s3_copy.ledger import Ledger
from uploadcare_s3_copy.observability import logger, metrics
from uploadcare_s3_copy.queueing import BatchSender
from uploadcare_s3_copy.reasons import Reason, TransientFailure
from uploadcare_s3_copy.reconciler.core import InvalidReconcileEvent, Reconciler, Summary, parse_event
from uploadcare_s3_copy.reconciler.settings import ReconcilerSettings, load_reconciler_settings
from uploadcare_s3_copy.reconciler.state import StateStore
from uploadcare_s3_copy.secrets import KeyStore, SecretUnavailableError, UploadcareKeys, secrets_manager_fetcher
from uploadcare_s3_copy.uploadcare import Credentials, FilesPage, UploadcareAuthError, UploadcareClient
from uploadcare_s3_copy.uploadcare.client import new_pool

RECONCILER_SECRET_FIELDS = ("public_key", "secret_key")
# Short timeouts and two attempts: a slow AWS call must not eat the time the run keeps for saving its cursor.
AWS_CONFIG = BotoConfig(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 2})
SUMMARY_METRICS = {
    "checked": "ReconcileChecked",
    "verified": "ReconcileVerified",
    "queued": "ReconcileQueued",
    "dead_lettered": "ReconcileDeadLettered",
    "skipped": "ReconcileSkipped",
    "stale": "ReconcileStale",
    "deletions_queued": "ReconcileDeletionsQueued",
}


class Deadline(Protocol):
    """What the run needs of the Lambda context: the time it has left."""

    def get_remaining_time_in_millis(self) -> int: ...


class ReconcileStoppedError(Exception):
    """A run stopped by a failure (not by its deadline) after saving where it was: reported as a function error, so
    the errors alarm sees an Uploadcare or AWS outage that outlasts the retries of a run."""


class KeyedListing:
    """`GET /files/` pages with the keys from Secrets Manager; a 401 re-reads the secret once (a rotated key)."""

    def __init__(self, key_store: KeyStore, api_url: str) -> None:
        self._key_store = key_store
        self._api_url = api_url
        self._pool = new_pool()
        self._clients: dict[UploadcareKeys, UploadcareClient] = {}
        self._lock = threading.Lock()

    def list_files_page(self, cursor: str) -> FilesPage:
        try:
            return self._client(self._keys()).list_files_page(cursor)
        except UploadcareAuthError:
            fresh = self._refresh()
            if fresh is None:
                raise
            return self._client(fresh).list_files_page(cursor)

    def _keys(self) -> UploadcareKeys:
        try:
            return self._key_store.get()
        except SecretUnavailableError as error:
            raise TransientFailure(Reason.AWS_UNAVAILABLE, str(error)) from error

    def _refresh(self) -> UploadcareKeys | None:
        try:
            return self._key_store.refresh()
        except SecretUnavailableError as error:
            raise TransientFailure(Reason.AWS_UNAVAILABLE, str(error)) from error

    def _client(self, keys: UploadcareKeys) -> UploadcareClient:
        with self._lock:
            client = self._clients.get(keys)
            if client is None:
                credentials = Credentials(keys.public_key, keys.secret_key)
                client = self._clients[keys] = UploadcareClient(credentials, self._api_url, pool=self._pool)
            return client


class ReconcilerApp:
    def __init__(self, settings: ReconcilerSettings, reconciler: Reconciler) -> None:
        self.settings = settings
        self.reconciler = reconciler

    def handle(self, event: Any, context: Deadline) -> dict[str, Any]:
        try:
            request = parse_event(event)
        except InvalidReconcileEvent as error:
            logger.error("Not a reconcile event; nothing done", extra={"problem": str(error)})
            raise
        summary = self.reconciler.run(request, lambda: context.get_remaining_time_in_millis() / 1000)
        result = summary.as_dict()
        logger.info("Reconcile run", extra={"summary": result})
        add_metrics(summary)
        if summary.stopped_by not in (None, "deadline"):
            raise ReconcileStoppedError(f"the run stopped: {summary.stopped_by} (its cursor is saved)")
        return result


def add_metrics(summary: Summary) -> None:
    result = summary.as_dict()
    for name, metric in SUMMARY_METRICS.items():
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=int(result[name]))


def build_reconciler(environ: Mapping[str, str], **tuning: Any) -> ReconcilerApp:
    """The container's reconciler from its environment; a bad configuration raises ConfigError. `tuning`: the
    Reconciler's page size and time reserves, for runs that are not the function's (the CLI, tests, the bench)."""
    settings = load_reconciler_settings(environ)
    dynamodb = boto3.client("dynamodb", config=AWS_CONFIG)
    sqs = boto3.client("sqs", config=AWS_CONFIG)
    key_store = KeyStore(
        settings.secret_id, required=RECONCILER_SECRET_FIELDS, fetch=secrets_manager_fetcher(AWS_CONFIG)
    )
    reconciler = Reconciler(
        settings,
        listing=KeyedListing(key_store, settings.api_url),
        ledger=Ledger(dynamodb, settings.ledger_table),
        sender=BatchSender(sqs, settings.copy_queue_url),
        state=StateStore(dynamodb, settings.ledger_table),
        **tuning,
    )
    return ReconcilerApp(settings, reconciler)
