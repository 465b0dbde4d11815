"""Blobs damaged on disk: the scrubber re-hashes the local copies in the background and takes
a damaged one out of service (a local store's file is set aside until an upload of the same
bytes replaces it; an S3 store's cached copy is dropped and fetched again from the bucket),
and `mxcd verify` checks a store on demand."""

import os
import subprocess

import pytest

from harness import SANITIZER_MARKERS, STORE, assert_error, server_env, sha256, wait_until

# Fast enough to go over a test's few blobs many times a second.
FAST_SCRUB = {"scrub": {"enabled": True, "bytes_per_second": "100MiB", "interval": "200ms"}}

local_only = pytest.mark.skipif(STORE != "local", reason="the local store's files")
s3_only = pytest.mark.skipif(STORE != "s3", reason="an S3 store's cached copies")


def blob_path(server, data):
    digest = sha256(data)
    return server.storage / "blobs" / digest[:2] / digest[2:4] / digest


def cached_path(server, data):
    digest = sha256(data)
    return server.storage / "cache" / "bucket" / "blobs" / digest[:2] / digest[2:4] / digest


def object_key(data):
    digest = sha256(data)
    return f"{digest[:2]}/{digest[2:4]}/{digest}"


def flip_byte(path, offset=1000):
    """Damages the file in place (same inode, same size), as a failing disk would."""
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x5A]))


def file_digest(path):
    return sha256(path.read_bytes())


def damage(server, data):
    """The stored blob (the file, or the bucket's object) gets one wrong byte."""
    if server.bucket:
        bad = bytearray(data)
        bad[1000] ^= 0x5A
        server.s3.client().put_object(Bucket=server.bucket, Key=object_key(data), Body=bytes(bad))
    else:
        flip_byte(blob_path(server, data))


def lose(server, data):
    """The stored blob disappears."""
    if server.bucket:
        server.s3.client().delete_object(Bucket=server.bucket, Key=object_key(data))
    else:
        blob_path(server, data).unlink()


def verify(server, *args):
    result = subprocess.run(
        [str(server.binary), "verify", "--config", str(server.config_path), "--progress", "lines",
         "--progress-interval", "1", *args],
        capture_output=True, text=True, env=server_env(), timeout=120)
    for marker in SANITIZER_MARKERS:
        assert marker not in result.stderr, result.stderr
    return result


def totals(result):
    """The report's totals by label: {"bad": "1", "checked": "3 blobs, ...", ...}."""
    lines = [line.split(":", 1) for line in result.stdout.splitlines()]
    return {label: value.strip() for label, value in (l for l in lines if len(l) == 2)
            if label in ("checked", "good", "bad", "missing", "unreadable")}


# --- the scrubber on the local store ---

@local_only
def test_scrubber_sets_a_damaged_blob_aside_and_an_upload_of_the_same_bytes_repairs_it(start_mxcd):
    server = start_mxcd(FAST_SCRUB)
    data = os.urandom(300_000)
    media_id = server.upload_id(data)
    path = blob_path(server, data)
    flip_byte(path)
    digest = sha256(data)

    # Reported at error level, naming the hash and the file, and set aside.
    damaged = server.storage / "damaged" / digest
    assert wait_until(damaged.exists, timeout=30), server.log()
    error_lines = [line for line in server.log().splitlines()
                   if " error " in line and digest in line and str(path) in line]
    assert error_lines, server.log()
    assert not path.exists()
    # The damaged bytes are no longer served.
    assert_error(server.download(media_id), 404, "M_NOT_FOUND")

    # An upload of the same bytes puts a good copy back, checked on its way in.
    assert server.upload_id(data) != media_id
    assert file_digest(path) == digest
    assert not damaged.exists()
    response = server.download(media_id)
    assert response.status_code == 200
    assert response.content == data
    # And the scrubber finds nothing more to set aside.
    log_size = len(server.log())
    assert server.wait_for_log("scrub: pass done", timeout=10)
    assert wait_until(lambda: "0 damaged" in server.log()[log_size:], timeout=10), server.log()
    assert path.exists() and not damaged.exists()


@local_only
def test_an_upload_replaces_a_damaged_blob_the_scrubber_has_not_found(start_mxcd):
    # No scrubber: a new upload of the same bytes must not trust the file that is there.
    server = start_mxcd()
    data = os.urandom(200_000)
    media_id = server.upload_id(data)
    flip_byte(blob_path(server, data))
    assert server.download(media_id).content != data  # served as stored: nothing hashes downloads

    server.upload_id(data)
    assert file_digest(blob_path(server, data)) == sha256(data)
    response = server.download(media_id)
    assert response.status_code == 200
    assert response.content == data


# --- the scrubber on an S3 store's cache ---

@s3_only
def test_scrubber_drops_a_damaged_cached_copy_and_the_next_read_fetches_the_object(start_mxcd):
    server = start_mxcd(FAST_SCRUB)
    data = os.urandom(300_000)
    media_id = server.upload_id(data)  # the upload becomes the cached copy
    path = cached_path(server, data)
    assert path.exists()
    flip_byte(path)
    digest = sha256(data)

    assert server.wait_for_log(f"the damaged cached copy {path} of blob {digest} is dropped",
                               timeout=30), server.log()
    assert any(" error " in line and digest in line and "is damaged" in line
               for line in server.log().splitlines())
    response = server.download(media_id)
    assert response.status_code == 200
    assert response.content == data
    # Fetched again from the bucket into the cache, intact.
    assert wait_until(lambda: path.exists() and file_digest(path) == digest, timeout=10)


# --- mxcd verify ---

def test_verify_reports_a_bad_and_a_missing_blob_and_exits_1(start_mxcd):
    server = start_mxcd()
    good, bad, missing = (os.urandom(50_000 + i) for i in range(3))
    for data in (good, bad, missing):
        server.upload_id(data)
    damage(server, bad)
    lose(server, missing)

    result = verify(server)
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"bad blob {sha256(bad)}") for line in lines), result.stdout
    assert any(line.startswith(f"missing blob {sha256(missing)}") for line in lines), result.stdout
    assert not any(sha256(good) in line for line in lines), result.stdout
    report = totals(result)
    assert report["checked"].startswith("3 blobs"), result.stdout
    assert (report["good"], report["bad"], report["missing"], report["unreadable"]) == \
        ("1", "1", "1", "0"), result.stdout
    assert "verify:" in result.stderr and "blobs" in result.stderr  # the progress lines

    # Asked about the one store only, the same; about the other store's blobs only: none.
    assert verify(server, "--store", "bucket" if server.bucket else "local").returncode == 1
    assert verify(server, "--store", "nowhere").returncode == 2


def test_verify_of_an_intact_store_exits_0_beside_a_running_server(start_mxcd):
    server = start_mxcd()
    blobs = [os.urandom(70_000 + i) for i in range(2)]
    for data in blobs:
        server.upload_id(data)
    tmp_before = server.tmp_files()

    result = verify(server)
    assert result.returncode == 0, (result.stdout, result.stderr)
    report = totals(result)
    assert report["checked"].startswith("2 blobs"), result.stdout
    assert (report["good"], report["bad"], report["missing"]) == ("2", "0", "0"), result.stdout
    # It reads only: the running server's files and its answers stay as they were.
    assert server.tmp_files() == tmp_before
    assert server.healthy()
