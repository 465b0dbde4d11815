"""The S3 store against a real Ceph RGW: objects, multipart, the local cache in front of the
bucket, redirects, several stores, start-up checks, and what happens when the bucket
misbehaves (through a fault-injecting proxy)."""

import base64
import http.client
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import botocore.exceptions
import pytest
import requests

import s3_service
from harness import (ALICE, AUTHENTICATED, SERVER_NAME, STORE, Mxcd, assert_error, merge,
                     sha256, wait_until)
from s3_fault_proxy import Rule, S3FaultProxy
from test_delete import ADMIN_CONFIG, delete_ok
from test_memory import download_gib, upload_gib

MIB = 1024 * 1024

# These tests configure their stores themselves: one run is enough.
pytestmark = pytest.mark.skipif(STORE != "local", reason="runs once, with the default store")


@pytest.fixture
def s3():
    return s3_service.service()


@pytest.fixture
def bucket(s3):
    return s3.new_bucket()


@pytest.fixture
def proxy(s3):
    p = S3FaultProxy(s3.endpoint)
    yield p
    p.close()


def s3_config(s3, bucket_name, endpoint=None, **store):
    return {"stores": [s3.store_config(bucket_name, endpoint, **store)],
            "media": {"write_store": {"local_media": "bucket"}, "max_upload_size": "64MiB"}}


def key_of(data, prefix=""):
    digest = sha256(data)
    return f"{prefix}{digest[:2]}/{digest[2:4]}/{digest}"


def object_bytes(s3, bucket, key, **kw):
    return s3.client().get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


def drop_cache(server):
    shutil.rmtree(server.storage / "cache", ignore_errors=True)


def cached_path(server, data):
    digest = sha256(data)
    return server.storage / "cache" / "bucket" / "blobs" / digest[:2] / digest[2:4] / digest


def upload_cold(server, data):
    """Uploads data, then restarts the server with an empty cache: the next download is a
    miss that goes to the bucket."""
    media_id = server.upload_id(data)
    server.stop()
    drop_cache(server)
    server.start()
    return media_id


# --- objects in the bucket ---

def test_upload_is_an_object_that_boto3_reads_back(start_mxcd, s3, bucket):
    server = start_mxcd(s3_config(s3, bucket, prefix="media/mxcd/"))
    data = os.urandom(100_000)
    media_id = server.upload_id(data, content_type="image/png")
    key = key_of(data, "media/mxcd/")
    assert s3.keys(bucket) == [key]
    head = s3.client().head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == "image/png" and head["ContentLength"] == len(data)
    assert object_bytes(s3, bucket, key) == data
    assert server.db("SELECT store FROM blobs") == [("bucket",)]
    assert server.download(media_id).content == data


def test_identical_uploads_store_one_object(start_mxcd, s3, bucket, proxy):
    server = start_mxcd(s3_config(s3, bucket, proxy.url))
    data = b"the same bytes" * 1000
    ids = {server.upload_id(data) for _ in range(3)}
    assert len(ids) == 3
    assert s3.keys(bucket) == [key_of(data)]
    assert proxy.count("PUT") == 1  # the later uploads found the object with HEAD


def test_multipart_upload_with_parallel_parts(start_mxcd, s3, bucket, proxy):
    server = start_mxcd(s3_config(s3, bucket, proxy.url, multipart_threshold="5MiB",
                                  part_size="5MiB", parallel_parts=3))
    data = os.urandom(17 * MIB)
    media_id = server.upload_id(data)
    assert proxy.count("PUT", "partNumber=") == 4
    assert proxy.count("POST", "uploads") == 1
    assert object_bytes(s3, bucket, key_of(data)) == data
    assert s3.multipart_uploads(bucket) == []
    drop_cache(server)
    server.restart()
    assert server.download(media_id).content == data


