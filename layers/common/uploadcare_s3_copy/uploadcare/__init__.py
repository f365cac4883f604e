"""Uploadcare's REST API as the functions use it: request signing (`auth`), answers mapped to failure reasons
(`errors`) and the client (`client`)."""

from uploadcare_s3_copy.uploadcare.auth import ACCEPT, CONTENT_TYPE, Credentials, request_signature, string_to_sign
from uploadcare_s3_copy.uploadcare.client import (
    DEFAULT_TIMEOUT,
    ApiResponse,
    CopyStatus,
    FilesPage,
    RemoteCopyResult,
    Timeout,
    UploadcareClient,
    files_cursor,
    shared_pool,
)
from uploadcare_s3_copy.uploadcare.errors import UploadcareAuthError, classify_error

__all__ = [
    "ACCEPT",
    "CONTENT_TYPE",
    "DEFAULT_TIMEOUT",
    "ApiResponse",
    "CopyStatus",
    "Credentials",
    "FilesPage",
    "RemoteCopyResult",
    "Timeout",
    "UploadcareAuthError",
    "UploadcareClient",
    "classify_error",
    "files_cursor",
    "request_signature",
    "shared_pool",
    "string_to_sign",
]
