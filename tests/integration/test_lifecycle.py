"""Graceful shutdown, crashes, and start-up on an existing database."""

import os
import signal
import socket
import subprocess
import threading
import time

import requests

from harness import (ALICE, RawConnection, media_id_of, request_head, server_env, slow_body,
                     status_of, wait_until)


def refuses_connections(server):
    try:
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


def test_sigterm_lets_an_upload_in_flight_finish(mxcd):
    result = {}

    def upload():
        # 200 kB over about 2 s.
        result["r"] = requests.post(mxcd.url + "/_matrix/media/v3/upload", headers=ALICE,
                                    data=slow_body(200_000, 10, 0.2), timeout=60)

    uploader = threading.Thread(target=upload)
    uploader.start()
    assert wait_until(lambda: mxcd.tmp_files() != []), "the upload did not start"
    mxcd.proc.send_signal(signal.SIGTERM)
    assert wait_until(lambda: refuses_connections(mxcd), timeout=5), \
        "new connections are still accepted after SIGTERM"
    assert "r" not in result, "the upload should still be in flight"
    uploader.join(60)
    assert result["r"].status_code == 200
    assert mxcd.proc.wait(30) == 0
    media_id = media_id_of(result["r"])
    mxcd.start()
    assert mxcd.download(media_id).content == b"s" * 200_000


def test_grace_period_bounds_shutdown(start_mxcd):
    server = start_mxcd({"http": {"shutdown_grace_period": "1s", "idle_timeout": "60s"}})
    conn = RawConnection(server)
    conn.send(request_head("POST", "/_matrix/media/v3/upload", ["Content-Length: 1000000"])
              + b"stalled")
    assert wait_until(lambda: server.tmp_files() != [])
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(30) == 0
    # 1 s of grace, not the 60 s idle timeout of the stalled upload.
    assert time.monotonic() - started < 10
    server.start()
    assert server.tmp_files() == []
    assert server.media_count() == 0


def test_idle_connections_do_not_delay_shutdown(start_mxcd):
    server = start_mxcd({"http": {"shutdown_grace_period": "60s", "keepalive_timeout": "60s"}})
    conn = RawConnection(server)
    conn.send(request_head("GET", "/_mxcd/health", token=None))
    assert status_of(conn.read_response()) == 200
    started = time.monotonic()
    assert server.stop() == 0
    # Closed at once rather than waited for until the 60 s grace period.
    assert time.monotonic() - started < 10
    assert conn.read_until_closed(timeout=5) == (b"", True)


def test_sigint_is_graceful_too(mxcd):
    mxcd.proc.send_signal(signal.SIGINT)
    assert mxcd.proc.wait(30) == 0


def test_kill_9_during_an_upload_loses_nothing_committed(mxcd):
    earlier = {}
    for i in range(5):
        data = os.urandom(10_000 + i)
        earlier[mxcd.upload_id(data, content_type="application/x-test")] = data

    conn = RawConnection(mxcd)
    conn.send(request_head("POST", "/_matrix/media/v3/upload", ["Content-Length: 5000000"]))
    for _ in range(8):  # 2 MB of the 5 MB, slowly
        conn.send(os.urandom(250_000))
        time.sleep(0.1)
    assert wait_until(lambda: mxcd.tmp_files() != []), \
        "the upload in progress should have a temporary file"
    mxcd.proc.kill()
    mxcd.proc.wait(30)
    conn.close()

    mxcd.start()
    assert mxcd.tmp_files() == []  # cleaned at start-up
    assert mxcd.media_count() == 5
    assert len(mxcd.blob_files()) == 5
    for media_id, data in earlier.items():
        r = mxcd.download(media_id)
        assert r.status_code == 200 and r.content == data
        assert r.headers["Content-Type"] == "application/x-test"


def test_restart_keeps_everything(mxcd):
    media_id = mxcd.upload_id(b"persistent", content_type="text/plain", filename="p.txt")
    pending = mxcd.create_id()
    mxcd.restart()
    r = mxcd.download(media_id)
    assert r.content == b"persistent" and r.headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert mxcd.put(pending, b"after restart").status_code == 200


def test_refuses_a_newer_database_schema(mxcd):
    mxcd.stop()
    mxcd.db_write("UPDATE schema_version SET version = 999")
    result = subprocess.run([str(mxcd.binary), "serve", "--config", str(mxcd.config_path)],
                            capture_output=True, text=True, timeout=60, env=server_env())
    assert result.returncode == 1
    assert "schema version 999" in result.stderr
