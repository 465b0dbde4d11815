"""Deleting media through the admin API: who may, what answers bad requests get, and that the
bytes leave the store once no record refers to them, never while an upload still needs them.
Runs on both stores (MXCD_TEST_STORE), so on S3 the objects leave the bucket."""

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import (ALICE, DEV_TOKEN, DEV_USER, SERVER_NAME, assert_error, sha256,
                     wait_until)

ADMIN = {"Authorization": f"Bearer {DEV_TOKEN}"}
ADMIN_CONFIG = {"auth": {"admin_users": [DEV_USER]}}


def delete(server, media_id, server_name=SERVER_NAME, headers=ADMIN):
    return server.request("DELETE", f"/_synapse/admin/v1/media/{server_name}/{media_id}",
                          headers=headers)


def delete_ok(server, media_id):
    r = delete(server, media_id)
    assert r.status_code == 200, r.text
    assert r.json() == {"deleted_media": [media_id], "total": 1}


def stored_shas(server):
    return sorted(path.name for path in server.blob_files())


def collected(server):
    """Waits for a collection round that starts after this call: a blob of its own is
    uploaded, deleted and waited for. Whatever the earlier deletions left is then final."""
    marker = os.urandom(64)
    delete_ok(server, server.upload_id(marker))
    assert wait_until(lambda: sha256(marker) not in stored_shas(server), timeout=30), server.log()


@pytest.fixture
def admin_mxcd(start_mxcd):
    return start_mxcd(ADMIN_CONFIG)


def test_bad_delete_requests_are_refused_and_delete_nothing(admin_mxcd):
    media_id = admin_mxcd.upload_id(b"keep me")
    assert_error(delete(admin_mxcd, media_id, headers={}), 401, "M_MISSING_TOKEN")
    assert_error(delete(admin_mxcd, media_id, headers=ALICE), 403, "M_FORBIDDEN")
    assert_error(delete(admin_mxcd, "bad$id"), 400, "M_INVALID_PARAM")
    assert_error(delete(admin_mxcd, media_id, server_name="other.example"), 400, "M_UNKNOWN")
    assert_error(delete(admin_mxcd, "NoSuchMedia"), 404, "M_NOT_FOUND")
    collected(admin_mxcd)
    assert admin_mxcd.download(media_id).content == b"keep me"
    assert stored_shas(admin_mxcd) == [sha256(b"keep me")]


def test_without_admin_users_nobody_may_delete(mxcd):
    media_id = mxcd.upload_id(b"keep me")
    assert_error(delete(mxcd, media_id), 403, "M_FORBIDDEN")
    assert mxcd.download(media_id).content == b"keep me"


def test_delete_removes_the_record_and_then_the_bytes(admin_mxcd):
    data = os.urandom(100_000)
    media_id = admin_mxcd.upload_id(data)
    assert admin_mxcd.download(media_id).content == data  # now in the record cache too
    delete_ok(admin_mxcd, media_id)
    for authenticated in (True, False):
        assert_error(admin_mxcd.download(media_id, authenticated=authenticated), 404, "M_NOT_FOUND")
    assert_error(delete(admin_mxcd, media_id), 404, "M_NOT_FOUND")
    # The collector removes the bytes first and the blob's row after: wait for both.
    assert wait_until(lambda: stored_shas(admin_mxcd) == [] and
                      admin_mxcd.db("SELECT COUNT(*) FROM blobs") == [(0,)], timeout=30), \
        admin_mxcd.log()
    assert admin_mxcd.media_count() == 0
    assert f"deleted blob {sha256(data)}" in admin_mxcd.log()


def test_shared_bytes_stay_until_the_last_record_goes(admin_mxcd):
    data = os.urandom(50_000)
    first, second = admin_mxcd.upload_id(data), admin_mxcd.upload_id(data)
    delete_ok(admin_mxcd, first)
    collected(admin_mxcd)
    assert sha256(data) in stored_shas(admin_mxcd)
    assert admin_mxcd.download(second).content == data
    delete_ok(admin_mxcd, second)
    assert wait_until(lambda: stored_shas(admin_mxcd) == [], timeout=30), admin_mxcd.log()


def test_deleting_a_pending_upload(admin_mxcd):
    media_id = admin_mxcd.create_id()
    delete_ok(admin_mxcd, media_id)
    assert_error(admin_mxcd.put(media_id, b"too late"), 404, "M_NOT_FOUND")
    assert_error(admin_mxcd.download(media_id, params={"timeout_ms": "0"}), 404, "M_NOT_FOUND")
    assert admin_mxcd.media_count() == 0
    collected(admin_mxcd)
    assert stored_shas(admin_mxcd) == []


def test_the_same_bytes_uploaded_again_after_deletion(admin_mxcd):
    data = os.urandom(30_000)
    delete_ok(admin_mxcd, admin_mxcd.upload_id(data))
    assert wait_until(lambda: stored_shas(admin_mxcd) == [], timeout=30)
    media_id = admin_mxcd.upload_id(data)
    assert stored_shas(admin_mxcd) == [sha256(data)]
    admin_mxcd.restart()  # the record is read afresh from the database
    assert admin_mxcd.download(media_id).content == data


def test_uploads_racing_deletions_of_the_same_bytes_never_lose_them(admin_mxcd):
    """Each round deletes the only record of some bytes while the same bytes are uploaded
    again: whichever wins, the new record must keep its bytes."""
    data = os.urandom(20_000)
    current = admin_mxcd.upload_id(data)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(15):
            upload = pool.submit(admin_mxcd.upload_id, data)
            deletion = pool.submit(delete_ok, admin_mxcd, current)
            current = upload.result()
            deletion.result()
    collected(admin_mxcd)
    assert stored_shas(admin_mxcd) == [sha256(data)]
    admin_mxcd.restart()
    assert admin_mxcd.download(current).content == data
