"""Access tokens: where they come from, how the homeserver's answer is used and cached, and
that mxcd fails closed."""

import time

import pytest

from conftest import ALICE, GUEST, DEV_TOKEN
from homeserver_double import APPSERVICE_TOKEN, SOFT_LOGOUT_TOKEN

AUTHENTICATED_PATHS = [
    ("POST", "/_matrix/media/v3/upload"),
    ("POST", "/_matrix/media/v1/create"),
    ("PUT", "/_matrix/media/v3/upload/test.local/abcdef"),
    ("GET", "/_matrix/client/v1/media/download/test.local/abcdef"),
    ("GET", "/_matrix/client/v1/media/download/test.local/abcdef/name.png"),
    ("GET", "/_matrix/client/v1/media/config"),
    ("GET", "/_matrix/media/v3/config"),
]


@pytest.mark.parametrize("method,path", AUTHENTICATED_PATHS)
def test_missing_token(mxcd, method, path):
    r = mxcd.request(method, path)
    assert r.status_code == 401
    assert r.json()["errcode"] == "M_MISSING_TOKEN"


@pytest.mark.parametrize("path", [
    "/_matrix/client/v1/media/download/test.local/%2E%2E",
    "/_matrix/client/v1/media/download/..%2F..%2Fetc/passwd",
    "/_matrix/client/v1/media/download/test.local/bad%2Fid",
    "/_matrix/client/v1/media/download/bad%00name/abc",
    "/_matrix/media/v3/upload/test.local/bad%2E%2E",
])
def test_token_is_checked_before_the_path(mxcd, path):
    method = "PUT" if "/upload/" in path else "GET"
    r = mxcd.request(method, path)
    assert r.status_code == 401 and r.json()["errcode"] == "M_MISSING_TOKEN"


def test_unknown_token_passes_the_homeserver_error_through(mxcd):
    r = mxcd.get("/_matrix/client/v1/media/config", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert r.json()["errcode"] == "M_UNKNOWN_TOKEN"
    assert "soft_logout" not in r.json()
    r = mxcd.get("/_matrix/client/v1/media/config",
                 headers={"Authorization": f"Bearer {SOFT_LOGOUT_TOKEN}"})
    assert r.status_code == 401
    assert r.json()["errcode"] == "M_UNKNOWN_TOKEN"
    assert r.json()["soft_logout"] is True


def test_token_in_query_parameter(mxcd, homeserver):
    r = mxcd.get("/_matrix/client/v1/media/config", params={"access_token": "alice-token"})
    assert r.status_code == 200
    assert homeserver.whoami_calls()[-1][2]["Authorization"] == "Bearer alice-token"


def test_answers_are_cached_for_the_ttl(start_mxcd, homeserver):
    server = start_mxcd({"auth": {"token_cache_ttl": "1s"}})
    for _ in range(3):
        assert server.get("/_matrix/client/v1/media/config", headers=ALICE).status_code == 200
    assert len(homeserver.whoami_calls()) == 1
    time.sleep(1.3)
    assert server.get("/_matrix/client/v1/media/config", headers=ALICE).status_code == 200
    assert len(homeserver.whoami_calls()) == 2


def test_rejections_are_not_cached(mxcd, homeserver):
    for _ in range(2):
        mxcd.get("/_matrix/client/v1/media/config", headers={"Authorization": "Bearer nope"})
    assert len(homeserver.whoami_calls()) == 2


@pytest.mark.parametrize("mode", ["error", "down"])
def test_homeserver_failure_refuses_the_request(mxcd, homeserver, mode):
    if mode == "down":
        homeserver.close()
    else:
        homeserver.mode = "error"
    r = mxcd.get("/_matrix/client/v1/media/config", headers=ALICE)
    assert r.status_code == 502
    assert r.json()["errcode"] == "M_UNKNOWN"
    r = mxcd.upload(b"data")
    assert r.status_code == 502
    assert mxcd.db("SELECT COUNT(*) FROM media") == [(0,)]


def test_guests_may_download_but_not_upload(mxcd):
    media_id = mxcd.upload_id(b"for guests", content_type="text/plain")
    r = mxcd.download(media_id, headers=GUEST)
    assert r.status_code == 200 and r.content == b"for guests"
    for r in (mxcd.upload(b"x", headers=GUEST),
              mxcd.request("POST", "/_matrix/media/v1/create", headers=GUEST),
              mxcd.get("/_matrix/client/v1/media/config", headers=GUEST)):
        assert r.status_code == 403
        assert r.json()["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"


def test_appservice_can_assert_a_user(mxcd, homeserver):
    r = mxcd.request("POST", "/_matrix/media/v3/upload",
                     params={"user_id": "@puppet:test.local"}, data=b"bridged",
                     headers={"Authorization": f"Bearer {APPSERVICE_TOKEN}"})
    assert r.status_code == 200
    media_id = r.json()["content_uri"].rsplit("/", 1)[1]
    assert mxcd.db("SELECT uploader FROM media WHERE media_id = ?", (media_id,)) == [
        ("@puppet:test.local",)]
    assert homeserver.whoami_calls()[-1][1]["user_id"] == ["@puppet:test.local"]


def test_static_development_token(mxcd, homeserver):
    media_id = mxcd.upload_id(b"dev", headers={"Authorization": f"Bearer {DEV_TOKEN}"})
    assert mxcd.db("SELECT uploader FROM media WHERE media_id = ?", (media_id,)) == [
        ("@dev:test.local",)]
    assert homeserver.whoami_calls() == []


def test_tokens_never_reach_the_log(mxcd):
    mxcd.get("/_matrix/client/v1/media/config", params={"access_token": "alice-token"})
    mxcd.get("/_matrix/client/v1/media/config", headers=ALICE)
    mxcd.get("/_matrix/client/v1/media/config", params={"access_token": "secret-unknown"})
    assert mxcd.wait_for_log("access_token=<redacted>")
    mxcd.stop()
    log = mxcd.log()
    assert log.count("path=/_matrix/client/v1/media/config") == 3
    for secret in ("alice-token", "secret-unknown"):
        assert secret not in log
