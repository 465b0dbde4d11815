"""Request framing and slow clients, on raw sockets (issue 14, defects 4, 6 and 10): request
heads whose body framing is ambiguous, Host rules, bodies sent to endpoints that take none,
slow bodies, and connections that hold slots without completing a request."""

import time

import pytest

from harness import (RawConnection, raw_error, request_head, status_of, wait_until)

UPLOAD = "/_matrix/media/v3/upload"
HTTP = {"header_timeout": "3s", "idle_timeout": "3s", "body_timeout": "3s",
        "min_body_rate": "1KiB"}


@pytest.fixture
def server(start_mxcd):
    return start_mxcd({"http": HTTP})


def assert_closed_with(conn, status, timeout=10):
    response, closed = conn.read_until_closed(timeout=timeout)
    assert status_of(response) == status, response
    assert closed
    return response


def test_slow_body_on_a_small_endpoint_is_cut_within_the_body_deadline(server):
    """A POST to create (a small buffered body) announcing 60000 bytes, sent a byte every
    second: each read is within idle_timeout, but the whole body is due within 3 s."""
    conn = RawConnection(server)
    conn.send(request_head("POST", "/_matrix/media/v1/create", ["Content-Length: 60000"]))
    started = time.monotonic()
    answered = None
    while time.monotonic() - started < 20:
        if conn.readable(1):
            answered = time.monotonic() - started
            break
        conn.send_until_answered([b"x"])
    assert answered is not None and answered < 10, "the slow body was not cut"
    assert_closed_with(conn, 408)
    assert server.healthy()


def test_body_on_an_endpoint_that_takes_none_is_refused_before_reading(server):
    conn = RawConnection(server)
    conn.send(request_head("GET", "/_mxcd/health", ["Content-Length: 65536"], token=None))
    response = assert_closed_with(conn, 413, timeout=5)
    assert raw_error(response) == (413, "M_TOO_LARGE")
    assert server.healthy()


def test_upload_with_a_bad_token_is_refused_before_its_body(server):
    conn = RawConnection(server)
    conn.send(request_head("POST", UPLOAD, ["Content-Length: 1000000"], token="bad-token"))
    response, closed = conn.read_until_closed(timeout=5)
    assert raw_error(response)[0] == 401 and closed
    assert server.media_count() == 0


def test_streamed_body_below_the_minimum_rate_is_cut(server):
    """100 bytes a second against min_body_rate 1 KiB/s: cut once the 3 s grace is over."""
    conn = RawConnection(server)
    conn.send(request_head("POST", UPLOAD, ["Content-Length: 10000000"]))
    started = time.monotonic()
    cut = None
    while time.monotonic() - started < 30:
        if conn.readable(0.5):
            cut = time.monotonic() - started
            break
        if conn.send_until_answered([b"y" * 50]) == 0:
            cut = time.monotonic() - started
            break
    assert cut is not None and cut < 15, "the slow upload was not cut"
    assert server.healthy()
    assert wait_until(lambda: server.media_count() == 0 and server.tmp_files() == [], timeout=5)


def test_slow_heads_cannot_lock_out_a_legitimate_client(start_mxcd):
    server = start_mxcd({"http": {**HTTP, "header_timeout": "30s", "idle_timeout": "30s",
                                  "max_connections": 20, "max_pending_connections": 10}})
    slow = [RawConnection(server) for _ in range(40)]
    for conn in slow:
        try:
            conn.send(b"GET /_mxcd/health HTTP/1.1\r\nHost: x\r\n")
        except OSError:
            pass
    time.sleep(0.5)
    for _ in range(3):
        legit = RawConnection(server)
        legit.send(request_head("GET", "/_mxcd/health", token=None))
        assert status_of(legit.read_response()) == 200
        legit.close()
    for conn in slow:
        conn.close()


def test_idle_keepalive_connections_make_room(start_mxcd):
    server = start_mxcd({"http": {"max_connections": 4, "max_pending_connections": 4}})
    held = [RawConnection(server) for _ in range(4)]
    for conn in held:
        conn.send(request_head("GET", "/_mxcd/health", token=None))
        assert status_of(conn.read_response()) == 200
    extra = RawConnection(server)
    extra.send(request_head("GET", "/_mxcd/health", token=None))
    assert status_of(extra.read_response()) == 200
    # The oldest idle connection was closed to make room.
    _, closed = held[0].read_until_closed(timeout=5)
    assert closed


@pytest.mark.parametrize("codings, status", [
    ("xchunked", 400), ("chunked, gzip", 400), ("identity", 400), ("gzip", 400),
    ("gzip, chunked", 501),
])
def test_transfer_encoding_not_ending_in_chunked_is_refused(server, codings, status):
    conn = RawConnection(server)
    smuggled = b"GET /_mxcd/health HTTP/1.1\r\nHost: x\r\n\r\n"
    conn.send(request_head("POST", UPLOAD, [f"Transfer-Encoding: {codings}"]) +
              b"5\r\nhello\r\n0\r\n\r\n" + smuggled)
    response = assert_closed_with(conn, status)
    assert response.count(b"HTTP/1.1 ") == 1, "the body was read as another request"
    assert server.media_count() == 0


def test_transfer_encoding_with_content_length_is_refused(server):
    conn = RawConnection(server)
    conn.send(request_head("POST", UPLOAD, ["Transfer-Encoding: chunked", "Content-Length: 5"]) +
              b"5\r\nhello\r\n0\r\n\r\n")
    assert_closed_with(conn, 400)
    assert server.media_count() == 0


@pytest.mark.parametrize("head", [
    b"GET /_mxcd/health HTTP/1.1\r\n\r\n",
    b"GET /_mxcd/health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
])
def test_http11_needs_exactly_one_host(server, head):
    conn = RawConnection(server)
    conn.send(head)
    assert_closed_with(conn, 400)


def test_http10_without_host_is_served(server):
    conn = RawConnection(server)
    conn.send(b"GET /_mxcd/health HTTP/1.0\r\n\r\n")
    response, _ = conn.read_until_closed(timeout=5)
    assert status_of(response) == 200
