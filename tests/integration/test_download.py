"""Downloads: headers, Content-Disposition, conditional and range requests, HEAD, the
legacy freeze, quarantine and media that is not ours."""

import calendar
import time
from urllib.parse import quote

import pytest

from harness import ALICE, CORS, CSP, assert_error, disposition, sha256

CACHE_CONTROL = {True: "private, max-age=86400",
                 False: "public, max-age=86400, s-maxage=0, proxy-revalidate"}


@pytest.mark.parametrize("authenticated", [True, False])
def test_response_headers(shared_mxcd, authenticated):
    data = b"<html><script>alert(1)</script></html>"
    media_id = shared_mxcd.upload_id(data, content_type="text/html")
    r = shared_mxcd.download(media_id, authenticated=authenticated)
    assert r.status_code == 200 and r.content == data
    expected = dict(CORS, **{
        "Content-Type": "text/html; charset=UTF-8",
        "Content-Length": str(len(data)),
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "ETag": f'"{sha256(data)}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": CACHE_CONTROL[authenticated],
    })
    assert {name: r.headers.get(name) for name in expected} == expected
    assert disposition(r.headers["Content-Disposition"]) == ("attachment", None)


@pytest.mark.parametrize("version", ["v3", "r0", "v1"])
def test_legacy_download_on_every_version(shared_mxcd, version):
    media_id = shared_mxcd.upload_id(b"legacy", content_type="text/plain")
    r = shared_mxcd.download(media_id, authenticated=False, version=version)
    assert r.status_code == 200 and r.content == b"legacy"
    assert r.headers["Content-Type"] == "text/plain; charset=UTF-8"


@pytest.mark.parametrize("name", ["ascii", "name with spaces", "name;with;semicolons",
                                  'quote"and\\backslash', "🐔", "☕ coffee.png"])
def test_upload_name_round_trips_in_content_disposition(shared_mxcd, name):
    media_id = shared_mxcd.upload_id(b"x", content_type="text/plain", filename=name)
    for authenticated in (True, False):
        r = shared_mxcd.download(media_id, authenticated=authenticated)
        assert disposition(r.headers["Content-Disposition"]) == ("inline", name)


@pytest.mark.parametrize("name,header", [
    ("ascii.png", "inline; filename=ascii.png"),
    ("with space.png", 'inline; filename="with space.png"'),
    ("semi;colon", 'inline; filename="semi;colon"'),
    ('a"b\\c', r'inline; filename="a\"b\\c"'),
    ("🐔", "inline; filename*=utf-8''%F0%9F%90%94"),
    ("☕", "inline; filename*=utf-8''%E2%98%95"),
])
def test_filename_encodings_on_the_wire(shared_mxcd, name, header):
    media_id = shared_mxcd.upload_id(b"x", content_type="image/png", filename=name)
    assert shared_mxcd.download(media_id).headers["Content-Disposition"] == header


@pytest.mark.parametrize("name,shown", [
    ("invoice\u202egpj.exe", "invoicegpj.exe"),     # would display as "invoiceexe.jpg"
    ("\u2067photo\u2069.png", "photo.png"),
    ("a\u202a\u202b\u202c\u202d\u2066\u2068b", "ab"),
])
def test_bidi_controls_never_reach_content_disposition(shared_mxcd, name, shown):
    media_id = shared_mxcd.upload_id(b"x", content_type="application/octet-stream", filename=name)
    for authenticated in (True, False):
        r = shared_mxcd.download(media_id, authenticated=authenticated)
        assert disposition(r.headers["Content-Disposition"]) == ("attachment", shown)
    # A name in the path is a file name too.
    r = shared_mxcd.download(media_id, filename=quote(name))
    assert disposition(r.headers["Content-Disposition"]) == ("attachment", shown)


@pytest.mark.parametrize("upload_name", ["original.png", None])
def test_filename_in_the_path_wins(shared_mxcd, upload_name):
    media_id = shared_mxcd.upload_id(b"x", content_type="image/png", filename=upload_name)
    for name in ("file.png", "☕"):
        for authenticated in (True, False):
            r = shared_mxcd.download(media_id, filename=quote(name), authenticated=authenticated)
            assert r.status_code == 200 and r.content == b"x"
            assert disposition(r.headers["Content-Disposition"]) == ("inline", name)


