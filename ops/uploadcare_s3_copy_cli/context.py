"""One command run: its resources, AWS clients, the Uploadcare keys (read once, never printed) and its output."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import boto3
from botocore.config import Config as BotoConfig

from uploadcare_s3_copy.secrets import SecretConfigError, UploadcareKeys, parse_keys
from uploadcare_s3_copy.uploadcare import Credentials
from uploadcare_s3_copy_cli.admin_api import AdminClient
from uploadcare_s3_copy_cli.base import CliError
from uploadcare_s3_copy_cli.queueing import BatchSender
from uploadcare_s3_copy_cli.resources import Resources

API_KEY_FIELDS = ("public_key", "secret_key")  # what calling Uploadcare needs; the signing secret is the webhook's
# An operator waits at a terminal: fail in seconds rather than minutes, but ride out a throttled AWS API.
AWS_CONFIG = BotoConfig(connect_timeout=5, read_timeout=30, retries={"max_attempts": 5, "mode": "standard"})


class AwsClients:
    """boto3 clients created on first use, one per service; boto3 honours AWS_ENDPOINT_URL and the usual profile,
    region and credential settings by itself."""

    def __init__(self, config: BotoConfig = AWS_CONFIG) -> None:
        self._config = config
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(service, config=self._config)
        return self._clients[service]


@dataclass
class Context:
    resources: Resources
    aws: AwsClients
    environ: Mapping[str, str]
    out: TextIO
    err: TextIO
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _secret: dict[str, Any] | None = field(default=None, repr=False)

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def note(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    def secret_value(self, *, fresh: bool = False) -> dict[str, Any]:
        """The secret's JSON object, read from Secrets Manager once per run (again when `fresh`)."""
        if self._secret is None or fresh:
            secret_id = self.resources.secret_id
            if not secret_id:
                raise CliError("no secret: give --secret-id or --stack")
            answer = self.aws("secretsmanager").get_secret_value(SecretId=secret_id)
            try:
                value = json.loads(answer.get("SecretString") or "")
            except ValueError:
                value = None
            if not isinstance(value, dict):
                raise CliError(f"secret {secret_id} is not a JSON object")
            self._secret = value
        return self._secret

    def keys(self, required: tuple[str, ...] = API_KEY_FIELDS) -> UploadcareKeys:
        try:
            return parse_keys(self.secret_value(), str(self.resources.secret_id), required)
        except SecretConfigError as error:
            raise CliError(str(error)) from error

    def uploadcare(self) -> AdminClient:
        keys = self.keys()
        return AdminClient(Credentials(keys.public_key, keys.secret_key), self.resources.api_url)

    def copy_queue(self) -> BatchSender:
        return BatchSender(self.aws("sqs"), str(self.resources.queue_url), sleep=self.sleep)
