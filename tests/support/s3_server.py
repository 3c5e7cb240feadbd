"""An S3-compatible server (moto) on loopback with IAM checks on, one bucket, and a user allowed to use it (fixture `s3_server`)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto.core.authorization import enable_iam_authentication
from moto.server import ThreadedMotoServer

BUCKET = "judgeforge-test"


@dataclass(frozen=True)
class S3Server:
    """Where the server listens and the storage options of an allowed user."""

    endpoint_url: str
    key: str
    secret: str

    @property
    def storage_options(self) -> dict[str, str]:
        """Return s3fs storage options for the allowed user."""
        return {"key": self.key, "secret": self.secret, "endpoint_url": self.endpoint_url}


@pytest.fixture
def s3_server() -> Iterator[S3Server]:
    """Start moto on 127.0.0.1, create the bucket and a user with an s3:* policy, then require signed requests."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto keeps its state per process: start every test from an empty account
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
        setup = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
        iam = boto3.client("iam", **setup)
        iam.create_user(UserName="judgeforge")
        key = iam.create_access_key(UserName="judgeforge")["AccessKey"]
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_user_policy(UserName="judgeforge", PolicyName="s3", PolicyDocument=json.dumps(policy))
        boto3.client("s3", **setup).create_bucket(Bucket=BUCKET)
        with enable_iam_authentication():
            yield S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        server.stop()
