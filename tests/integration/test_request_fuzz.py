"""A raw-socket request fuzzer: a few thousand mutated requests from a fixed seed (methods,
targets, headers, Transfer-Encoding and Content-Length, chunk sizes, truncations, random
bytes). The server must never answer 500, never crash, and serve a valid request after
every batch of malformed ones."""

import random
import socket

from harness import status_of

SEED = 14
REQUESTS = 5000
CHECK_EVERY = 50
METHODS = ["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH", "G\x00T", "", "get"]
TARGETS = ["/_mxcd/health", "/_matrix/media/v3/upload", "/_matrix/media/v1/create",
           "/_matrix/client/v1/media/download/test.local/abc", "/../../etc/passwd", "*",
           "http://x/", "/%00", "/" + "a" * 3000, "/_matrix/media/v3/upload?filename=%ff"]
TRANSFER_ENCODINGS = ["chunked", "xchunked", "chunked, gzip", "gzip, chunked", "identity",
                      "chunked, chunked", "", " chunked", "CHUNKED"]


def mutated_request(rng):
    lines = [f"{rng.choice(METHODS)} {rng.choice(TARGETS)} "
             f"{rng.choice(['HTTP/1.1', 'HTTP/1.0', 'HTTP/2', 'HTTP/1.1 x'])}"]
    for _ in range(rng.randrange(3)):
        lines.append("Host: " + rng.choice(["x", "", "a b"]))
    if rng.random() < 0.5:
        lines.append("Authorization: Bearer " + rng.choice(["alice_token", "bad", "\x7f"]))
    if rng.random() < 0.5:
        lines.append("Transfer-Encoding: " + rng.choice(TRANSFER_ENCODINGS))
    if rng.random() < 0.5:
        lines.append("Content-Length: " + rng.choice(["0", "5", "-1", "99999999999999999999",
                                                      "5, 5", "abc", str(rng.randrange(100))]))
    if rng.random() < 0.2:
        lines.append(rng.choice(["Expect: 100-continue", "Connection: close", "X: \x01",
                                 "NoColon", " leading: space"]))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    body = b""
    for _ in range(rng.randrange(3)):
        size = rng.choice(["5", "0", "ffffffffffffffffff", "-1", "5;ext=1", "z", "3 "])
        body += size.encode() + b"\r\nhello\r\n"
    body += rng.choice([b"0\r\n\r\n", b"", b"hello", bytes(rng.randrange(256) for _ in range(20))])
    data = head + body
    if rng.random() < 0.3:
        data = data[:rng.randrange(len(data) + 1)]
    if data and rng.random() < 0.2:
        data = bytearray(data)
        for _ in range(rng.randrange(1, 5)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = bytes(data)
    return data


def exchange(port, data):
    """Sends data, half-closes, returns what the server answered (b"" on a reset)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        out = b""
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (ConnectionResetError, BrokenPipeError, socket.timeout):
            pass
        return out


def test_mutated_requests(start_mxcd):
    server = start_mxcd({"http": {"header_timeout": "1s", "idle_timeout": "1s",
                                  "body_timeout": "1s", "keepalive_timeout": "1s"}})
    rng = random.Random(SEED)
    for i in range(REQUESTS):
        data = mutated_request(rng)
        answer = exchange(server.port, data)
        for response in answer.split(b"HTTP/1.1 ")[1:]:
            assert not response.startswith(b"500"), (data, answer)
        if i % CHECK_EVERY == CHECK_EVERY - 1:
            assert server.running(), f"mxcd died after {data!r}"
            valid = exchange(server.port, b"GET /_mxcd/health HTTP/1.1\r\nHost: x\r\n"
                                          b"Connection: close\r\n\r\n")
            assert status_of(valid) == 200, (data, valid)
    assert server.running()
