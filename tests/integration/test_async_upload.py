"""Async uploads: create, PUT, waiting downloads and the error paths."""

import threading
import time

import pytest

from conftest import ALICE, BOB, SERVER_NAME


def create(server, headers=ALICE):
    r = server.request("POST", "/_matrix/media/v1/create", headers=headers,
                       json={})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["content_uri"].startswith(f"mxc://{SERVER_NAME}/")
    return body["content_uri"].rsplit("/", 1)[1], body


def put(server, media_id, data=b"", headers=ALICE, content_type="image/png", server_name=SERVER_NAME,
        filename=None):
    h = dict(headers, **{"Content-Type": content_type})
    params = {"filename": filename} if filename else None
    return server.request("PUT", f"/_matrix/media/v3/upload/{server_name}/{media_id}", data=data,
                          headers=h, params=params)


def test_create_put_download(mxcd):
    media_id, body = create(mxcd)
    now_ms = time.time() * 1000
    assert now_ms + 23 * 3600_000 < body["unused_expires_at"] < now_ms + 25 * 3600_000
    r = put(mxcd, media_id, b"async bytes", filename="test.png")
    assert r.status_code == 200 and r.json() == {}
    for authenticated in (True, False):
        d = mxcd.download(media_id, authenticated=authenticated)
        assert d.status_code == 200 and d.content == b"async bytes"
        assert d.headers["Content-Type"] == "image/png"
        assert d.headers["Content-Disposition"] == "inline; filename=test.png"


def test_second_put_is_409_even_when_empty(mxcd):
    media_id, _ = create(mxcd)
    assert put(mxcd, media_id, b"first").status_code == 200
    r = put(mxcd, media_id, b"")
    assert r.status_code == 409
    assert r.json()["errcode"] == "M_CANNOT_OVERWRITE_MEDIA" and r.json()["error"]
    assert mxcd.download(media_id).content == b"first"


def test_put_by_another_user_is_403(mxcd):
    media_id, _ = create(mxcd)
    r = put(mxcd, media_id, b"not yours", headers=BOB)
    assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN"


def test_put_to_unknown_or_foreign_id_is_404(mxcd):
    assert put(mxcd, "neverCreated123").json()["errcode"] == "M_NOT_FOUND"
    media_id, _ = create(mxcd)
    r = put(mxcd, media_id, b"x", server_name="other.server")
    assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND"


def test_put_to_expired_id_is_404(start_mxcd):
    server = start_mxcd({"media": {"pending_upload_expiry": "1s"}})
    media_id, _ = create(server)
    time.sleep(1.2)
    r = put(server, media_id, b"too late")
    assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND"


def test_put_with_invalid_ids_is_400(mxcd):
    for server_name, media_id in (("test.local", "bad..id"), ("bad/name", "abc"),
                                  ("test.local", "a" * 256)):
        r = put(mxcd, media_id.replace("/", "%2F"), server_name=server_name.replace("/", "%2F"))
        assert r.status_code == 400, (server_name, media_id)
        assert r.json()["errcode"] == "M_INVALID_PARAM"


def test_pending_limit_is_429(start_mxcd):
    server = start_mxcd({"media": {"max_pending_uploads_per_user": 2}})
    first, _ = create(server)
    create(server)
    r = server.request("POST", "/_matrix/media/v1/create", headers=ALICE)
    assert r.status_code == 429
    assert r.json()["errcode"] == "M_LIMIT_EXCEEDED"
    assert int(r.headers["Retry-After"]) > 0 and r.json()["retry_after_ms"] > 0
    # Another user has their own allowance; finishing an upload frees a slot.
    create(server, headers=BOB)
    assert put(server, first, b"done").status_code == 200
    create(server)


@pytest.mark.parametrize("authenticated", [True, False])
def test_download_of_pending_media_times_out_with_504(mxcd, authenticated):
    media_id, _ = create(mxcd)
    started = time.monotonic()
    r = mxcd.download(media_id, authenticated=authenticated, params={"timeout_ms": "300"})
    assert r.status_code == 504
    assert r.json()["errcode"] == "M_NOT_YET_UPLOADED" and r.json()["error"]
    assert time.monotonic() - started >= 0.3


def test_legacy_download_of_pending_media_is_504_despite_the_freeze(start_mxcd):
    server = start_mxcd({"media": {"legacy_download_freeze": "2020-01-01T00:00:00Z",
                                   "download_wait_default": "1s"}})
    media_id, _ = create(server)
    r = server.download(media_id, authenticated=False)
    assert r.status_code == 504 and r.json()["errcode"] == "M_NOT_YET_UPLOADED"


def test_waiting_download_wakes_when_the_upload_lands(mxcd):
    media_id, _ = create(mxcd)
    result = {}

    def wait():
        started = time.monotonic()
        result["response"] = mxcd.download(media_id, params={"timeout_ms": "20000"})
        result["finished"] = time.monotonic()
        result["waited"] = result["finished"] - started

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(1)
    put_done = time.monotonic()
    assert put(mxcd, media_id, b"worth the wait").status_code == 200
    waiter.join(30)
    assert result["response"].status_code == 200
    assert result["response"].content == b"worth the wait"
    assert result["waited"] >= 0.9
    assert result["finished"] - put_done < 5  # woken by the upload, not by the 20 s timeout


def test_timeout_is_capped(start_mxcd):
    server = start_mxcd({"media": {"download_wait_max": "1s", "download_wait_default": "1s"}})
    media_id, _ = create(server)
    started = time.monotonic()
    r = server.download(media_id, params={"timeout_ms": "60000"})
    assert r.status_code == 504
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", ""])
def test_invalid_timeout_is_400(mxcd, value):
    media_id, _ = create(mxcd)
    r = mxcd.download(media_id, params={"timeout_ms": value})
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
