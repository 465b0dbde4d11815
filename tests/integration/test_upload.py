"""POST upload: the answer, content types, file names, size limits, deduplication."""

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import (ALICE, MAX_UPLOAD, SERVER_NAME, STORE, RawConnection, assert_error, media_id_of,
                     parse_raw, raw_error, request_head, sha256, status_of, wait_until)

UPLOAD = "/_matrix/media/v3/upload"


@pytest.mark.parametrize("version", ["v3", "r0", "v1"])
def test_upload_on_every_version(shared_mxcd, version):
    data = b"\x89PNG not really" * 100
    r = shared_mxcd.upload(data, content_type="image/png", version=version)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert re.fullmatch(rf"mxc://{re.escape(SERVER_NAME)}/[A-Za-z0-9]{{24,}}",
                        r.json()["content_uri"])
    media_id = r.json()["content_uri"].rsplit("/", 1)[1]
    d = shared_mxcd.download(media_id)
    assert d.status_code == 200 and d.content == data
    assert d.headers["Content-Type"] == "image/png"


@pytest.mark.parametrize("content_type", ["img/png", "Text/Plain; charset=utf-8",
                                          "application/x-weird+json", "image/png"])
def test_content_type_is_stored_verbatim(shared_mxcd, content_type):
    media_id = shared_mxcd.upload_id(b"x", content_type=content_type)
    for authenticated in (True, False):
        r = shared_mxcd.download(media_id, authenticated=authenticated)
        assert r.headers["Content-Type"] == content_type


@pytest.mark.parametrize("stored", ["text/plain", "text/html", "application/json",
                                    "image/svg+xml", "Text/CSV"])
def test_bare_text_types_are_served_as_utf8(shared_mxcd, stored):
    """As Synapse does: a text type stored without a charset is served with UTF-8, which
    browsers would otherwise guess at. The record keeps the type as it was sent."""
    text = "h\u00e9llo \u2615"
    media_id = shared_mxcd.upload_id(text.encode(), content_type=stored)
    for authenticated in (True, False):
        r = shared_mxcd.download(media_id, authenticated=authenticated)
        assert r.headers["Content-Type"] == stored + "; charset=UTF-8"
        assert r.text == text
    assert shared_mxcd.db("SELECT content_type FROM media WHERE media_id = ?",
                          (media_id,)) == [(stored,)]


def test_content_type_defaults_to_octet_stream(mxcd):
    media_id = mxcd.upload_id(b"x", content_type=None)
    assert mxcd.download(media_id).headers["Content-Type"] == "application/octet-stream"
    assert mxcd.db("SELECT content_type FROM media WHERE media_id = ?", (media_id,)) == [
        ("application/octet-stream",)]


def test_media_ids_are_unique(mxcd):
    ids = {mxcd.upload_id(b"same bytes") for _ in range(20)}
    assert len(ids) == 20


@pytest.mark.parametrize("name", ["report 2024.pdf", "🐔", "é" * 127 + "a"])
def test_filename_is_recorded(shared_mxcd, name):
    # The last name is 255 bytes of UTF-8: the longest allowed.
    media_id = shared_mxcd.upload_id(b"x", filename=name)
    assert shared_mxcd.db("SELECT upload_name, uploader FROM media WHERE media_id = ?",
                          (media_id,)) == [(name, "@alice:test.local")]


@pytest.mark.parametrize("query", [
    "filename=bad%01name",         # a control character
    "filename=tab%09name",
    "filename=" + "a" * 256,       # over 255 bytes
    "filename=" + "%C3%A9" * 128,  # 256 bytes of UTF-8
    "filename=%FF%FEbad",          # not UTF-8
])
def test_invalid_filename_is_refused(shared_mxcd, query):
    stored = shared_mxcd.media_count()
    r = shared_mxcd.request("POST", UPLOAD, data=b"x", headers=ALICE, params=query)
    assert_error(r, 400, "M_INVALID_PARAM")
    assert shared_mxcd.media_count() == stored


def test_empty_upload(mxcd):
    media_id = mxcd.upload_id(b"")
    r = mxcd.download(media_id)
    assert r.status_code == 200 and r.content == b""
    assert r.headers["Content-Length"] == "0"
    assert r.headers["ETag"] == f'"{sha256(b"")}"'


def test_chunked_upload(mxcd):
    chunks = [b"a" * 1000, b"b" * 70000, b"c"]
    # A generator body makes requests send Transfer-Encoding: chunked.
    r = mxcd.request("POST", UPLOAD, data=iter(chunks), headers=ALICE)
    assert mxcd.download(media_id_of(r)).content == b"".join(chunks)


