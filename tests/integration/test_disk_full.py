"""A full disk under storage.path, where every upload is written first (the local store's
blobs, an S3 store's spool and cache): each instance gets a tmpfs of its own there
(harness.on_small_disk), filled by the test through the process's root. Uploads that would
not leave storage.free_space_reserve free are refused with 507, a write that finds no space
is 507, nothing is left behind, health says degraded, downloads go on, and an S3 store's
cached copies make room before an upload is refused."""

import errno
import json
import os
import re
import subprocess

import pytest

import s3_service
from harness import (ALICE, STORE, RawConnection, assert_error, media_id_of, on_small_disk,
                     parse_raw, raw_error, request_head, sha256, wait_until)

MIB = 1024 * 1024
UPLOAD = "/_matrix/media/v3/upload"
DISK = "size=32m"
RESERVE = 8 * MIB
CONFIG = {"storage": {"free_space_reserve": "8MiB"}, "media": {"max_upload_size": "64MiB"}}
NO_SPACE = "The server has no space left to store this file"


@pytest.fixture(scope="module", autouse=True)
def small_disks_can_be_mounted(tmp_path_factory):
    """Mounting a tmpfs takes root, or user namespaces where root is not at hand."""
    mount_point = tmp_path_factory.mktemp("small-disk")
    probe = subprocess.run(on_small_disk("size=1m", mount_point, ["true"]),
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("cannot mount a tmpfs in a mount namespace of its own (needs root or "
                    f"unprivileged user namespaces): {probe.stderr.strip()}")


def available(server):
    s = os.statvfs(server.storage)
    return s.f_bavail * s.f_frsize


def fill(server, leave):
    """Writes a filler file into storage.path until only `leave` bytes are free."""
    filler = server.storage / "filler"
    with open(filler, "ab") as f:
        f.write(b"\0" * max(0, available(server) - leave))
    assert available(server) <= leave + 64 * 1024
    return filler


def assert_no_space(response):
    assert_error(response, 507, "M_UNKNOWN")
    assert response.json()["error"] == NO_SPACE


def assert_nothing_left(server):
    assert server.media_count() == 0
    assert server.tmp_files() == []
    assert server.db("SELECT COUNT(*) FROM blobs")[0][0] == 0


def test_an_upload_that_would_not_fit_is_refused_before_its_body(start_mxcd):
    server = start_mxcd(CONFIG, small_disk=DISK)
    fits = available(server) - RESERVE
    conn = RawConnection(server)
    # No body follows: the answer must come from Content-Length alone, with no 100 Continue.
    conn.send(request_head("POST", UPLOAD, [f"Content-Length: {fits + 1}",
                                            "Expect: 100-continue"]))
    raw = conn.read_response()
    conn.close()
    assert raw_error(raw) == (507, "M_UNKNOWN")
    assert json.loads(parse_raw(raw)[2])["error"] == NO_SPACE
    assert_nothing_left(server)
    # What fits is stored.
    data = os.urandom(4 * MIB)
    media_id = server.upload_id(data)
    assert server.download(media_id).content == data


def test_a_chunked_upload_is_refused_when_it_reaches_the_reserve(start_mxcd):
    server = start_mxcd(CONFIG, small_disk=DISK)
    before = available(server)
    conn = RawConnection(server)
    conn.send(request_head("POST", UPLOAD, ["Transfer-Encoding: chunked"]))
    piece = os.urandom(256 * 1024)
    chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
    sent = conn.send_until_answered([chunk] * 160)  # 40 MiB, more than the disk holds
    assert sent < 160 * len(chunk), "the server did not answer before the end of the body"
    raw, _ = conn.read_until_closed()
    conn.close()
    assert raw_error(raw) == (507, "M_UNKNOWN")
    # The partial spool or temporary file is gone and its space is free again.
    assert wait_until(lambda: server.tmp_files() == [])
    assert available(server) >= before - MIB
    assert_nothing_left(server)
    assert server.healthy()


def test_a_write_that_finds_no_space_is_507_and_leaves_nothing(start_mxcd):
    # Out of inodes: the space check passes, creating the upload's file fails with ENOSPC.
    server = start_mxcd(CONFIG, small_disk=DISK + ",nr_inodes=400")
    fillers = server.storage / "fillers"
    fillers.mkdir()
    count = 0
    with pytest.raises(OSError) as full:
        while True:
            (fillers / str(count)).touch()
            count += 1
    assert full.value.errno == errno.ENOSPC
    assert_no_space(server.upload(b"x" * 1000))
    assert_no_space(server.request("POST", UPLOAD, data=iter([b"y" * 70000]), headers=ALICE))
    assert_nothing_left(server)
    for name in range(count):
        (fillers / str(name)).unlink()
    assert server.download(server.upload_id(b"x" * 1000)).content == b"x" * 1000


def test_health_is_degraded_below_the_reserve_and_downloads_go_on(start_mxcd):
    server = start_mxcd(CONFIG, small_disk=DISK)
    data = os.urandom(MIB)
    media_id = server.upload_id(data)
    filler = fill(server, RESERVE - MIB)
    r = server.get("/_mxcd/health")
    assert r.status_code == 200  # still serving: a load balancer keeps it
    assert r.json()["status"] == "degraded"
    assert re.fullmatch(r"storage: \d+\.\d MiB free, below the reserve of 8\.0 MiB",
                        r.json()["error"]), r.json()
    assert server.download(media_id).content == data
    assert_no_space(server.upload(b"z"))
    assert server.media_count() == 1
    filler.unlink()
    assert server.get("/_mxcd/health").json() == {"status": "ok"}
    assert server.download(server.upload_id(b"z")).content == b"z"


@pytest.mark.skipif(STORE != "local", reason="configures its own S3 store: runs once")
def test_cached_copies_make_room_before_an_upload_is_refused(start_mxcd):
    s3 = s3_service.service()
    bucket = s3.new_bucket()
    server = start_mxcd({**CONFIG, "stores": [s3.store_config(bucket)],
                         "media": {"max_upload_size": "64MiB",
                                   "write_store": {"local_media": "bucket"}}},
                        small_disk="size=40m")
    cache = server.storage / "cache" / "bucket" / "blobs"
    cached = [os.urandom(6 * MIB) for _ in range(3)]
    ids = [server.upload_id(data) for data in cached]  # each stays in the cache
    assert all(any(cache.rglob(sha256(data))) for data in cached)
    # Less free than the upload and the reserve need, but enough once one copy is dropped.
    filler = fill(server, RESERVE + 4 * MIB)
    data = os.urandom(8 * MIB)
    r = server.upload(data)
    assert r.status_code == 200, r.text
    # The least recently used copy made room; the others stayed.
    assert not any(cache.rglob(sha256(cached[0])))
    assert all(any(cache.rglob(sha256(d))) for d in cached[1:])
    filler.unlink()
    # The dropped copy is still in the bucket.
    for media_id, expected in zip(ids + [media_id_of(r)], cached + [data]):
        assert server.download(media_id).content == expected


@pytest.mark.skipif(STORE == "s3", reason="an S3 store's cached copies would make room")
def test_with_nothing_to_drop_an_upload_past_the_reserve_is_refused(start_mxcd):
    server = start_mxcd(CONFIG, small_disk=DISK)
    stored = [server.upload_id(os.urandom(4 * MIB)) for _ in range(3)]
    fill(server, RESERVE + 2 * MIB)
    r = server.request("POST", UPLOAD, data=os.urandom(3 * MIB), headers=ALICE)
    assert_no_space(r)
    assert server.media_count() == 3
    assert server.tmp_files() == []
    assert all(server.download(media_id).status_code == 200 for media_id in stored)
