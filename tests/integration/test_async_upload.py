"""Async uploads (POST create, then PUT): the happy path, every error of the PUT, the
pending-upload limit, and downloads that wait for the content."""

import threading
import time

import pytest

from harness import (ALICE, BOB, SERVER_NAME, RawConnection, assert_error, disposition,
                     request_head, status_of, wait_until)


@pytest.mark.parametrize("version", ["v3", "r0", "v1"])
def test_create_put_download(start_mxcd, version):
    server = start_mxcd({"media": {"pending_upload_expiry": "2h"}})
    before = time.time() * 1000
    r = server.create()
    after = time.time() * 1000
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    media_id = r.json()["content_uri"].rsplit("/", 1)[1]
    assert r.json()["content_uri"] == f"mxc://{SERVER_NAME}/{media_id}"
    assert before + 7_200_000 - 1000 <= r.json()["unused_expires_at"] <= after + 7_200_000 + 1000
    assert server.db("SELECT sha256, uploader FROM media WHERE media_id = ?", (media_id,)) == [
        (None, "@alice:test.local")]

    r = server.put(media_id, b"async bytes", filename="test.png", version=version)
    assert r.status_code == 200 and r.json() == {}
    for authenticated in (True, False):
        d = server.download(media_id, authenticated=authenticated)
        assert d.status_code == 200 and d.content == b"async bytes"
        assert d.headers["Content-Type"] == "image/png"
        assert disposition(d.headers["Content-Disposition"]) == ("inline", "test.png")


def test_create_without_a_body(mxcd):
    r = mxcd.request("POST", "/_matrix/media/v1/create", headers=ALICE)
    assert r.status_code == 200 and r.json()["content_uri"].startswith(f"mxc://{SERVER_NAME}/")


def test_second_put_is_409_even_when_empty(mxcd):
    media_id = mxcd.create_id()
    assert mxcd.put(media_id, b"first").status_code == 200
    assert_error(mxcd.put(media_id, b""), 409, "M_CANNOT_OVERWRITE_MEDIA")
    assert_error(mxcd.put(media_id, b"second"), 409, "M_CANNOT_OVERWRITE_MEDIA")
    assert mxcd.download(media_id).content == b"first"


def test_put_while_another_put_is_in_progress_is_409(mxcd):
    media_id = mxcd.create_id()
    conn = RawConnection(mxcd)
    conn.send(request_head("PUT", f"/_matrix/media/v3/upload/{SERVER_NAME}/{media_id}",
                           ["Content-Length: 10", "Content-Type: text/plain"]) + b"01234")
    assert wait_until(lambda: mxcd.tmp_files() != []), "the first PUT never started its body"
    assert_error(mxcd.put(media_id, b"intruder"), 409, "M_CANNOT_OVERWRITE_MEDIA")
    conn.send(b"56789")
    assert status_of(conn.read_response()) == 200
    r = mxcd.download(media_id)
    assert r.content == b"0123456789" and r.headers["Content-Type"] == "text/plain; charset=UTF-8"


def test_put_by_another_user_is_403(mxcd):
    media_id = mxcd.create_id()
    assert_error(mxcd.put(media_id, b"not yours", headers=BOB), 403, "M_FORBIDDEN")
    # The refused PUT consumed nothing: the creator can still upload.
    assert mxcd.put(media_id, b"mine").status_code == 200
    assert mxcd.download(media_id).content == b"mine"


def test_put_to_unknown_id_or_another_server_is_404(mxcd):
    assert_error(mxcd.put("neverCreated1234567890ab", b"x"), 404, "M_NOT_FOUND")
    media_id = mxcd.create_id()
    for server_name in ("other.server", f"{SERVER_NAME}:8448"):
        assert_error(mxcd.put(media_id, b"x", server_name=server_name), 404, "M_NOT_FOUND")
    # A POST-uploaded ID is not a pending one either: 409, it has content.
    uploaded = mxcd.upload_id(b"done")
    assert_error(mxcd.put(uploaded, b"x"), 409, "M_CANNOT_OVERWRITE_MEDIA")


def test_expired_ids(start_mxcd):
    server = start_mxcd({"media": {"pending_upload_expiry": "1s",
                                   "max_pending_uploads_per_user": 1}})
    media_id = server.create_id()
    assert_error(server.create(), 429, "M_LIMIT_EXCEEDED")
    time.sleep(1.5)
    assert_error(server.put(media_id, b"too late"), 404, "M_NOT_FOUND")
    # An expired ID no longer counts against the pending limit.
    assert server.create().status_code == 200
    assert server.blob_files() == []


