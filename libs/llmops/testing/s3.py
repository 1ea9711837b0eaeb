"""An S3-compatible server on loopback for tests (moto in server mode): real HTTP S3 calls
through botocore, s3fs and the Delta Lake writer, against buckets that live in its memory. The
standard `AWS_*` variables point every client at it."""

from __future__ import annotations

import os
import uuid

from llmops.testing.services import free_port

BUCKET = "llmops-tests"
ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}


class S3Server:
    def __init__(self):
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._saved: dict[str, str | None] = {}
        self._bucket_made = False

    def start(self) -> S3Server:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
        self._server.start()
        for k, v in {**ENV, "AWS_ENDPOINT_URL": self.endpoint}.items():
            self._saved[k] = os.environ.get(k)
            os.environ[k] = v
        return self

    def location(self) -> str:
        """A new empty place in the test bucket, `s3://llmops-tests/<random>` (services under test
        allow-list `s3://llmops-tests/`)."""
        import boto3

        if not self._bucket_made:
            boto3.client("s3", endpoint_url=self.endpoint).create_bucket(Bucket=BUCKET)
            self._bucket_made = True
        return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"

    def stop(self) -> None:
        self._server.stop()
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
