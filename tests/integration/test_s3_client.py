"""Runs the S3 client's C++ tests (tests/s3/s3_client_test.cpp) against the session's Ceph
RGW, with both addressing styles, and fetches the presigned URL they print with curl."""

import os
import re
import subprocess

import pytest

import s3_service
from harness import REPO, STORE

pytestmark = pytest.mark.skipif(STORE != "local", reason="runs once, with the default store")


def client_tests():
    path = os.environ.get("MXCD_S3_CLIENT_TESTS", str(REPO / "build/asan/mxcd_s3_client_tests"))
    if not os.path.isfile(path):
        pytest.fail(f"{path} does not exist: build it first (scripts/build.sh)")
    return path


@pytest.mark.parametrize("virtual", [False, True], ids=["path-style", "virtual-hosted"])
def test_client_operations(virtual):
    s3 = s3_service.service()
    bucket = s3.new_bucket()
    env = dict(os.environ, MXCD_TEST_S3_BUCKET=bucket,
               MXCD_TEST_S3_ENDPOINT=f"http://s3.localhost:{s3.port}" if virtual else s3.endpoint,
               MXCD_TEST_S3_ACCESS_KEY=s3.access_key, MXCD_TEST_S3_SECRET_KEY=s3.secret_key)
    if virtual:
        env["MXCD_TEST_S3_VIRTUAL"] = "1"
    run = subprocess.run([client_tests()], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "[  PASSED  ] 8 tests" in run.stdout, run.stdout

    url = re.search(r"^PRESIGNED (\S+)$", run.stdout, re.M).group(1)
    fetched = subprocess.run(["curl", "-sS", "-D", "-", url], capture_output=True, check=True).stdout
    head, _, body = fetched.partition(b"\r\n\r\n")
    assert body == b"fetched with curl"
    head = head.decode().lower()
    assert head.startswith("http/1.1 200")
    assert "content-type: text/plain" in head
    assert 'content-disposition: attachment; filename="a b.txt"' in head
