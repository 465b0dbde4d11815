"""Downloads: headers, Content-Disposition, conditional and range requests, the freeze."""

import email.message
import time
from urllib.parse import quote

import pytest

from conftest import ALICE, sha256

CSP = ("sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; "
       "style-src 'unsafe-inline'; media-src 'self'; object-src 'self';")


def disposition(header):
    """Parses Content-Disposition as a MIME library would (RFC 2231/5987 aware)."""
    message = email.message.Message()
    message["Content-Disposition"] = header
    return message.get_content_disposition(), message.get_filename()


def test_security_headers(mxcd):
    data = b"<html><script>alert(1)</script></html>"
    media_id = mxcd.upload_id(data, content_type="text/html")
    for authenticated in (True, False):
        r = mxcd.download(media_id, authenticated=authenticated)
        assert r.content == data
        assert r.headers["Content-Security-Policy"] == CSP
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert r.headers["ETag"] == f'"{sha256(data)}"'
        assert r.headers["Content-Length"] == str(len(data))
        assert disposition(r.headers["Content-Disposition"])[0] == "attachment"


@pytest.mark.parametrize("name", ["ascii", "name with spaces", "name;with;semicolons",
                                  'quote"and\\backslash', "🐔", "☕ coffee.png"])
def test_upload_name_round_trips_in_content_disposition(mxcd, name):
    media_id = mxcd.upload_id(b"x", content_type="text/plain", filename=name)
    for authenticated in (True, False):
        r = mxcd.download(media_id, authenticated=authenticated)
        assert disposition(r.headers["Content-Disposition"]) == ("inline", name)


def test_filename_encodings_on_the_wire(mxcd):
    expected = {
        "ascii.png": "inline; filename=ascii.png",
        "with space.png": 'inline; filename="with space.png"',
        "🐔": "inline; filename*=utf-8''%F0%9F%90%94",
    }
    for name, header in expected.items():
        media_id = mxcd.upload_id(b"x", content_type="image/png", filename=name)
        assert mxcd.download(media_id).headers["Content-Disposition"] == header


def test_filename_in_the_path_wins(mxcd):
    media_id = mxcd.upload_id(b"x", content_type="image/png", filename="original.png")
    for name in ("file.png", "☕"):
        for authenticated in (True, False):
            r = mxcd.download(media_id, filename=quote(name), authenticated=authenticated)
            assert r.status_code == 200
            assert disposition(r.headers["Content-Disposition"]) == ("inline", name)


def test_no_filename(mxcd):
    media_id = mxcd.upload_id(b"plain", content_type="text/plain")
    r = mxcd.download(media_id)
    assert r.headers["Content-Disposition"] == "inline"


@pytest.mark.parametrize("content_type,kind", [
    ("image/png", "inline"), ("Text/Plain; charset=utf-8", "inline"), ("video/mp4", "inline"),
    ("IMAGE/JPEG", "inline"), ("audio/ogg", "inline"), ("application/json", "inline"),
    ("image/svg", "attachment"), ("image/svg+xml", "attachment"), ("text/html", "attachment"),
    ("application/octet-stream", "attachment"), ("application/pdf", "attachment"),
])
def test_inline_only_for_safe_types(mxcd, content_type, kind):
    media_id = mxcd.upload_id(b"x", content_type=content_type)
    assert mxcd.download(media_id).headers["Content-Disposition"] == kind


def test_if_none_match(mxcd):
    data = b"cache me"
    media_id = mxcd.upload_id(data)
    etag = f'"{sha256(data)}"'
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        r = mxcd.download(media_id, headers=dict(ALICE, **{"If-None-Match": header}))
        assert r.status_code == 304 and r.content == b""
        assert r.headers["ETag"] == etag
    r = mxcd.download(media_id, headers=dict(ALICE, **{"If-None-Match": '"other"'}))
    assert r.status_code == 200 and r.content == data


