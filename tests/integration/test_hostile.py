"""Hostile and broken clients, on raw sockets: oversized and malformed heads, bodies that
lie about their length, slow clients, too many connections. After each the server must still
answer, and nothing half-written may remain."""

import json
import time

import pytest

from harness import (AUTHENTICATED, SERVER_NAME, RawConnection, parse_raw, raw_error,
                     request_head, status_of, wait_until)

UPLOAD = "/_matrix/media/v3/upload"
TIMEOUTS = {"header_timeout": "2s", "idle_timeout": "2s", "max_header_size": "8KiB"}


@pytest.fixture
def server(start_mxcd):
    return start_mxcd({"http": TIMEOUTS})


def assert_nothing_stored(server):
    assert server.media_count() == 0
    assert server.blob_files() == []
    assert wait_until(lambda: server.tmp_files() == [], timeout=5), server.tmp_files()


def test_oversized_header(server):
    conn = RawConnection(server)
    conn.send(request_head("GET", "/_mxcd/health", ["X-Filler: " + "a" * 20000]))
    response, closed = conn.read_until_closed()
    assert raw_error(response) == (431, "M_TOO_LARGE")
    assert closed
    assert server.healthy()


def test_many_headers_over_the_limit(server):
    conn = RawConnection(server)
    conn.send(request_head("GET", "/_mxcd/health", [f"X-H{i}: {'b' * 50}" for i in range(400)]))
    response, closed = conn.read_until_closed()
    assert raw_error(response) == (431, "M_TOO_LARGE") and closed
    assert server.healthy()


@pytest.mark.parametrize("garbage", [
    b"NOT HTTP AT ALL\r\n\r\n",
    b"GET /\x01\x02 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET\r\n\r\n",
    b"POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"GET /_mxcd/health HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n",
])
def test_malformed_request(server, garbage):
    conn = RawConnection(server)
    conn.send(garbage)
    response, closed = conn.read_until_closed()
    assert raw_error(response) == (400, "M_UNKNOWN")
    assert closed
    assert server.healthy()


def test_body_shorter_than_content_length(server):
    """The client announces 100000 bytes, sends 5000 and stalls: after idle_timeout (2 s)
    the connection is closed and the partial upload leaves nothing behind."""
    conn = RawConnection(server)
    conn.send(request_head("POST", UPLOAD, ["Content-Length: 100000"]) + b"x" * 5000)
    assert wait_until(lambda: server.tmp_files() != [], timeout=5)
    response, closed = conn.read_until_closed(timeout=15)
    assert closed, "the stalled upload was not closed after idle_timeout"
    assert status_of(response) in (None, 400, 408), response
    assert server.healthy()
    assert_nothing_stored(server)


def test_body_cut_short_by_the_client(server):
    conn = RawConnection(server)
    conn.send(request_head("POST", UPLOAD, ["Content-Length: 100000"]) + b"x" * 5000)
    assert wait_until(lambda: server.tmp_files() != [], timeout=5)
    conn.close()
    assert server.healthy()
    assert_nothing_stored(server)


def test_body_longer_than_content_length(server):
    conn = RawConnection(server)
    conn.send(request_head("POST", UPLOAD, ["Content-Length: 5"])
              + b"helloEXTRA BYTES THAT ARE NOT HTTP\r\n\r\n")
    first = conn.read_response()
    assert status_of(first) == 200
    # The extra bytes are read as the next request, which is malformed.
    response, closed = conn.read_until_closed()
    assert raw_error(response) == (400, "M_UNKNOWN") and closed
    uri = json.loads(parse_raw(first)[2])["content_uri"]
    assert server.download(uri.rsplit("/", 1)[1]).content == b"hello"
    assert server.media_count() == 1
    assert server.healthy()


def test_slow_client_trickling_the_request_head(server):
    """One byte per second: the head is never complete within header_timeout (2 s)."""
    conn = RawConnection(server)
    started = time.monotonic()
    for byte in b"GET /_mxcd/health HTTP/1.1\r\nHost: x\r\n":
        if conn.readable(timeout=1) or time.monotonic() - started > 10:
            break
        try:
            conn.send(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            break
    response, closed = conn.read_until_closed()
    assert raw_error(response) == (408, "M_UNKNOWN")
    assert closed
    assert time.monotonic() - started < 10
    assert server.healthy()


def test_idle_keep_alive_connection_is_closed(start_mxcd):
    server = start_mxcd({"http": {"keepalive_timeout": "1s"}})
    conn = RawConnection(server)
    conn.send(request_head("GET", "/_mxcd/health", token=None))
    assert status_of(conn.read_response()) == 200
    response, closed = conn.read_until_closed(timeout=10)
    assert closed and response == b""


def test_keep_alive_serves_several_requests(server):
    conn = RawConnection(server)
    for _ in range(3):
        conn.send(request_head("GET", "/_mxcd/health", token=None))
        assert status_of(conn.read_response()) == 200


def test_pipelined_requests(server):
    conn = RawConnection(server)
    conn.send(request_head("GET", "/_mxcd/health", token=None)
              + request_head("GET", "/_mxcd/version", token=None))
    assert json.loads(parse_raw(conn.read_response())[2]) == {"status": "ok"}
    assert json.loads(parse_raw(conn.read_response())[2])["server"] == "mxcd"


def test_connection_limit(start_mxcd):
    server = start_mxcd({"http": {"max_connections": 4, "idle_timeout": "30s"}})
    held = [RawConnection(server) for _ in range(4)]
    # Each held connection is busy with an upload whose body has only begun: busy
    # connections are never closed to make room (idle keep-alive ones would be).
    for conn in held:
        conn.send(request_head("POST", UPLOAD, ["Content-Length: 100000"]) + b"x" * 5000)
    assert wait_until(lambda: len(server.tmp_files()) == 4, timeout=10)
    extra = RawConnection(server)
    extra.send(request_head("GET", "/_mxcd/health", token=None))
    response, closed = extra.read_until_closed()
    assert raw_error(response) == (503, "M_LIMIT_EXCEEDED") and closed
    for conn in held:
        conn.close()

    def answers():
        try:
            return server.healthy()
        except Exception:
            return False
    assert wait_until(answers, timeout=10)
    media_id = server.upload_id(b"after the crowd left")
    assert server.download(media_id).content == b"after the crowd left"


def test_server_survives_a_reset_mid_download(server):
    media_id = server.upload_id(b"r" * 5_000_000)
    for _ in range(5):
        conn = RawConnection(server)
        conn.send(request_head("GET", f"{AUTHENTICATED}/download/{SERVER_NAME}/{media_id}"))
        conn.sock.recv(1000)
        conn.close()
    assert server.download(media_id).content == b"r" * 5_000_000