def test_failed_part_aborts_the_multipart_upload(start_mxcd, s3, bucket, proxy):
    server = start_mxcd(s3_config(s3, bucket, proxy.url, multipart_threshold="5MiB",
                                  part_size="5MiB"))
    proxy.add(Rule("PUT", "partNumber=2", times=1, status=400, code="InvalidPart"))
    r = server.upload(os.urandom(12 * MIB))
    assert_error(r, 502, "M_UNKNOWN")
    assert proxy.count("DELETE", "uploadId=") == 1
    assert s3.multipart_uploads(bucket) == []
    assert s3.keys(bucket) == []
    assert server.media_count() == 0
    assert wait_until(lambda: server.tmp_files() == [])


def test_unfinished_multipart_uploads_are_aborted_at_start_up(start_mxcd, s3, bucket):
    """A killed upload leaves its multipart upload behind, and not every S3 server can hold a
    lifecycle rule that aborts it: mxcd aborts its own stale ones. Only its own: a key under
    the prefix that is not a blob key, and a recent upload, are left alone."""
    client = s3.client()

    def begin(key):
        return client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]

    stale_key = "mx/" + key_of(b"killed upload")
    begin(stale_key)
    foreign_key = "mx/exports/archive.tar"
    begin(foreign_key)
    outside_key = key_of(b"outside the prefix")
    begin(outside_key)
    time.sleep(9)
    recent_key = "mx/" + key_of(b"an upload under way")
    begin(recent_key)
    server = start_mxcd(s3_config(s3, bucket, prefix="mx", stale_multipart_age="8s"))
    assert server.wait_for_log("aborted 1 multipart upload(s)", timeout=20), server.log()
    left = sorted(u["Key"] for u in s3.multipart_uploads(bucket))
    assert left == sorted([foreign_key, outside_key, recent_key])


def test_virtual_hosted_addressing(start_mxcd, s3, bucket):
    server = start_mxcd(s3_config(s3, bucket, f"http://s3.localhost:{s3.port}",
                                  addressing="virtual"))
    data = os.urandom(50_000)
    media_id = server.upload_id(data)
    assert object_bytes(s3, bucket, key_of(data)) == data
    drop_cache(server)
    server.restart()
    assert server.download(media_id).content == data


def test_sse_c_objects_need_the_key(start_mxcd, s3, bucket):
    key = os.urandom(32)
    server = start_mxcd(s3_config(s3, bucket, encryption="sse-c",
                                  customer_key=base64.b64encode(key).decode()))
    data = os.urandom(30_000)
    media_id = server.upload_id(data)
    with pytest.raises(botocore.exceptions.ClientError):
        object_bytes(s3, bucket, key_of(data))
    assert object_bytes(s3, bucket, key_of(data), SSECustomerAlgorithm="AES256",
                        SSECustomerKey=key) == data
    drop_cache(server)
    server.restart()
    assert server.download(media_id).content == data


# --- the cache in front of the bucket ---

def test_cold_download_fills_the_cache_once_for_concurrent_clients(start_mxcd, s3, bucket, proxy):
    server = start_mxcd(s3_config(s3, bucket, proxy.url))
    data = os.urandom(8 * MIB)
    media_id = upload_cold(server, data)
    with ThreadPoolExecutor(max_workers=10) as pool:
        bodies = list(pool.map(lambda _: server.download(media_id).content, range(10)))
    assert all(body == data for body in bodies)
    assert proxy.count("GET", key_of(data)) == 1
    assert wait_until(cached_path(server, data).exists)
    # Served from the cache from now on, even with the bucket gone.
    proxy.go_down()
    assert server.download(media_id).content == data


def test_cache_survives_a_restart_and_serves_when_s3_is_down(start_mxcd, s3, bucket, proxy):
    server = start_mxcd(s3_config(s3, bucket, proxy.url))
    data = os.urandom(200_000)
    media_id = server.upload_id(data)  # a fresh upload lands in the cache
    server.stop()
    proxy.go_down()
    server.start()  # an unreachable bucket does not stop the server starting
    assert "cannot be reached" in server.log()
    assert server.download(media_id).content == data
    assert_error(server.upload(b"new bytes"), 503, "M_UNKNOWN")