def test_no_filename(mxcd):
    for content_type, header in (("text/plain", "inline"),
                                 ("application/octet-stream", "attachment")):
        media_id = mxcd.upload_id(b"plain", content_type=content_type)
        for authenticated in (True, False):
            r = mxcd.download(media_id, authenticated=authenticated)
            assert r.headers["Content-Disposition"] == header


@pytest.mark.parametrize("content_type,kind", [
    ("image/png", "inline"), ("Text/Plain; charset=utf-8", "inline"), ("video/mp4", "inline"),
    ("IMAGE/JPEG", "inline"), ("audio/ogg", "inline"), ("application/json", "inline"),
    ("text/csv", "inline"), ("image/webp", "inline"), ("audio/x-flac", "inline"),
    ("image/svg", "attachment"), ("image/svg+xml", "attachment"), ("text/html", "attachment"),
    ("application/octet-stream", "attachment"), ("application/pdf", "attachment"),
    ("text/javascript", "attachment"), ("img/png", "attachment"),
])
def test_inline_only_for_safe_types(shared_mxcd, content_type, kind):
    media_id = shared_mxcd.upload_id(b"x", content_type=content_type)
    for authenticated in (True, False):
        r = shared_mxcd.download(media_id, authenticated=authenticated)
        assert r.headers["Content-Disposition"] == kind


@pytest.mark.parametrize("authenticated", [True, False])
def test_if_none_match(shared_mxcd, authenticated):
    data = b"cache me"
    media_id = shared_mxcd.upload_id(data)
    etag = f'"{sha256(data)}"'
    base = ALICE if authenticated else {}
    for header in (etag, f'"other", {etag}', "*"):
        r = shared_mxcd.download(media_id, authenticated=authenticated,
                          headers=dict(base, **{"If-None-Match": header}))
        assert r.status_code == 304 and r.content == b""
        assert r.headers["ETag"] == etag
    r = shared_mxcd.download(media_id, authenticated=authenticated,
                      headers=dict(base, **{"If-None-Match": '"other"'}))
    assert r.status_code == 200 and r.content == data


def test_ranges(mxcd):
    data = bytes(range(256)) * 4  # 1024 bytes
    media_id = mxcd.upload_id(data)

    def get(range_header, **extra):
        return mxcd.download(media_id, headers=dict(ALICE, Range=range_header, **extra))

    for header, start, end in (("bytes=10-19", 10, 19), ("bytes=1000-", 1000, 1023),
                               ("bytes=-24", 1000, 1023), ("bytes=1000-5000", 1000, 1023),
                               ("bytes=0-0", 0, 0), ("bytes=-2000", 0, 1023)):
        r = get(header)
        assert r.status_code == 206, header
        assert r.content == data[start:end + 1], header
        assert r.headers["Content-Range"] == f"bytes {start}-{end}/1024", header
        assert r.headers["Content-Length"] == str(end + 1 - start), header
    for unsatisfiable in ("bytes=1024-", "bytes=5000-6000"):
        r = get(unsatisfiable)
        assert r.status_code == 416, unsatisfiable
        assert r.headers["Content-Range"] == "bytes */1024"
    # Several ranges, or a malformed one: ignored, the whole body.
    for ignored in ("bytes=0-1,5-6", "lines=1-2", "bytes=5-1", "garbage", "bytes=a-b"):
        r = get(ignored)
        assert r.status_code == 200 and r.content == data, ignored
        assert "Content-Range" not in r.headers
    # Positions beyond 64 bits are positions past the end, not malformed headers.
    for past_the_end in ("bytes=99999999999999999999-", "bytes=18446744073709551616-"):
        r = get(past_the_end)
        assert r.status_code == 416, past_the_end
        assert r.headers["Content-Range"] == "bytes */1024"
    for to_the_end in ("bytes=0-99999999999999999999", "bytes=1000-18446744073709551616"):
        r = get(to_the_end)
        start = int(to_the_end[6:to_the_end.index("-")])
        assert r.status_code == 206, to_the_end
        assert r.content == data[start:], to_the_end
        assert r.headers["Content-Range"] == f"bytes {start}-1023/1024"
    r = get("bytes=0-9", **{"If-Range": '"stale"'})
    assert r.status_code == 200 and r.content == data
    r = get("bytes=0-9", **{"If-Range": f'"{sha256(data)}"'})
    assert r.status_code == 206 and r.content == data[:10]


