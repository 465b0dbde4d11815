"""Hostile and broken clients: raw requests no HTTP library would send. After each, the
server must still answer, and nothing half-written may remain."""

import time

import pytest

from conftest import RawConnection, status_of

UPLOAD_HEAD = (b"POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: x\r\n"
               b"Authorization: Bearer alice-token\r\n")


@pytest.fixture
def server(start_mxcd):
    return start_mxcd({"http": {"header_timeout": "2s", "idle_timeout": "2s",
                                "max_header_size": "8KiB"}})


def assert_healthy(server):
    assert server.get("/_mxcd/health").status_code == 200


@pytest.mark.parametrize("target", [
    b"/_matrix/media/v3/download/test.local/..",
    b"/_matrix/media/v3/download/../mxcd.sqlite3",
    b"/_matrix/media/v3/download/test.local/..%2F..%2Fmxcd.sqlite3",
    b"/_matrix/media/v3/download/test.local/%2e%2e",
    b"/_matrix/media/v3/download/%2e%2e/%2e%2e",
    b"/_matrix/media/v3/download/test.local/a%00b",
    b"/_matrix/media/v3/download/test.local%2F..%2F../abc",
])
def test_path_traversal(server, target):
    conn = RawConnection(server)
    conn.send(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = conn.read_all()
    assert status_of(response) in (400, 404)
    assert b"SQLite" not in response
    assert_healthy(server)


def test_oversized_header(server):
    conn = RawConnection(server)
    conn.send(b"GET /_mxcd/health HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * 20000 + b"\r\n\r\n")
    response = conn.read_all()
    assert status_of(response) == 431
    assert b"M_TOO_LARGE" in response
    assert_healthy(server)


def test_malformed_request_line(server):
    for garbage in (b"NOT HTTP AT ALL\r\n\r\n", b"GET /\x01\x02 HTTP/1.1\r\n\r\n",
                    b"GET / HTTP/9.9\r\n\r\n"):
        conn = RawConnection(server)
        conn.send(garbage)
        assert status_of(conn.read_all()) == 400
    assert_healthy(server)


def test_body_shorter_than_content_length(server):
    conn = RawConnection(server)
    conn.send(UPLOAD_HEAD + b"Content-Length: 100000\r\n\r\n" + b"x" * 5000)
    started = time.monotonic()
    response = conn.read_all()
    # The body stalls: after idle_timeout the upload is abandoned.
    assert time.monotonic() - started < 10
    assert status_of(response) in (400, None)
    assert_healthy(server)
    assert server.db("SELECT COUNT(*) FROM media") == [(0,)]
    assert server.blob_files() == []
    assert server.tmp_files() == []


def test_body_longer_than_content_length(server):
    conn = RawConnection(server)
    conn.send(UPLOAD_HEAD + b"Content-Length: 5\r\n\r\nhelloEXTRA BYTES THAT ARE NOT HTTP\r\n\r\n")
    first = conn.read_response()
    assert status_of(first) == 200
    # The extra bytes are read as the next request, which is malformed.
    assert status_of(conn.read_all()) == 400
    media_id = first.split(b'mxc://test.local/')[1].split(b'"')[0].decode()
    assert server.download(media_id).content == b"hello"
    assert_healthy(server)


def test_slow_client_trickling_the_request_head(server):
    conn = RawConnection(server)
    started = time.monotonic()
    response = b""
    for byte in b"GET /_mxcd/health HTTP/1.1\r\nHost: x\r\n":
        try:
            conn.send(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            break
        time.sleep(0.2)
        if time.monotonic() - started > 6:
            break
    response = conn.read_all()
    assert status_of(response) == 408
    assert time.monotonic() - started < 8
    assert_healthy(server)


def test_idle_keep_alive_connection_is_closed(start_mxcd):
    server = start_mxcd({"http": {"keepalive_timeout": "1s"}})
    conn = RawConnection(server)
    conn.send(b"GET /_mxcd/health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(conn.read_response()) == 200
    started = time.monotonic()
    assert conn.read_all() == b""
    assert time.monotonic() - started < 5


def test_connection_limit(start_mxcd):
    server = start_mxcd({"http": {"max_connections": 4}})
    held = [RawConnection(server) for _ in range(4)]
    time.sleep(0.3)
    extra = RawConnection(server)
    extra.send(b"GET /_mxcd/health HTTP/1.1\r\nHost: x\r\n\r\n")
    response = extra.read_all()
    assert status_of(response) == 503
    assert b"M_LIMIT_EXCEEDED" in response
    for conn in held:
        conn.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if server.get("/_mxcd/health", timeout=2).status_code == 200:
                break
        except Exception:
            pass
        time.sleep(0.1)
    assert server.get("/_mxcd/health").status_code == 200


def test_pipelined_requests(server):
    conn = RawConnection(server)
    conn.send(b"GET /_mxcd/health HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /_mxcd/version HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b'"status":"ok"' in conn.read_response()
    assert b'"server":"mxcd"' in conn.read_response()