def test_range_on_a_miss_fetches_only_the_range(start_mxcd, s3, bucket, proxy):
    server = start_mxcd(s3_config(s3, bucket, proxy.url))
    data = os.urandom(4 * MIB)
    media_id = upload_cold(server, data)
    r = server.download(media_id, headers={**ALICE, "Range": "bytes=3000000-3000099"})
    assert r.status_code == 206 and r.content == data[3000000:3000100]
    assert r.headers["Content-Range"] == f"bytes 3000000-3000099/{len(data)}"
    ranges = [rng for m, t, rng in proxy.requests if m == "GET" and key_of(data) in t]
    assert ranges == ["bytes=3000000-3000099"]
    assert not any((server.storage / "cache" / "bucket" / "blobs").rglob(sha256(data)))
    # A range from the start is the beginning of a whole download: it fills the cache.
    r = server.download(media_id, headers={**ALICE, "Range": "bytes=0-99"})
    assert r.status_code == 206 and r.content == data[:100]
    assert wait_until(lambda: any((server.storage / "cache" / "bucket" / "blobs").rglob(sha256(data))))


def test_head_does_not_fetch(start_mxcd, s3, bucket, proxy):
    server = start_mxcd(s3_config(s3, bucket, proxy.url))
    data = os.urandom(10_000)
    media_id = upload_cold(server, data)
    r = server.download(media_id, method="HEAD")
    assert r.status_code == 200 and r.headers["Content-Length"] == str(len(data))
    assert proxy.count("GET", key_of(data)) == 0


def test_missing_object_is_404_and_damaged_object_is_refused(start_mxcd, s3, bucket):
    server = start_mxcd(s3_config(s3, bucket))
    data, other = os.urandom(5000), os.urandom(5000)
    gone, damaged = server.upload_id(data), server.upload_id(other)
    s3.client().delete_object(Bucket=bucket, Key=key_of(data))
    s3.client().put_object(Bucket=bucket, Key=key_of(other), Body=b"x" * 5000)
    drop_cache(server)
    server.restart()
    assert_error(server.download(gone), 404, "M_NOT_FOUND")
    # The size is right, the bytes are not: the client never gets a complete wrong body.
    with pytest.raises(http.client.IncompleteRead):
        server.raw("GET", f"{AUTHENTICATED}/download/{SERVER_NAME}/{damaged}", headers=ALICE)
    assert "does not match its name" in server.log()
    assert not any((server.storage / "cache" / "bucket" / "blobs").rglob(sha256(other)))


# --- redirects ---

def test_presigned_redirect_keeps_type_and_disposition(start_mxcd, s3, bucket):
    server = start_mxcd(s3_config(s3, bucket, redirect="presigned", presigned_ttl="60s"))
    data = b"<html>not served inline</html>"
    media_id = server.upload_id(data, content_type="text/html", filename="page.html")
    r = server.download(media_id, allow_redirects=False)
    assert r.status_code == 307
    location = r.headers["Location"]
    assert location.startswith(s3.endpoint) and "X-Amz-Signature=" in location
    fetched = subprocess.run(["curl", "-sS", "-D", "-", location], capture_output=True,
                             check=True).stdout
    head, _, body = fetched.partition(b"\r\n\r\n")
    assert body == data
    head = head.decode().lower()
    assert "content-type: text/html" in head
    disposition = next(line for line in head.splitlines() if line.startswith("content-disposition:"))
    assert "attachment" in disposition and "page.html" in disposition  # never inline HTML
    # Legacy downloads redirect only when the client allows it.
    assert server.download(media_id, authenticated=False).status_code == 200
    r = server.download(media_id, authenticated=False, params={"allow_redirect": "true"},
                        allow_redirects=False)
    assert r.status_code == 307


def test_public_base_url_redirect(start_mxcd, s3, bucket):
    server = start_mxcd(s3_config(s3, bucket, prefix="m", redirect="public_base_url",
                                  public_base_url="https://cdn.example.org/media/"))
    data = b"public bytes"
    media_id = server.upload_id(data)
    r = server.download(media_id, allow_redirects=False)
    assert r.status_code == 307
    assert r.headers["Location"] == f"https://cdn.example.org/media/{key_of(data, 'm/')}"