def test_range_on_the_legacy_path(mxcd):
    media_id = mxcd.upload_id(b"0123456789")
    r = mxcd.download(media_id, authenticated=False, headers={"Range": "bytes=2-4"})
    assert r.status_code == 206 and r.content == b"234"
    assert r.headers["Content-Range"] == "bytes 2-4/10"


@pytest.mark.parametrize("authenticated", [True, False])
def test_head(shared_mxcd, authenticated):
    data = b"head only" * 10
    media_id = shared_mxcd.upload_id(data, content_type="text/plain", filename="h.txt")
    get = shared_mxcd.download(media_id, authenticated=authenticated)
    head = shared_mxcd.download(media_id, authenticated=authenticated, method="HEAD")
    assert head.status_code == 200 and head.content == b""
    for name in ("Content-Type", "Content-Length", "Content-Disposition", "ETag",
                 "Cache-Control", "Content-Security-Policy", "Accept-Ranges"):
        assert head.headers[name] == get.headers[name], name
    assert head.headers["Content-Length"] == str(len(data))


@pytest.mark.parametrize("authenticated", [True, False])
def test_unknown_media_and_other_servers_are_404(shared_mxcd, authenticated):
    media_id = shared_mxcd.upload_id(b"x")
    for server, mid in (("test.local", "doesNotExist"), ("other.server", media_id),
                        ("test.local:8448", media_id), ("[::1]:8448", media_id),
                        ("127.0.0.1", media_id), ("TEST.LOCAL", media_id)):
        r = shared_mxcd.download(mid, server=server, authenticated=authenticated)
        assert_error(r, 404, "M_NOT_FOUND")


def utc_ms(*fields):
    return calendar.timegm(fields) * 1000


def test_freeze_serves_new_media_only_on_the_authenticated_path(start_mxcd):
    server = start_mxcd({"media": {"legacy_download_freeze": "2024-09-01T00:00:00Z"}})
    new = server.upload_id(b"new media")
    old = server.upload_id(b"old media")
    at_freeze = server.upload_id(b"uploaded at the freeze")
    for version in ("v3", "r0", "v1"):
        r = server.download(new, authenticated=False, version=version)
        assert_error(r, 404, "M_NOT_FOUND")
    assert server.download(new).content == b"new media"

    server.stop()
    server.db_write("UPDATE media SET created_ts = ? WHERE media_id = ?",
                    (utc_ms(2024, 8, 31, 23, 59, 59), old))
    server.db_write("UPDATE media SET created_ts = ? WHERE media_id = ?",
                    (utc_ms(2024, 9, 1, 0, 0, 0), at_freeze))
    server.start()
    for version in ("v3", "r0", "v1"):
        assert server.download(old, authenticated=False, version=version).content == b"old media"
    assert_error(server.download(at_freeze, authenticated=False), 404, "M_NOT_FOUND")
    assert_error(server.download(new, authenticated=False), 404, "M_NOT_FOUND")
    assert server.download(at_freeze).content == b"uploaded at the freeze"


def test_quarantined_media_is_404(mxcd):
    media_id = mxcd.upload_id(b"bad stuff")
    other = mxcd.upload_id(b"bad stuff")  # same blob, not quarantined
    mxcd.stop()
    # TRUE: a BOOLEAN in PostgreSQL, 1 in SQLite.
    mxcd.db_write("UPDATE media SET quarantined = TRUE WHERE media_id = ?", (media_id,))
    mxcd.start()
    for authenticated in (True, False):
        assert_error(mxcd.download(media_id, authenticated=authenticated), 404, "M_NOT_FOUND")
        assert_error(mxcd.download(media_id, authenticated=authenticated, filename="x.png"),
                     404, "M_NOT_FOUND")
        assert mxcd.download(other, authenticated=authenticated).content == b"bad stuff"


def test_last_access_is_recorded(mxcd):
    media_id = mxcd.upload_id(b"touch")
    before = int(time.time() * 1000)
    assert mxcd.download(media_id).status_code == 200
    mxcd.stop()  # access times are written in batches, and at shutdown
    (ts,), = mxcd.db("SELECT last_access_ts FROM media WHERE media_id = ?", (media_id,))
    assert ts is not None and ts >= before - 1000