# PUT with invalid identifiers: see test_identifiers.py.


def test_put_over_the_size_limit_is_413(start_mxcd):
    server = start_mxcd({"media": {"max_upload_size": "1KiB"}})
    media_id = server.create_id()
    assert_error(server.put(media_id, b"x" * 1025), 413, "M_TOO_LARGE")
    assert server.blob_files() == []
    # Still pending: a PUT within the limit succeeds.
    assert server.put(media_id, b"x" * 1024).status_code == 200


def test_pending_limit_is_429(start_mxcd):
    server = start_mxcd({"media": {"max_pending_uploads_per_user": 2,
                                   "pending_upload_expiry": "1h"}})
    first = server.create_id()
    server.create_id()
    r = server.create()
    body = assert_error(r, 429, "M_LIMIT_EXCEEDED")
    # Retry-After: seconds until the oldest pending ID expires, so at most the expiry.
    assert 0 < int(r.headers["Retry-After"]) <= 3600
    assert 0 < body["retry_after_ms"] <= 3_600_000
    # Other users have their own allowance; finishing an upload frees a slot.
    assert server.create(headers=BOB).status_code == 200
    assert server.put(first, b"done").status_code == 200
    assert server.create().status_code == 200
    assert_error(server.create(), 429, "M_LIMIT_EXCEEDED")


@pytest.mark.parametrize("authenticated", [True, False])
def test_download_of_pending_media_is_504(mxcd, authenticated):
    media_id = mxcd.create_id()
    for timeout in ("300", "0"):
        r = mxcd.download(media_id, authenticated=authenticated, params={"timeout_ms": timeout})
        assert_error(r, 504, "M_NOT_YET_UPLOADED")


def test_legacy_download_of_pending_media_is_504_despite_the_freeze(start_mxcd):
    server = start_mxcd({"media": {"legacy_download_freeze": "2020-01-01T00:00:00Z",
                                   "download_wait_default": "1s"}})
    media_id = server.create_id()
    started = time.monotonic()
    # No timeout_ms: download_wait_default applies (1 s, not the spec's 20 s).
    assert_error(server.download(media_id, authenticated=False), 504, "M_NOT_YET_UPLOADED")
    assert time.monotonic() - started < 15


def test_waiting_downloads_wake_when_the_upload_lands(mxcd):
    media_id = mxcd.create_id()
    results = {}

    def wait(authenticated):
        results[authenticated] = mxcd.download(media_id, authenticated=authenticated,
                                                params={"timeout_ms": "20000"}, timeout=60)
        results[authenticated].finished = time.monotonic()

    waiters = [threading.Thread(target=wait, args=(a,)) for a in (True, False)]
    for waiter in waiters:
        waiter.start()
    time.sleep(1)
    assert results == {}, "the downloads should still be waiting for the content"
    put_done = time.monotonic()
    assert mxcd.put(media_id, b"worth the wait", content_type="text/plain").status_code == 200
    for waiter in waiters:
        waiter.join(60)
    for authenticated in (True, False):
        r = results[authenticated]
        assert r.status_code == 200 and r.content == b"worth the wait"
        assert r.headers["Content-Type"] == "text/plain; charset=UTF-8"
        # Woken by the upload, well before the 20 s timeout.
        assert r.finished - put_done < 10


def test_timeout_is_capped(start_mxcd):
    server = start_mxcd({"media": {"download_wait_max": "2s", "download_wait_default": "1s"}})
    media_id = server.create_id()
    started = time.monotonic()
    r = server.download(media_id, params={"timeout_ms": "60000"}, timeout=60)
    assert_error(r, 504, "M_NOT_YET_UPLOADED")
    assert time.monotonic() - started < 15


@pytest.mark.parametrize("authenticated", [True, False])
def test_invalid_timeout_is_400(mxcd, authenticated):
    media_id = mxcd.create_id()
    for value in ("-1", "abc", "1.5", "", "1e3", " 5"):
        r = mxcd.download(media_id, authenticated=authenticated, params={"timeout_ms": value})
        assert_error(r, 400, "M_INVALID_PARAM")
