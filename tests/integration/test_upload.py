"""POST upload: content types, file names, size limits, deduplication."""

import re
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import ALICE, RawConnection, sha256, status_of


@pytest.mark.parametrize("version", ["v3", "r0", "v1"])
def test_upload_and_download_round_trip(mxcd, version):
    data = b"\x89PNG not really" * 100
    r = mxcd.upload(data, content_type="image/png", version=version)
    assert r.status_code == 200
    assert re.fullmatch(r"mxc://test\.local/[A-Za-z0-9]{24,}", r.json()["content_uri"])
    media_id = r.json()["content_uri"].rsplit("/", 1)[1]
    d = mxcd.download(media_id)
    assert d.status_code == 200 and d.content == data
    assert d.headers["Content-Type"] == "image/png"


def test_content_type_is_stored_verbatim(mxcd):
    for content_type in ("img/png", "Text/Plain; charset=utf-8", "application/x-weird+json"):
        media_id = mxcd.upload_id(b"x", content_type=content_type)
        assert mxcd.download(media_id).headers["Content-Type"] == content_type


def test_content_type_defaults_to_octet_stream(mxcd):
    media_id = mxcd.upload_id(b"x", content_type=None)
    assert mxcd.download(media_id).headers["Content-Type"] == "application/octet-stream"


def test_media_ids_are_unique(mxcd):
    ids = {mxcd.upload_id(b"same bytes") for _ in range(20)}
    assert len(ids) == 20


def test_filename_is_recorded(mxcd):
    media_id = mxcd.upload_id(b"x", filename="report 2024.pdf")
    assert mxcd.db("SELECT upload_name FROM media WHERE media_id = ?", (media_id,)) == [
        ("report 2024.pdf",)]


def test_invalid_filename_is_refused(mxcd):
    r = mxcd.upload(b"x", filename="bad\x01name")
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = mxcd.upload(b"x", filename="a" * 256)
    assert r.status_code == 400
    assert mxcd.db("SELECT COUNT(*) FROM media") == [(0,)]


def test_empty_upload(mxcd):
    media_id = mxcd.upload_id(b"")
    r = mxcd.download(media_id)
    assert r.status_code == 200 and r.content == b""
    assert r.headers["ETag"] == f'"{sha256(b"")}"'


def test_chunked_upload(mxcd):
    chunks = [b"a" * 1000, b"b" * 70000, b"c"]
    r = requests.post(mxcd.url + "/_matrix/media/v3/upload", data=iter(chunks), headers=ALICE,
                      timeout=30)
    assert r.status_code == 200
    media_id = r.json()["content_uri"].rsplit("/", 1)[1]
    assert mxcd.download(media_id).content == b"".join(chunks)


def test_expect_100_continue(mxcd):
    conn = RawConnection(mxcd)
    conn.send(b"POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer alice-token\r\nContent-Length: 5\r\n"
              b"Expect: 100-continue\r\n\r\n")
    assert conn.sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    conn.send(b"hello")
    assert status_of(conn.read_response()) == 200


def test_too_large_from_content_length_before_the_body(mxcd):
    # 2 GiB announced, three bytes sent: the answer must come without waiting for the rest.
    conn = RawConnection(mxcd)
    conn.send(b"POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer alice-token\r\nContent-Length: 2147483648\r\n\r\nabc")
    response = conn.read_response()
    assert status_of(response) == 413
    assert b'"M_TOO_LARGE"' in response
    conn.close()
    assert mxcd.get("/_mxcd/health").status_code == 200
    assert mxcd.db("SELECT COUNT(*) FROM media") == [(0,)]


def test_too_large_with_expect_continue_sends_no_continue(mxcd):
    conn = RawConnection(mxcd)
    conn.send(b"POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer alice-token\r\nContent-Length: 20000000\r\n"
              b"Expect: 100-continue\r\n\r\n")
    assert status_of(conn.read_response()) == 413


def test_too_large_while_streaming_a_chunked_body(start_mxcd):
    server = start_mxcd({"media": {"max_upload_size": "1MiB"}})

    def body():
        for _ in range(40):
            yield b"z" * 65536

    try:
        r = requests.post(server.url + "/_matrix/media/v3/upload", data=body(), headers=ALICE,
                          timeout=30)
        assert r.status_code == 413 and r.json()["errcode"] == "M_TOO_LARGE"
    except requests.ConnectionError:
        pass  # the server may close before the client has sent everything
    assert server.db("SELECT COUNT(*) FROM media") == [(0,)]
    assert server.blob_files() == []
    assert server.tmp_files() == []
    # Exactly the limit is fine.
    assert server.upload(b"y" * (1024 * 1024)).status_code == 200


def test_same_bytes_are_stored_once(mxcd):
    data = b"deduplicate me" * 1000
    first = mxcd.upload_id(data, content_type="text/plain", filename="a.txt")
    second = mxcd.upload_id(data, content_type="image/png", filename="b.png")
    assert first != second
    assert [p.name for p in mxcd.blob_files()] == [sha256(data)]
    assert mxcd.db("SELECT COUNT(*) FROM media WHERE sha256 = ?", (sha256(data),)) == [(2,)]
    assert mxcd.download(second).headers["Content-Type"] == "image/png"
    assert mxcd.download(first).headers["Content-Disposition"] == "inline; filename=a.txt"


def test_blob_layout_on_disk(mxcd):
    data = b"where does it go"
    mxcd.upload_id(data)
    digest = sha256(data)
    path = mxcd.storage / "blobs" / digest[:2] / digest[2:4] / digest
    assert path.read_bytes() == data
    assert mxcd.db("SELECT size, store FROM blobs WHERE sha256 = ?", (digest,)) == [
        (len(data), "local")]


def test_hundred_concurrent_identical_uploads(mxcd):
    data = b"x" * (256 * 1024)
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: mxcd.upload(data), range(100)))
    assert [r.status_code for r in responses] == [200] * 100
    ids = {r.json()["content_uri"] for r in responses}
    assert len(ids) == 100
    assert [p.name for p in mxcd.blob_files()] == [sha256(data)]
    assert mxcd.db("SELECT COUNT(*) FROM media") == [(100,)]
    assert mxcd.db("SELECT COUNT(*) FROM blobs") == [(1,)]
    assert mxcd.tmp_files() == []
