"""The scheduled reconciler: Uploadcare's file list against the copy ledger, a copy request for each gap."""

from uploadcare_s3_copy.reconciler.app import ReconcilerApp, build_reconciler
from uploadcare_s3_copy.reconciler.core import InvalidReconcileEvent, Reconciler, RunKind, RunRequest, Summary
from uploadcare_s3_copy.reconciler.settings import ReconcilerSettings, load_reconciler_settings

__all__ = [
    "InvalidReconcileEvent",
    "Reconciler",
    "ReconcilerApp",
    "ReconcilerSettings",
    "RunKind",
    "RunRequest",
    "Summary",
    "build_reconciler",
    "load_reconciler_settings",
]
