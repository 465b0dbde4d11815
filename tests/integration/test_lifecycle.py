"""Start-up, shutdown, crashes, configuration and logging."""

import json
import os
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import ALICE, REPO, RawConnection, binary, sha256, status_of


def slow_body(total, pieces, pause):
    for _ in range(pieces):
        yield b"s" * (total // pieces)
        time.sleep(pause)


def test_sigterm_lets_an_upload_in_flight_finish(mxcd):
    result = {}

    def upload():
        result["r"] = requests.post(mxcd.url + "/_matrix/media/v3/upload", headers=ALICE,
                                    data=slow_body(200_000, 10, 0.2), timeout=30)

    t = threading.Thread(target=upload)
    t.start()
    time.sleep(0.6)
    mxcd.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(requests.ConnectionError):
        requests.get(mxcd.url + "/_mxcd/health", timeout=2)
    t.join(30)
    assert result["r"].status_code == 200
    assert mxcd.proc.wait(30) == 0
    media_id = result["r"].json()["content_uri"].rsplit("/", 1)[1]
    mxcd.start()
    assert mxcd.download(media_id).content == b"s" * 200_000


def test_grace_period_bounds_shutdown(start_mxcd):
    server = start_mxcd({"http": {"shutdown_grace_period": "1s", "idle_timeout": "60s"}})
    conn = RawConnection(server)
    conn.send(b"POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer alice-token\r\nContent-Length: 1000000\r\n\r\nstalled")
    time.sleep(0.3)
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(10) == 0
    assert time.monotonic() - started < 5
    server.start()
    assert server.tmp_files() == []
    assert server.db("SELECT COUNT(*) FROM media") == [(0,)]


def test_idle_connections_do_not_delay_shutdown(mxcd):
    conn = RawConnection(mxcd)
    conn.send(b"GET /_mxcd/health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(conn.read_response()) == 200
    started = time.monotonic()
    assert mxcd.stop() == 0
    assert time.monotonic() - started < 3


def test_kill_9_during_an_upload_loses_nothing_committed(mxcd):
    earlier = {}
    for i in range(5):
        data = os.urandom(10_000 + i)
        earlier[mxcd.upload_id(data, content_type="application/x-test")] = data

    conn = RawConnection(mxcd)
    conn.send(b"POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer alice-token\r\nContent-Length: 5000000\r\n\r\n")
    conn.send(os.urandom(2_000_000))
    deadline = time.monotonic() + 10
    while not mxcd.tmp_files() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mxcd.tmp_files(), "the upload in progress should have a temporary file"
    mxcd.proc.kill()
    mxcd.proc.wait()

    mxcd.start()
    assert mxcd.tmp_files() == []
    assert mxcd.db("SELECT COUNT(*) FROM media") == [(5,)]
    assert len(mxcd.blob_files()) == 5
    for media_id, data in earlier.items():
        r = mxcd.download(media_id)
        assert r.status_code == 200 and r.content == data
        assert r.headers["Content-Type"] == "application/x-test"


def check_config(tmp_path, config, env=None):
    path = tmp_path / "config.yaml"
    path.write_text(config)
    return subprocess.run([str(binary("MXCD_BINARY", "build/asan/mxcd")), "check-config",
                           "--config", str(path)], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **(env or {})))


VALID = """
server_name: test.local
auth: {homeserver_url: "http://127.0.0.1:8008"}
storage: {path: /tmp/x}
database: {sqlite: {path: /tmp/x.db}}
"""


@pytest.mark.parametrize("extra,key", [
    ("surprise: 1", "surprise"),
    ("media: {max_upload_size: 12 parsecs}", "media.max_upload_size"),
    ("media: {max_upload_sise: 10M}", "media.max_upload_sise"),
    ("http: {header_timeout: soon}", "http.header_timeout"),
    ("http: {idle_timeout: 0s}", "http.idle_timeout"),
    ("listen: {port: 70000}", "listen.port"),
    ("listen: {port: [1, 2]}", "listen.port"),
    ("http: {trusted_proxies: [not-an-ip]}", "http.trusted_proxies[0]"),
    ("media: {legacy_download_freeze: yesterday}", "media.legacy_download_freeze"),
    ("log: {level: chatty}", "log.level"),
])
def test_invalid_config_names_the_key(tmp_path, extra, key):
    result = check_config(tmp_path, VALID + extra + "\n")
    assert result.returncode == 2
    assert f"config error: {key}:" in result.stderr


def test_missing_required_keys(tmp_path):
    result = check_config(tmp_path, "storage: {path: /tmp/x}\n")
    assert result.returncode == 2 and "config error: server_name:" in result.stderr
    result = check_config(tmp_path, VALID.replace("storage: {path: /tmp/x}", ""))
    assert result.returncode == 2 and "config error: storage.path:" in result.stderr


def test_secrets_from_the_environment(tmp_path):
    config = VALID + 'auth: {static_tokens: [{token: "${MXCD_TEST_SECRET}", user_id: "@a:b"}]}\n'
    config = config.replace('auth: {homeserver_url: "http://127.0.0.1:8008"}\n', "")
    result = check_config(tmp_path, config)
    assert result.returncode == 2
    assert "auth.static_tokens[0].token: environment variable MXCD_TEST_SECRET is not set" in result.stderr
    assert check_config(tmp_path, config, {"MXCD_TEST_SECRET": "long-enough"}).returncode == 0


def test_example_config_is_valid(tmp_path):
    result = subprocess.run([str(binary("MXCD_BINARY", "build/asan/mxcd")), "check-config",
                             "--config", str(REPO / "config/mxcd.example.yaml")],
                            capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, MXCD_DEV_TOKEN="let-me-in-please"))
    assert result.returncode == 0, result.stderr


def test_serve_refuses_a_bad_config(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(VALID + "media: {max_upload_size: lots}\n")
    result = subprocess.run([str(binary("MXCD_BINARY", "build/asan/mxcd")), "serve", "--config",
                             str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "config error: media.max_upload_size:" in result.stderr


def test_refuses_a_newer_database_schema(mxcd):
    mxcd.stop()
    mxcd.db_write("UPDATE schema_version SET version = 999")
    result = subprocess.run([str(mxcd.binary), "serve", "--config", str(mxcd.config_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "schema version 999" in result.stderr


def request_log_line(server, marker):
    assert server.wait_for_log(marker)
    return next(line for line in server.log().splitlines() if marker in line)


def test_request_log_line(mxcd):
    mxcd.get("/_mxcd/version", params={"marker": "one"})
    line = request_log_line(mxcd, "marker=one")
    for field in ("method=GET", "path=/_mxcd/version?marker=one", "status=200", "bytes=",
                  "duration_ms=", "client=127.0.0.1"):
        assert field in line


@pytest.mark.parametrize("trusted,expected", [(["127.0.0.1/32"], "client=203.0.113.7"),
                                              ([], "client=127.0.0.1")])
def test_forwarded_for_only_from_trusted_proxies(start_mxcd, trusted, expected):
    server = start_mxcd({"http": {"trusted_proxies": trusted}})
    server.get("/_mxcd/version", params={"marker": "xff"},
               headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7"})
    assert expected in request_log_line(server, "marker=xff")
