"""Blobs adopted in place: objects already in the bucket at keys of their own (as
synapse-s3-storage-provider leaves them), recorded with their location instead of being copied,
named by their hash when it is known and by an unhashed id when it is not. They are served,
checked, cached and deleted where they are, and the bucket never gets a copy.

The rows are written straight into the metadata database, as `mxcd import synapse` records
them. Runs in the S3 pass (MXCD_TEST_STORE=s3), on both databases."""

import http.client
import io
import os

import pytest
from PIL import Image

from harness import (ALICE, AUTHENTICATED, SERVER_NAME, STORE, assert_error, disposition,
                     sha256, wait_until)
from test_delete import ADMIN_CONFIG, delete_ok

pytestmark = pytest.mark.skipif(STORE != "s3", reason="adopted objects live in an S3 bucket")

STORE_NAME = "bucket"  # the name harness gives the S3 store
CREATED_TS = 1_700_000_000_000


def unhashed_id(location):
    """mxcd's name for an object whose hash is not known yet."""
    return "unhashed-" + sha256(f"{STORE_NAME}\n{location}".encode())


def synapse_key(media_id):
    """Where synapse-s3-storage-provider keeps a local media file (prefix "synapse")."""
    return f"synapse/local_content/{media_id[:2]}/{media_id[2:4]}/{media_id[4:]}"


class Adopted:
    """An object put into the bucket and its rows, as the importer records them."""

    def __init__(self, media_id, data, blob_id=None, size=None, content_type="text/plain",
                 filename=None):
        self.media_id = media_id
        self.data = data
        self.key = synapse_key(media_id)
        self.blob_id = blob_id or unhashed_id(self.key)
        self.size = len(data) if size is None else size
        self.content_type = content_type
        self.filename = filename

    def record(self, server):
        server.s3.client().put_object(Bucket=server.bucket, Key=self.key, Body=self.data)
        server.db_write("INSERT INTO blobs (sha256, size, store, created_ts, location) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (self.blob_id, self.size, STORE_NAME, CREATED_TS, self.key))
        server.db_write("INSERT INTO media (server_name, media_id, sha256, content_type, "
                        "upload_name, uploader, created_ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (SERVER_NAME, self.media_id, self.blob_id, self.content_type,
                         self.filename, "@alice:test.local", CREATED_TS))


def adopt(server, *objects):
    """Records the objects in the stopped server's database, then starts it."""
    server.stop()
    for o in objects:
        o.record(server)
    server.start()


def cached_file(server, blob_id):
    digits = blob_id.removeprefix("unhashed-")
    return server.storage / "cache" / STORE_NAME / "blobs" / digits[:2] / digits[2:4] / blob_id


@pytest.fixture
def server(start_mxcd):
    return start_mxcd(ADMIN_CONFIG)


def test_adopted_objects_are_served_from_where_they_are(server):
    unhashed = Adopted("AbCdEfGhIjKlMnOpQrStUvWx", os.urandom(300_000), filename="notes.txt")
    hashed_data = os.urandom(200_000)
    hashed = Adopted("ZyXwVuTsRqPoNmLkJiHgFeDc", hashed_data, blob_id=sha256(hashed_data),
                     content_type="application/pdf", filename="report.pdf")
    adopt(server, unhashed, hashed)
    keys = sorted([unhashed.key, hashed.key])
    assert server.s3.keys(server.bucket) == keys

    for o in (unhashed, hashed):
        # A range on a miss is fetched alone, from the object's own key.
        r = server.download(o.media_id, headers={**ALICE, "Range": "bytes=1000-1999"})
        assert r.status_code == 206, r.text
        assert r.content == o.data[1000:2000]
        assert r.headers["Content-Range"] == f"bytes 1000-1999/{len(o.data)}"

        r = server.download(o.media_id)
        assert r.status_code == 200, r.text
        assert r.content == o.data
        # text/plain is a bare text type: served as UTF-8 (docs/http-api.md).
        served = {"text/plain": "text/plain; charset=UTF-8"}.get(o.content_type, o.content_type)
        assert r.headers["Content-Type"] == served
        assert disposition(r.headers["Content-Disposition"])[1] == o.filename
        assert r.headers["ETag"] == f'"{o.blob_id}"'
        assert wait_until(lambda: cached_file(server, o.blob_id).exists()), server.log()

        r = server.download(o.media_id, headers={**ALICE, "Range": "bytes=-10"})
        assert r.status_code == 206 and r.content == o.data[-10:]

    # Served and cached, and still no other object: nothing was copied.
    assert server.s3.keys(server.bucket) == keys

    # The cache keeps the unhashed blob across a restart and serves it without the bucket.
    server.restart()
    assert cached_file(server, unhashed.blob_id).exists()
    server.s3.client().delete_object(Bucket=server.bucket, Key=unhashed.key)
    assert server.download(unhashed.media_id).content == unhashed.data
    assert "not a cached blob" not in server.log()


