"""The S3 server of the test session: one Ceph RGW (tests/services/s3-server.sh), started on
first use and stopped when the session ends, with a fresh bucket for every test that asks."""

import atexit
import itertools
import json
import subprocess
import tempfile
from pathlib import Path

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "services" / "s3-server.sh"
REGION = "us-east-1"

_service = None
_bucket_numbers = itertools.count(1)


class S3Service:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="mxcd-rgw-"))
        out = subprocess.run([str(SCRIPT), "start", str(self.dir)], check=True,
                             capture_output=True, text=True, timeout=120).stdout.split()
        self.endpoint, self.access_key, self.secret_key = out[-3:]
        self.port = int(self.endpoint.rsplit(":", 1)[1])
        self.users = {}  # uid -> (access key, secret key) of the users made by user()

    def stop(self):
        subprocess.run([str(SCRIPT), "stop", str(self.dir)], check=False, timeout=60)

    def client(self, virtual=False):
        endpoint = f"http://s3.localhost:{self.port}" if virtual else self.endpoint
        return boto3.client(
            "s3", endpoint_url=endpoint, region_name=REGION,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "virtual" if virtual else "path"},
                          retries={"max_attempts": 1}))

    def new_bucket(self):
        name = f"mxcd-test-{next(_bucket_numbers)}"
        self.client().create_bucket(Bucket=name)
        return name

    def store_config(self, bucket_name, endpoint=None, **overrides):
        """A stores: entry for mxcd, path style on 127.0.0.1 unless overridden."""
        config = {"name": "bucket", "type": "s3", "endpoint": endpoint or self.endpoint,
                  "region": REGION, "bucket": bucket_name, "addressing": "path",
                  "access_key_id": self.access_key, "secret_access_key": self.secret_key,
                  "connect_timeout": "2s", "read_timeout": "5s"}
        config.update(overrides)
        return config

    def keys(self, bucket, prefix=""):
        s3 = self.client()
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return sorted(keys)

    def multipart_uploads(self, bucket):
        return self.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])

    def object_versions(self, bucket):
        """Every version and delete marker in the bucket, as (key, version ID) pairs."""
        answer = self.client().list_object_versions(Bucket=bucket)
        return [(v["Key"], v["VersionId"])
                for v in answer.get("Versions", []) + answer.get("DeleteMarkers", [])]

    def user(self, uid):
        """Another RGW user, made on first use: (access key, secret key). It owns nothing, so
        it reaches other users' buckets only as their bucket policies allow."""
        if uid not in self.users:
            access_key, secret_key = f"{uid}accesskey", f"{uid}secretkey0123456789"
            subprocess.run(["radosgw-admin", "-c", str(self.dir / "ceph.conf"), "user", "create",
                            f"--uid={uid}", f"--display-name={uid}", f"--access-key={access_key}",
                            f"--secret={secret_key}"],
                           check=True, capture_output=True, timeout=60)
            self.users[uid] = (access_key, secret_key)
        return self.users[uid]

    def allow_read_only(self, bucket, uid):
        """A bucket policy that lets user uid list the bucket and read its objects, no more."""
        principal = {"AWS": [f"arn:aws:iam:::user/{uid}"]}
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": principal, "Action": ["s3:ListBucket"],
             "Resource": [f"arn:aws:s3:::{bucket}"]},
            {"Effect": "Allow", "Principal": principal, "Action": ["s3:GetObject"],
             "Resource": [f"arn:aws:s3:::{bucket}/*"]},
        ]}
        self.client().put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def service():
    global _service
    if _service is None:
        _service = S3Service()
        atexit.register(_service.stop)
    return _service
