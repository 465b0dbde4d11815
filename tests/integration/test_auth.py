"""Access tokens: where they are taken from, that they are checked before anything else,
how the homeserver's answers are passed on and cached, and that mxcd fails closed."""

import time

import pytest

from harness import (ALICE, APPSERVICE, BOB, DEV_TOKEN, DEV_USER, GUEST, SERVER_NAME,
                     RawConnection, assert_error, media_id_of, raw_error, request_head)
from homeserver_double import (ALICE_ID, ALICE_TOKEN, APPSERVICE_ID, BOB_ID, BOB_TOKEN,
                               FORBIDDEN_TOKEN, SOFT_LOGOUT_TOKEN)

CONFIG = "/_matrix/client/v1/media/config"
AUTHENTICATED_ENDPOINTS = [
    ("POST", "/_matrix/media/v3/upload"),
    ("POST", "/_matrix/media/r0/upload"),
    ("POST", "/_matrix/media/v1/upload"),
    ("POST", "/_matrix/media/v1/create"),
    ("PUT", f"/_matrix/media/v3/upload/{SERVER_NAME}/abcdef"),
    ("PUT", f"/_matrix/media/r0/upload/{SERVER_NAME}/abcdef"),
    ("PUT", f"/_matrix/media/v1/upload/{SERVER_NAME}/abcdef"),
    ("GET", f"/_matrix/client/v1/media/download/{SERVER_NAME}/abcdef"),
    ("GET", f"/_matrix/client/v1/media/download/{SERVER_NAME}/abcdef/name.png"),
    ("HEAD", f"/_matrix/client/v1/media/download/{SERVER_NAME}/abcdef"),
    ("GET", "/_matrix/client/v1/media/config"),
    ("GET", "/_matrix/media/v3/config"),
    ("GET", "/_matrix/media/r0/config"),
    ("GET", "/_matrix/media/v1/config"),
]

# HEAD answers carry no body to compare errcodes with.
WITH_BODY = [(method, path) for method, path in AUTHENTICATED_ENDPOINTS if method != "HEAD"]


def whoami_users(homeserver):
    """The Authorization header of every whoami call the double received."""
    return [call.headers.get("Authorization") for call in homeserver.whoami_calls()]


@pytest.mark.parametrize("method,path", AUTHENTICATED_ENDPOINTS)
def test_missing_token(shared_mxcd, method, path):
    r = shared_mxcd.request(method, path)
    assert r.status_code == 401
    if method != "HEAD":
        assert_error(r, 401, "M_MISSING_TOKEN")


@pytest.mark.parametrize("method,path", WITH_BODY)
def test_unknown_token_passes_the_homeserver_answer_through(shared_mxcd, method, path):
    stored = shared_mxcd.media_count()
    r = shared_mxcd.request(method, path, headers={"Authorization": "Bearer nope"})
    body = assert_error(r, 401, "M_UNKNOWN_TOKEN")
    assert "soft_logout" not in body
    r = shared_mxcd.request(method, path, headers={"Authorization": f"Bearer {SOFT_LOGOUT_TOKEN}"})
    body = assert_error(r, 401, "M_UNKNOWN_TOKEN")
    assert body["soft_logout"] is True
    r = shared_mxcd.request(method, path, headers={"Authorization": f"Bearer {FORBIDDEN_TOKEN}"})
    assert_error(r, 403, "M_FORBIDDEN")
    assert shared_mxcd.media_count() == stored


def test_token_is_checked_before_the_body(mxcd):
    # A 2 GiB body announced without a token: 401, not 413.
    conn = RawConnection(mxcd)
    conn.send(request_head("POST", "/_matrix/media/v3/upload", ["Content-Length: 2147483648"],
                           token=None) + b"abc")
    assert raw_error(conn.read_response()) == (401, "M_MISSING_TOKEN")


def test_token_is_checked_before_the_query(mxcd):
    media_id = mxcd.create_id()
    r = mxcd.download(media_id, headers={}, params={"timeout_ms": "bad"})
    assert_error(r, 401, "M_MISSING_TOKEN")
    r = mxcd.request("POST", "/_matrix/media/v3/upload", params="filename=%FF", data=b"x")
    assert_error(r, 401, "M_MISSING_TOKEN")


def test_token_in_query_parameter(mxcd, homeserver):
    r = mxcd.upload(b"by query", headers={}, params={"access_token": ALICE_TOKEN})
    media_id = media_id_of(r)
    assert mxcd.db("SELECT uploader FROM media WHERE media_id = ?", (media_id,)) == [(ALICE_ID,)]
    assert whoami_users(homeserver) == [f"Bearer {ALICE_TOKEN}"]
    r = mxcd.download(media_id, headers={}, params={"access_token": BOB_TOKEN})
    assert r.status_code == 200 and r.content == b"by query"


def test_header_wins_over_query_parameter(mxcd):
    media_id = mxcd.upload_id(b"x", headers=BOB, params={"access_token": ALICE_TOKEN})
    assert mxcd.db("SELECT uploader FROM media WHERE media_id = ?", (media_id,)) == [(BOB_ID,)]


