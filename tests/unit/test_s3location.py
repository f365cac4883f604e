"""Parsing Uploadcare's `result` URLs."""

from __future__ import annotations

import pytest

from uploadcare_s3_copy.s3location import S3Location


@pytest.mark.parametrize(
    ("url", "bucket", "key"),
    [
        ("s3://mybucket/03ccf9ab/image.png", "mybucket", "03ccf9ab/image.png"),
        ("s3://b/dir with space/file name.jpg", "b", "dir with space/file name.jpg"),
        ("s3://b/ünïcödé/日本.txt", "b", "ünïcödé/日本.txt"),
        ("s3://b/100%/a%20b.gif", "b", "100%/a%20b.gif"),
        ("s3://b/a//double", "b", "a//double"),
    ],
)
def test_bucket_and_key_are_split_and_the_key_kept_as_is(url: str, bucket: str, key: str) -> None:
    location = S3Location.parse(url)

    assert (location.bucket, location.key) == (bucket, key)
    assert str(location) == url


@pytest.mark.parametrize("url", ["https://b/k", "s3://", "s3://bucket", "s3://bucket/", "s3:/b/k", "b/k"])
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="s3"):
        S3Location.parse(url)


def test_percent_encoded_keys_are_also_tried_decoded() -> None:
    assert S3Location("b", "a%20b.gif").candidate_keys() == ("a%20b.gif", "a b.gif")
    assert S3Location("b", "plain.gif").candidate_keys() == ("plain.gif",)
