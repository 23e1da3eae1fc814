"""Make make test's S3 bucket (QART_TEST_S3_*), waiting up to 60 s for the server (pid S3_PID) to take it.

SeaweedFS answers on its S3 port a moment before the filer behind it can store anything: a bucket made is the sign
that it is ready. Exits non-zero with one line when the server stops or never gets there.
"""

from __future__ import annotations

import os
import sys
import time

import boto3
from botocore.config import Config

env = os.environ
s3 = boto3.client(
    "s3", endpoint_url=env["QART_TEST_S3_ENDPOINT_URL"], region_name="us-east-1",
    aws_access_key_id=env["QART_TEST_S3_ACCESS_KEY_ID"], aws_secret_access_key=env["QART_TEST_S3_SECRET_ACCESS_KEY"],
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5),
)
deadline = time.monotonic() + 60
while True:
    try:
        s3.create_bucket(Bucket=env["QART_TEST_S3_BUCKET"])
        break
    except Exception as exc:  # not up yet: refused, reset, or the filer not ready (500)
        try:
            os.kill(int(env["S3_PID"]), 0)
        except ProcessLookupError:
            sys.exit("SeaweedFS exited before its bucket could be made")
        if time.monotonic() > deadline:
            sys.exit(f"SeaweedFS took no bucket within 60 s: {exc}")
        time.sleep(0.2)
