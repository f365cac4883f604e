"""The moto server fixture itself: reachable over loopback, and boto3 is pointed at it."""

import boto3


def test_boto3_talks_to_the_session_moto_server(aws: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="fixture-check")
    s3.put_object(Bucket="fixture-check", Key="dir with space/ü %.txt", Body=b"12345")

    head = s3.head_object(Bucket="fixture-check", Key="dir with space/ü %.txt")

    assert head["ContentLength"] == 5
    assert aws.startswith("http://localhost:")