def test_adopted_image_gets_thumbnails(server):
    picture = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").save(picture, "PNG")
    image = Adopted("ImAgEaDoPtEdInPlAcE00001", picture.getvalue(), content_type="image/png")
    adopt(server, image)
    r = server.get(f"{AUTHENTICATED}/thumbnail/{SERVER_NAME}/{image.media_id}",
                   params={"width": 32, "height": 32, "method": "scale"}, headers=ALICE)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("image/")
    assert image.key in server.s3.keys(server.bucket)


def test_hashed_object_whose_bytes_do_not_match_its_name_is_never_served_complete(server):
    real, stored = os.urandom(5000), os.urandom(5000)
    wrong = Adopted("WrOnGbYtEsUnDeRtHiShAsH", stored, blob_id=sha256(real))
    adopt(server, wrong)
    with pytest.raises(http.client.IncompleteRead):
        server.raw("GET", f"{AUTHENTICATED}/download/{SERVER_NAME}/{wrong.media_id}",
                   headers=ALICE)
    assert wait_until(lambda: "does not match its name" in server.log()), server.log()
    assert wrong.key in server.log(), "the log names the object"
    assert not cached_file(server, wrong.blob_id).exists()


def test_unhashed_object_of_the_wrong_size_is_never_served_complete(server):
    # Without a hash to check, the recorded size is what the bytes must match.
    longer = Adopted("LoNgErThAnReCoRdEd000001", os.urandom(6000), size=5000)
    shorter = Adopted("ShOrTeRtHaNrEcOrDeD00001", os.urandom(4000), size=5000)
    adopt(server, longer, shorter)
    for o in (longer, shorter):
        # Cut off mid-body, or refused before the first byte when the first piece of the
        # object is already too long: either way never a complete 200.
        try:
            answer = server.raw("GET", f"{AUTHENTICATED}/download/{SERVER_NAME}/{o.media_id}",
                                headers=ALICE)
        except http.client.IncompleteRead:
            pass
        else:
            assert answer.status_code != 200, o.media_id
        assert not cached_file(server, o.blob_id).exists()
    assert wait_until(lambda: "has 4000 bytes, 5000 expected" in server.log()), server.log()


def test_deleting_adopted_media_removes_its_object_and_nothing_else(server):
    unhashed = Adopted("DeLeTeMeUnHaShEd00000001", os.urandom(10_000))
    hashed_data = os.urandom(10_000)
    hashed = Adopted("DeLeTeMeHaShEd0000000001", hashed_data, blob_id=sha256(hashed_data))
    kept = Adopted("KeEpMeAdOpTeD00000000001", os.urandom(10_000))
    stranger = "synapse/local_content/zz/yy/notrecordedbymxcd"
    server.s3.client().put_object(Bucket=server.bucket, Key=stranger, Body=b"not ours")
    adopt(server, unhashed, hashed, kept)
    uploaded = os.urandom(1000)
    upload_id = server.upload_id(uploaded)
    before = server.s3.keys(server.bucket)
    assert len(before) == 5

    assert server.download(unhashed.media_id).content == unhashed.data  # cached now
    delete_ok(server, unhashed.media_id)
    assert wait_until(lambda: unhashed.key not in server.s3.keys(server.bucket), timeout=30), \
        server.log()
    assert not cached_file(server, unhashed.blob_id).exists()
    assert wait_until(lambda: server.db("SELECT COUNT(*) FROM blobs WHERE sha256 = ?",
                                        (unhashed.blob_id,))[0][0] == 0), server.log()

    delete_ok(server, hashed.media_id)
    assert wait_until(lambda: hashed.key not in server.s3.keys(server.bucket), timeout=30), \
        server.log()
    assert server.s3.keys(server.bucket) == sorted(set(before) - {unhashed.key, hashed.key})
    assert stranger in server.s3.keys(server.bucket)
    assert server.download(kept.media_id).content == kept.data
    assert server.download(upload_id).content == uploaded
    assert_error(server.download(unhashed.media_id), 404, "M_NOT_FOUND")