def test_answers_are_cached_for_the_ttl(start_mxcd, homeserver):
    server = start_mxcd({"auth": {"token_cache_ttl": "1s"}})
    for _ in range(3):
        assert server.get(CONFIG, headers=ALICE).status_code == 200
    assert len(homeserver.whoami_calls()) == 1
    # Another token is another cache entry.
    assert server.get(CONFIG, headers=BOB).status_code == 200
    assert len(homeserver.whoami_calls()) == 2
    time.sleep(1.5)
    assert server.get(CONFIG, headers=ALICE).status_code == 200
    assert len(homeserver.whoami_calls()) == 3


def test_rejections_are_not_cached(mxcd, homeserver):
    for _ in range(2):
        assert mxcd.get(CONFIG, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert len(homeserver.whoami_calls()) == 2


@pytest.mark.parametrize("failure", ["500", "404", "200 without user_id", "down"])
def test_homeserver_failure_refuses_the_request(mxcd, homeserver, failure):
    legacy_media = mxcd.upload_id(b"public", headers={"Authorization": f"Bearer {DEV_TOKEN}"})
    if failure == "down":
        homeserver.go_down()
    elif failure == "200 without user_id":
        homeserver.status_override = 200
    else:
        homeserver.status_override = int(failure)
    assert_error(mxcd.get(CONFIG, headers=ALICE), 502, "M_UNKNOWN")
    assert_error(mxcd.upload(b"data", headers=BOB), 502, "M_UNKNOWN")
    assert_error(mxcd.download(legacy_media, headers=GUEST), 502, "M_UNKNOWN")
    assert mxcd.media_count() == 1
    # Requests that need no homeserver still work.
    assert mxcd.download(legacy_media, authenticated=False).content == b"public"
    assert mxcd.get(CONFIG, headers={"Authorization": f"Bearer {DEV_TOKEN}"}).status_code == 200


def test_homeserver_timeout_refuses_the_request(mxcd, homeserver):
    homeserver.delay = 60  # far beyond mxcd's own time limit for the homeserver
    assert_error(mxcd.upload(b"data"), 502, "M_UNKNOWN")
    assert mxcd.media_count() == 0


def test_failures_are_not_cached(mxcd, homeserver):
    homeserver.status_override = 500
    assert_error(mxcd.get(CONFIG, headers=ALICE), 502, "M_UNKNOWN")
    homeserver.status_override = None
    assert mxcd.get(CONFIG, headers=ALICE).status_code == 200
    assert len(homeserver.whoami_calls()) == 2


def test_guests_may_download_but_not_upload(mxcd):
    media_id = mxcd.upload_id(b"for guests", content_type="text/plain")
    for filename in (None, "guest.txt"):
        r = mxcd.download(media_id, headers=GUEST, filename=filename)
        assert r.status_code == 200 and r.content == b"for guests"
    pending = mxcd.create_id()
    for r in (mxcd.upload(b"x", headers=GUEST),
              mxcd.create(headers=GUEST),
              mxcd.put(pending, b"x", headers=GUEST),
              mxcd.get("/_matrix/client/v1/media/config", headers=GUEST),
              mxcd.get("/_matrix/media/v3/config", headers=GUEST)):
        assert_error(r, 403, "M_GUEST_ACCESS_FORBIDDEN")
    assert mxcd.media_count() == 2


def test_appservice_can_assert_a_user(mxcd, homeserver):
    asserted = mxcd.upload_id(b"bridged", headers=APPSERVICE,
                              params={"user_id": "@puppet:test.local"})
    assert mxcd.db("SELECT uploader FROM media WHERE media_id = ?", (asserted,)) == [
        ("@puppet:test.local",)]
    assert homeserver.whoami_calls()[-1].query["user_id"] == ["@puppet:test.local"]
    own = mxcd.upload_id(b"as itself", headers=APPSERVICE)
    assert mxcd.db("SELECT uploader FROM media WHERE media_id = ?", (own,)) == [(APPSERVICE_ID,)]
    assert "user_id" not in homeserver.whoami_calls()[-1].query


def test_user_id_is_forwarded_only_when_given(mxcd, homeserver):
    mxcd.upload_id(b"x")
    assert homeserver.whoami_calls()[-1].query == {}


def test_static_development_token(mxcd, homeserver):
    media_id = mxcd.upload_id(b"dev", headers={"Authorization": f"Bearer {DEV_TOKEN}"})
    assert mxcd.db("SELECT uploader FROM media WHERE media_id = ?", (media_id,)) == [(DEV_USER,)]
    assert homeserver.whoami_calls() == []


@pytest.mark.parametrize("token", [
    "x%0d%0aX-Injected:%20yes",
    "x%0d%0a%0d%0aGET%20/_matrix/client/v3/account/whoami%20HTTP/1.1%0d%0aHost:%20a%0d%0a%0d%0a",
    "x%0aX-Injected:%20yes",
    "x%00y",
    "two%20words",
    "quote%22d",
    "t%C3%A9l%C3%A9phone",
    "semi%3Bcolon",
])
def test_tokens_the_header_cannot_carry_are_refused_before_the_homeserver(mxcd, homeserver, token):
    """Such a token would rewrite the whoami request (a header of the client's choosing, or a
    second request smuggled from mxcd's address); no homeserver issues one."""
    r = mxcd.raw("GET", f"{CONFIG}?access_token={token}")
    assert_error(r, 401, "M_UNKNOWN_TOKEN")
    assert homeserver.calls == []
    # The answer is not cached as a verdict on some other token: a good one still works.
    assert mxcd.get(CONFIG, headers=ALICE).status_code == 200
    assert [c.headers.get("X-Injected") for c in homeserver.calls] == [None]