# --- several stores ---

def test_changing_the_write_store_keeps_old_media_readable(start_mxcd, s3, bucket):
    server = start_mxcd()
    old = b"written to the local store"
    old_id = server.upload_id(old)
    server.stop()
    merge(server.config, s3_config(s3, bucket))
    server.write_config()
    server.start()
    new = b"written to the bucket"
    new_id = server.upload_id(new)
    assert server.download(old_id).content == old
    assert server.download(new_id).content == new
    assert s3.keys(bucket) == [key_of(new)]
    assert sorted(server.db("SELECT store FROM blobs")) == [("bucket",), ("local",)]


# --- start-up checks ---

@pytest.mark.parametrize("store,message", [
    ({"secret_access_key": "wrong-secret"}, "check secret_access_key"),
    ({"access_key_id": "nosuchkey"}, "access key ID is unknown"),
    ({"bucket": "no-such-bucket"}, 'Bucket "no-such-bucket" does not exist'),
])
def test_set_up_mistakes_stop_the_start_with_a_clear_message(tmp_path, homeserver, s3, bucket,
                                                             store, message):
    server = Mxcd(tmp_path / "mxcd", homeserver.url, s3_config(s3, bucket, **store))
    server.proc = subprocess.Popen([str(server.binary), "serve", "--config", str(server.config_path)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = server.proc.communicate(timeout=30)
    assert server.proc.returncode == 1
    assert "cannot start" in out and message in out, out


# --- faults ---

def test_s3_down_during_upload_leaves_nothing(start_mxcd, s3, bucket, proxy):
    server = start_mxcd(s3_config(s3, bucket, proxy.url, max_attempts=2))
    proxy.go_down()
    r = server.upload(os.urandom(100_000))
    assert_error(r, 503, "M_UNKNOWN")
    assert server.media_count() == 0
    assert wait_until(lambda: server.tmp_files() == [])
    proxy.come_back()
    assert s3.keys(bucket) == []


def test_slow_down_is_retried(start_mxcd, s3, bucket, proxy):
    server = start_mxcd(s3_config(s3, bucket, proxy.url))
    proxy.add(Rule("PUT", times=2, status=503, code="SlowDown"))
    data = os.urandom(20_000)
    media_id = server.upload_id(data)
    assert proxy.count("PUT") == 3
    assert object_bytes(s3, bucket, key_of(data)) == data
    assert server.download(media_id).content == data


def test_hanging_s3_times_out_cleanly(start_mxcd, s3, bucket, proxy):
    server = start_mxcd(s3_config(s3, bucket, proxy.url, read_timeout="1s", max_attempts=2))
    proxy.add(Rule("HEAD", times=5, hang=True))
    r = server.upload(b"will not land")
    assert_error(r, 503, "M_UNKNOWN")
    assert "timed out" in server.log()
    assert server.media_count() == 0
    assert server.healthy()


def test_background_uploads_survive_kill_and_outage(start_mxcd, s3, bucket, proxy):
    server = start_mxcd(s3_config(s3, bucket, proxy.url, durability="background"))
    proxy.go_down()
    blobs = [os.urandom(30_000 + i) for i in range(5)]
    ids = [server.upload_id(data) for data in blobs]  # acknowledged with the bucket down
    assert all(server.download(i).content == d for i, d in zip(ids, blobs))
    status = queue_status(server)
    assert "store bucket (bucket mxcd-test-" in status and ": 5 blob(s)" in status, status
    server.kill()
    proxy.come_back()
    server.start()
    assert wait_until(lambda: len(s3.keys(bucket)) == 5, timeout=30), server.log()
    for data in blobs:
        assert object_bytes(s3, bucket, key_of(data)) == data
    assert wait_until(lambda: ": 0 blob(s), 0 bytes waiting" in queue_status(server)), queue_status(server)
    assert "queued blob" in server.log()


def queue_status(server):
    return subprocess.run([str(server.binary), "s3", "queue", "--config", str(server.config_path)],
                          capture_output=True, text=True, check=True).stdout


# --- deletion ---

def test_deleted_media_leaves_the_bucket_and_the_cache(start_mxcd, s3, bucket, proxy):
    server = start_mxcd(merge(s3_config(s3, bucket, proxy.url), ADMIN_CONFIG))
    data = os.urandom(100_000)
    media_id = server.upload_id(data)
    assert cached_path(server, data).exists()
    delete_ok(server, media_id)
    assert wait_until(lambda: s3.keys(bucket) == [], timeout=30), server.log()
    assert not cached_path(server, data).exists()
    assert proxy.count("DELETE", key_of(data)) == 1


def test_deletion_waits_for_an_unreachable_bucket(start_mxcd, s3, bucket, proxy):
    server = start_mxcd(merge(s3_config(s3, bucket, proxy.url, max_attempts=1), ADMIN_CONFIG))
    data = os.urandom(10_000)
    media_id = server.upload_id(data)
    proxy.go_down()
    delete_ok(server, media_id)
    assert server.wait_for_log(f"could not delete blob {sha256(data)}", timeout=10), server.log()
    assert s3.keys(bucket) == [key_of(data)]
    proxy.come_back()
    # Any later deletion starts a round, which retries the one that failed.
    delete_ok(server, server.upload_id(b"another"))
    assert wait_until(lambda: s3.keys(bucket) == [], timeout=30), server.log()


def test_bytes_uploaded_while_being_deleted_are_stored_again(start_mxcd, s3, bucket, proxy):
    server = start_mxcd(merge(s3_config(s3, bucket, proxy.url), ADMIN_CONFIG))
    data = os.urandom(30_000)
    media_id = server.upload_id(data)
    proxy.add(Rule("DELETE", key_of(data), delay=2))
    delete_ok(server, media_id)
    assert wait_until(lambda: proxy.count("DELETE", key_of(data)) == 1)
    # The object still exists while its deletion is held up: the upload must not count on it.
    again = server.upload_id(data)
    assert server.wait_for_log(f"deleted blob {sha256(data)}")
    assert s3.keys(bucket) == [key_of(data)]
    server.stop()
    drop_cache(server)
    server.start()
    assert server.download(again).content == data


def test_media_deleted_before_its_background_upload_never_reaches_the_bucket(start_mxcd, s3,
                                                                             bucket, proxy):
    server = start_mxcd(merge(s3_config(s3, bucket, proxy.url, durability="background",
                                        max_attempts=1), ADMIN_CONFIG))
    proxy.add(Rule("PUT", times=1000, status=500, code="InternalError"))
    data = os.urandom(40_000)
    media_id = server.upload_id(data)
    assert server.wait_for_log("not uploaded yet")  # the queue waits 2 s before trying again
    delete_ok(server, media_id)
    assert server.wait_for_log(f"deleted blob {sha256(data)}", timeout=10), server.log()
    assert not cached_path(server, data).exists()
    proxy.rules.clear()
    other = os.urandom(1000)
    server.upload_id(other)
    assert wait_until(lambda: s3.keys(bucket) == [key_of(other)], timeout=30), server.log()
    server.restart()  # the persistent queue forgot the deleted blob too
    assert wait_until(lambda: ": 0 blob(s), 0 bytes waiting" in queue_status(server))
    assert s3.keys(bucket) == [key_of(other)]


# --- memory ---

def test_one_gib_upload_into_s3_and_cold_download(start_mxcd, s3, bucket):
    server = start_mxcd({**s3_config(s3, bucket), "media": {"max_upload_size": "2GiB",
                                                           "write_store": {"local_media": "bucket"}}},
                        release=True)
    media_id, digest = upload_gib(server)
    server.stop()
    drop_cache(server)
    server.start()
    download_gib(server, media_id, digest)
    s3.client().delete_object(Bucket=bucket, Key=f"{digest[:2]}/{digest[2:4]}/{digest}")
