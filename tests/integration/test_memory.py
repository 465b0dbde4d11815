"""Memory stays bounded whatever the file size (release build: the sanitizers inflate RSS)."""

import hashlib
import os

import pytest
import requests

from conftest import ALICE

GIB = 1024 ** 3
LIMIT = 64 * 1024 ** 2


def peak_rss(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def generated(total, digest):
    block = os.urandom(1024 * 1024)
    for _ in range(total // len(block)):
        digest.update(block)
        yield block


@pytest.fixture
def server(start_mxcd):
    s = start_mxcd({"media": {"max_upload_size": "2GiB"}}, release=True)
    # Warm up: the first requests allocate the server's fixed structures.
    media_id = s.upload_id(b"w" * 1_000_000)
    assert s.download(media_id).status_code == 200
    return s


def test_one_gib_upload_and_download(server):
    before = peak_rss(server.pid)
    sent = hashlib.sha256()
    r = requests.post(server.url + "/_matrix/media/v3/upload", data=generated(GIB, sent),
                      headers=ALICE, timeout=600)
    assert r.status_code == 200
    after_upload = peak_rss(server.pid)
    assert after_upload - before < LIMIT, f"upload grew peak RSS by {after_upload - before} bytes"

    media_id = r.json()["content_uri"].rsplit("/", 1)[1]
    received = hashlib.sha256()
    length = 0
    with requests.get(f"{server.url}/_matrix/client/v1/media/download/test.local/{media_id}",
                      headers=ALICE, stream=True, timeout=600) as d:
        assert d.status_code == 200
        for chunk in d.iter_content(1024 * 1024):
            received.update(chunk)
            length += len(chunk)
    assert length == GIB and received.hexdigest() == sent.hexdigest()
    after_download = peak_rss(server.pid)
    assert after_download - after_upload < LIMIT, (
        f"download grew peak RSS by {after_download - after_upload} bytes")
