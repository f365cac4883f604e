"""One command run: its resources, AWS clients, the Uploadcare keys (read once, never printed) and its output."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import boto3
import boto3.session
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError, NoRegionError, ProfileNotFound, ReadTimeoutError
from botocore.exceptions import ConnectionError as AwsConnectionError

from uploadcare_s3_copy.reasons import CopyFailure, Reason
from uploadcare_s3_copy.secrets import SecretConfigError, UploadcareKeys, parse_keys
from uploadcare_s3_copy.uploadcare import Credentials
from uploadcare_s3_copy_cli.admin_api import AdminClient
from uploadcare_s3_copy_cli.base import CliError, UsageError
from uploadcare_s3_copy_cli.queueing import BatchSender
from uploadcare_s3_copy_cli.resources import Resources

API_KEY_FIELDS = ("public_key", "secret_key")  # what calling Uploadcare needs; the signing secret is the webhook's
# An operator waits at a terminal: fail in seconds rather than minutes, but ride out a throttled AWS API.
AWS_CONFIG = BotoConfig(connect_timeout=5, read_timeout=30, retries={"max_attempts": 5, "mode": "standard"})


REGION_FIX = (
    "no AWS region: set AWS_REGION (export AWS_REGION=eu-west-1, the stack's region), or AWS_DEFAULT_REGION, or a "
    "region for your profile in ~/.aws/config (aws configure set region eu-west-1)"
)


def find_region(environ: Mapping[str, str]) -> tuple[str | None, str]:
    """The region and where it came from: $AWS_REGION (the AWS CLI's and Lambda's variable, which botocore itself
    ignores), else $AWS_DEFAULT_REGION, else the profile's configuration."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if environ.get(name):
            return environ[name], f"${name}"
    profile = environ.get("AWS_PROFILE") or None
    try:
        region = boto3.session.Session(profile_name=profile).region_name
    except ProfileNotFound as error:
        raise UsageError(f"AWS profile {profile!r} (from $AWS_PROFILE) is not in your AWS configuration") from error
    return region, f"profile {profile or 'default'} in the AWS configuration"


class AwsClients:
    """boto3 clients created on first use, one per service, in `region` (None: boto3's own choice); boto3 honours
    AWS_ENDPOINT_URL and the usual profile and credential settings by itself."""

    def __init__(self, config: BotoConfig = AWS_CONFIG, region: str | None = None, region_source: str = "") -> None:
        self._config = config
        self._region = region
        self.region_source = region_source or "boto3's configuration"
        self._clients: dict[str, Any] = {}

    @property
    def region(self) -> str | None:
        return self._region

    def require_region(self) -> None:
        """No region anywhere is a usage error with the fix (before boto3 looks for credentials). boto3's own
        configuration is read once, not once per service."""
        if self._region is None:
            self._region = boto3.session.Session().region_name
        if self._region is None:
            raise UsageError(REGION_FIX)

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            self.require_region()
            try:
                self._clients[service] = boto3.client(service, config=self._config, region_name=self._region)
            except NoRegionError as error:
                raise UsageError(REGION_FIX) from error
        return self._clients[service]


def describe_aws_error(error: Exception, environ: Mapping[str, str], aws: AwsClients) -> str:
    """An AWS error in one line; a connection failure names the endpoint's host and where it came from: an
    `AWS_ENDPOINT_URL...` variable, or AWS's own endpoint for the region (and where the region came from)."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', '?')}: {details.get('Message', '')}".rstrip(": ")
    endpoint = getattr(error, "kwargs", {}).get("endpoint_url")
    if not isinstance(error, AwsConnectionError | ReadTimeoutError) or not endpoint:
        return f"{type(error).__name__}: {error}"
    host = urllib.parse.urlsplit(str(endpoint)).netloc or str(endpoint)
    variables = sorted(name for name in environ if name.startswith("AWS_ENDPOINT_URL") and environ[name])
    if variables:
        source = "$" + " / $".join(variables)
    else:
        source = f"AWS's endpoint for region {aws.region or '?'}, from {aws.region_source}"
    return f"cannot reach AWS at {host} ({source}): {type(error).__name__}"


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

    def uploadcare_problem(self, failure: CopyFailure) -> str:
        """A failure of an Uploadcare call in one line; one that never reached Uploadcare names the URL it tried and
        the setting that gave it."""
        text = f"{failure.reason}: {failure.detail}"
        if failure.reason in (Reason.CONNECTION, Reason.TIMEOUT):
            api_url, source = self.resources.api_url, self.resources.source_of("api_url")
            text += f" (cannot reach Uploadcare's REST API at {api_url}, from {source})"
        return text

    def aws_problem(self, error: Exception) -> str:
        """An AWS error in one line; a connection failure names the endpoint and the setting that gave it."""
        return describe_aws_error(error, self.environ, self.aws)

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
