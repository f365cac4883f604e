"""The soak's own pieces that can be wrong without a run showing it: the idempotency record id its AWS faults aim
at, and its command line."""

from __future__ import annotations

import boto3
import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

from devkit import soak
from uploadcare_s3_copy.copier.app import IDEMPOTENCY_KEY_PREFIX


def test_the_record_id_a_fault_aims_at_is_the_one_powertools_writes() -> None:
    # Given the copier's persistence layer, configured as the copier configures it (no AWS call is made)
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    layer = DynamoDBPersistenceLayer(table_name="t", key_attr="id", boto3_client=client)
    layer.configure(IdempotencyConfig(raise_on_no_idempotency_key=True), key_prefix=IDEMPOTENCY_KEY_PREFIX)
    key = {"uuid": "0c5a8f5e-4a1b-4c7e-9f3a-2b8d6e1f0a9c", "target": "storage", "pattern": "${default}", "effects": ""}

    # Then the soak's id for the same key is Powertools' own (else the claim and delete faults would never match)
    assert soak.idempotency_record_id(key) == layer._get_hashed_idempotency_key(key)


@pytest.mark.parametrize("files", ["0", "9"])
def test_too_few_files_is_refused_naming_the_option(files: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        soak.main(["--files", files])

    assert stopped.value.code == 2
    assert f"--files must be at least 10 (got {files})" in capsys.readouterr().err