def test_expect_100_continue(mxcd):
    conn = RawConnection(mxcd)
    conn.send(request_head("POST", UPLOAD, ["Content-Length: 5", "Expect: 100-continue"]))
    assert conn.sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    conn.send(b"hello")
    response = conn.read_response()
    assert status_of(response) == 200
    uri = json.loads(parse_raw(response)[2])["content_uri"]
    assert mxcd.download(uri.rsplit("/", 1)[1]).content == b"hello"


def test_too_large_from_content_length_before_the_body(mxcd):
    # 2 GiB announced, three bytes sent: the answer must come without the rest of the body.
    conn = RawConnection(mxcd)
    conn.send(request_head("POST", UPLOAD, ["Content-Length: 2147483648"]) + b"abc")
    assert raw_error(conn.read_response()) == (413, "M_TOO_LARGE")
    conn.close()
    assert mxcd.healthy()
    assert mxcd.media_count() == 0
    assert mxcd.tmp_files() == []


def test_too_large_with_expect_continue_sends_no_continue(mxcd):
    conn = RawConnection(mxcd)
    conn.send(request_head("POST", UPLOAD, [f"Content-Length: {MAX_UPLOAD + 1}",
                                            "Expect: 100-continue"]))
    assert raw_error(conn.read_response()) == (413, "M_TOO_LARGE")


def test_limit_is_inclusive(start_mxcd):
    server = start_mxcd({"media": {"max_upload_size": "1MiB"}})
    assert server.upload(b"y" * (1024 * 1024)).status_code == 200
    assert_error(server.upload(b"y" * (1024 * 1024 + 1)), 413, "M_TOO_LARGE")
    assert server.media_count() == 1


def test_too_large_while_streaming_a_chunked_body(start_mxcd):
    server = start_mxcd({"media": {"max_upload_size": "1MiB"}})
    conn = RawConnection(server)
    conn.send(request_head("POST", UPLOAD, ["Transfer-Encoding: chunked"]))
    piece = b"z" * 65536
    chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
    # 64 MiB offered, far more than the socket buffers hold: the answer must come once the
    # body passes 1 MiB, not at its end.
    sent = conn.send_until_answered([chunk] * 1024)
    assert sent < 1024 * len(chunk), "the server did not answer before the end of the body"
    assert raw_error(conn.read_response()) == (413, "M_TOO_LARGE")
    conn.close()
    assert server.healthy()
    assert server.media_count() == 0
    assert server.blob_files() == []
    # The temporary file goes when the refused upload unwinds, which may be just after the
    # answer was sent.
    assert wait_until(lambda: server.tmp_files() == [], timeout=5), server.tmp_files()


def test_same_bytes_are_stored_once(mxcd):
    data = b"deduplicate me" * 1000
    first = mxcd.upload_id(data, content_type="text/plain", filename="a.txt")
    second = mxcd.upload_id(data, content_type="image/png", filename="b.png")
    assert first != second
    assert [p.name for p in mxcd.blob_files()] == [sha256(data)]
    assert mxcd.db("SELECT media_id, content_type, upload_name FROM media WHERE sha256 = ? "
                   "ORDER BY upload_name", (sha256(data),)) == [
        (first, "text/plain", "a.txt"), (second, "image/png", "b.png")]
    # Each record keeps its own metadata.
    assert mxcd.download(second).headers["Content-Type"] == "image/png"
    assert mxcd.download(first).headers["Content-Type"] == "text/plain; charset=UTF-8"


@pytest.mark.skipif(STORE != "local", reason="the local store's layout on disk")
def test_blob_layout_on_disk(mxcd):
    data = b"where does it go"
    mxcd.upload_id(data)
    digest = sha256(data)
    path = mxcd.storage / "blobs" / digest[:2] / digest[2:4] / digest
    assert path.read_bytes() == data
    assert mxcd.blob_files() == [path]
    assert mxcd.db("SELECT size FROM blobs WHERE sha256 = ?", (digest,)) == [(len(data),)]


def test_hundred_concurrent_identical_uploads(mxcd):
    data = b"x" * (256 * 1024)
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: mxcd.upload(data), range(100)))
    assert [r.status_code for r in responses] == [200] * 100
    assert len({r.json()["content_uri"] for r in responses}) == 100
    assert [p.name for p in mxcd.blob_files()] == [sha256(data)]
    assert mxcd.db("SELECT COUNT(*), COUNT(DISTINCT media_id), MIN(sha256), MAX(sha256) "
                   "FROM media") == [(100, 100, sha256(data), sha256(data))]
    assert mxcd.db("SELECT COUNT(*) FROM blobs") == [(1,)]
    assert mxcd.tmp_files() == []
