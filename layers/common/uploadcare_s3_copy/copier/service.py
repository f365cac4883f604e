"""Copying one file and proving it: `POST /files/remote_copy/`, then `head_object` in the target bucket.

A 429 is waited out in-process when the deadline allows; a 401 re-reads the secret once. The adapters (Uploadcare
client factory, S3 client, key store) are injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from uploadcare_s3_copy.copier.outcomes import Verified
from uploadcare_s3_copy.copier.rules import (
    AFTER_COPY_SECONDS,
    DENIED_CODES,
    MAX_COPY_BYTES,
    MAX_THROTTLE_WAITS,
    NOT_FOUND_CODES,
    NOT_VISIBLE_WAITS,
    Deadline,
    check_object,
    locate_copy,
    missing_object,
)
from uploadcare_s3_copy.copy_request import CopyRequest
from uploadcare_s3_copy.observability import logger
from uploadcare_s3_copy.reasons import PermanentFailure, Reason, TransientFailure
from uploadcare_s3_copy.s3location import S3Location
from uploadcare_s3_copy.secrets import KeyStore, SecretUnavailableError, UploadcareKeys
from uploadcare_s3_copy.specs import CopySpec
from uploadcare_s3_copy.uploadcare.client import CopyStatus, RemoteCopyResult, UploadcareClient
from uploadcare_s3_copy.uploadcare.errors import UploadcareAuthError


class CopyService:
    """Copies one file and proves it. Adapters (Uploadcare client factory, S3 client, key store) are injected."""

    def __init__(
        self,
        *,
        s3: Any,
        key_store: KeyStore,
        client_factory: Callable[[UploadcareKeys], UploadcareClient],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._s3 = s3
        self._key_store = key_store
        self._client_factory = client_factory
        self._sleep = sleep

    def copy_and_verify(
        self, request: CopyRequest, spec: CopySpec, keys: UploadcareKeys, deadline: Deadline, receive_count: int = 1
    ) -> Verified:
        """One (file, spec): the remote copy, then its proof. The original must have the file's size; a processed
        version (its size unknown in advance) must be there and not empty."""
        if request.size > MAX_COPY_BYTES and not spec.processed:
            raise PermanentFailure(
                Reason.TOO_LARGE, f"{request.size} bytes is over Uploadcare's 5 GB remote-copy limit; not attempted"
            )
        result = self.remote_copy(request, spec, keys, deadline)
        location = locate_copy(result, request, spec)
        expected_size = None if spec.processed else request.size
        waits = iter(NOT_VISIBLE_WAITS)
        while True:
            if not deadline.allows_aws_call():
                raise TransientFailure(Reason.TIMEOUT, f"no time left to verify {location} in this invocation")
            try:
                return self.verify(location, expected_size, result.status, receive_count)
            except TransientFailure as failure:
                wait = next(waits, None)
                if failure.reason is not Reason.NOT_YET_VISIBLE or wait is None:
                    raise
                if not deadline.can_wait(wait, reserve=AFTER_COPY_SECONDS):
                    raise
                logger.info("Copy answered but not in the bucket yet; looking again", extra={"wait": wait})
                self._sleep(wait)

    def remote_copy(
        self, request: CopyRequest, spec: CopySpec, keys: UploadcareKeys, deadline: Deadline
    ) -> RemoteCopyResult:
        client = self._client_factory(keys)
        throttle_waits = 0
        secret_reread = False
        while True:
            try:
                return client.remote_copy(
                    spec.source(request.uuid),
                    spec.target,
                    make_public=spec.make_public,
                    pattern=spec.pattern,
                    timeout=deadline.call_timeout(reserve=AFTER_COPY_SECONDS),
                )
            except UploadcareAuthError:
                if secret_reread:
                    raise
                secret_reread = True
                fresh = self._fresh_keys()
                if fresh == keys:
                    raise
                logger.info("Uploadcare refused the keys; retrying once with the re-read secret")
                keys, client = fresh, self._client_factory(fresh)
            except TransientFailure as failure:
                wait = failure.retry_after
                if failure.reason is not Reason.THROTTLED or wait is None or throttle_waits >= MAX_THROTTLE_WAITS:
                    raise
                if not deadline.can_wait(wait, reserve=AFTER_COPY_SECONDS):
                    raise
                throttle_waits += 1
                logger.info("Uploadcare throttled the copy; waiting", extra={"retry_after": wait})
                self._sleep(wait)

    def _fresh_keys(self) -> UploadcareKeys:
        try:
            return self._key_store.refresh() or self._key_store.get()
        except SecretUnavailableError as error:
            raise TransientFailure(Reason.AWS_UNAVAILABLE, str(error)) from error

    def verify(
        self, location: S3Location, expected_size: int | None, status: CopyStatus, receive_count: int = 1
    ) -> Verified:
        """head_object where the copy must be (each candidate key); `expected_size` None for a processed version."""
        for key in location.candidate_keys():
            try:
                head = self._s3.head_object(Bucket=location.bucket, Key=key, ChecksumMode="ENABLED")
            except ClientError as error:
                code = str(error.response.get("Error", {}).get("Code", ""))
                if code in NOT_FOUND_CODES:
                    continue
                if code in DENIED_CODES:
                    raise PermanentFailure(
                        Reason.VERIFICATION_FAILED,
                        f"head_object on {location} was denied: the copier needs s3:GetObject and s3:ListBucket "
                        "there (a copy spec's bucket other than TargetBucketName belongs in ExtraTargetBuckets)",
                    ) from error
                raise TransientFailure(Reason.AWS_UNAVAILABLE, f"head_object on {location}: {code}") from error
            except BotoCoreError as error:
                raise TransientFailure(
                    Reason.AWS_UNAVAILABLE, f"head_object on {location}: {type(error).__name__}"
                ) from error
            found = S3Location(location.bucket, key)
            size = int(head["ContentLength"])
            check_object(found, size, expected_size)
            return Verified(
                status=status,
                bucket=found.bucket,
                key=found.key,
                size=size,
                etag=str(head.get("ETag", "")).strip('"'),
                checksum=str(head.get("ChecksumCRC64NVME", "")),
            )
        raise missing_object(location, expected_size, receive_count)