def test_ranges(mxcd):
    data = bytes(range(256)) * 4  # 1024 bytes
    media_id = mxcd.upload_id(data)

    def get(range_header, **extra):
        return mxcd.download(media_id, headers=dict(ALICE, Range=range_header, **extra))

    r = get("bytes=10-19")
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["Content-Range"] == "bytes 10-19/1024"
    assert r.headers["Content-Length"] == "10"
    r = get("bytes=1000-")
    assert r.status_code == 206 and r.content == data[1000:]
    r = get("bytes=-24")
    assert r.status_code == 206 and r.content == data[-24:]
    r = get("bytes=1000-5000")
    assert r.status_code == 206 and r.content == data[1000:]
    r = get("bytes=1024-")
    assert r.status_code == 416
    assert r.headers["Content-Range"] == "bytes */1024"
    for ignored in ("bytes=0-1,5-6", "lines=1-2", "bytes=5-1", "garbage"):
        r = get(ignored)
        assert r.status_code == 200 and r.content == data, ignored
    r = get("bytes=0-9", **{"If-Range": '"stale"'})
    assert r.status_code == 200 and r.content == data
    r = get("bytes=0-9", **{"If-Range": f'"{sha256(data)}"'})
    assert r.status_code == 206 and r.content == data[:10]


def test_head(mxcd):
    data = b"head only" * 10
    media_id = mxcd.upload_id(data, content_type="text/plain")
    for authenticated in (True, False):
        r = mxcd.download(media_id, authenticated=authenticated, method="HEAD")
        assert r.status_code == 200 and r.content == b""
        assert r.headers["Content-Length"] == str(len(data))
        assert r.headers["Content-Type"] == "text/plain"


def test_unknown_media_and_other_servers_are_404(mxcd):
    media_id = mxcd.upload_id(b"x")
    for server, mid in (("test.local", "doesNotExist"), ("other.server", media_id),
                        ("test.local:8448", media_id)):
        r = mxcd.download(mid, server=server)
        assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND"


@pytest.mark.parametrize("server,media_id", [
    ("test.local", ".."), ("test.local", "..%2F..%2Fmxcd.sqlite3"), ("..", "abc"),
    ("test.local", "%2e%2e"), ("test.local", "abc%00def"), ("bad%00name", "abc"),
    ("test.local", "a" * 256), ("a" * 256, "abc"), ("test.local", "back%5Cslash"),
    ("test.local:99999", "abc"), ("test.local", "dot.dot"),
])
def test_invalid_identifiers_are_rejected(mxcd, server, media_id):
    for authenticated in (True, False):
        base = "/_matrix/client/v1/media" if authenticated else "/_matrix/media/v3"
        r = mxcd.get(f"{base}/download/{server}/{media_id}", headers=ALICE)
        assert r.status_code in (400, 404), r.text
        assert r.json()["errcode"] in ("M_INVALID_PARAM", "M_UNRECOGNIZED", "M_NOT_FOUND")
        assert r.status_code == 400 or r.json()["errcode"] == "M_UNRECOGNIZED"


def test_freeze_serves_new_media_only_on_the_authenticated_path(start_mxcd):
    server = start_mxcd({"media": {"legacy_download_freeze": "2024-09-01T00:00:00Z"}})
    new = server.upload_id(b"new media")
    old = server.upload_id(b"old media")
    r = server.download(new, authenticated=False)
    assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    assert server.download(new).content == b"new media"
    server.stop()
    server.db_write("UPDATE media SET created_ts = ? WHERE media_id = ?",
                    (int(time.mktime((2024, 8, 1, 0, 0, 0, 0, 0, 0)) * 1000), old))
    server.start()
    assert server.download(old, authenticated=False).content == b"old media"
    assert server.download(new, authenticated=False).status_code == 404


def test_quarantined_media_is_404(mxcd):
    media_id = mxcd.upload_id(b"bad stuff")
    mxcd.stop()
    mxcd.db_write("UPDATE media SET quarantined = 1 WHERE media_id = ?", (media_id,))
    mxcd.start()
    for authenticated in (True, False):
        r = mxcd.download(media_id, authenticated=authenticated)
        assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND"


def test_last_access_is_recorded(mxcd):
    media_id = mxcd.upload_id(b"touch")
    assert mxcd.db("SELECT last_access_ts FROM media WHERE media_id = ?", (media_id,)) == [(None,)]
    before = int(time.time() * 1000)
    mxcd.download(media_id)
    mxcd.stop()  # access times are written in batches and at shutdown
    (ts,), = mxcd.db("SELECT last_access_ts FROM media WHERE media_id = ?", (media_id,))
    assert ts >= before - 1000
