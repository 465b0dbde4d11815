"""Shared fixtures: the homeserver double and mxcd instances started from the real binary
with a per-test configuration in a temporary directory."""

import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import requests

from homeserver_double import HomeserverDouble

REPO = Path(__file__).resolve().parents[2]
SERVER_NAME = "test.local"
ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}
GUEST = {"Authorization": "Bearer guest-token"}
DEV_TOKEN = "static-dev-token"


def binary(variable, default):
    path = Path(os.environ.get(variable, REPO / default))
    if not path.exists():
        pytest.fail(f"{path} does not exist: build it first (scripts/build.sh), or set {variable}")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def merge(base, overrides):
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


class Mxcd:
    """One mxcd process. JSON is valid YAML, so the config is written as JSON."""

    def __init__(self, tmp_path, homeserver_url, overrides=None, release=False):
        self.dir = tmp_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.storage = tmp_path / "media"
        self.db_path = tmp_path / "mxcd.sqlite3"
        self.log_path = tmp_path / "mxcd.log"
        self.binary = binary("MXCD_RELEASE_BINARY", "build/release/mxcd") if release else binary(
            "MXCD_BINARY", "build/asan/mxcd")
        self.config = merge({
            "server_name": SERVER_NAME,
            "listen": {"address": "127.0.0.1", "port": self.port},
            "http": {"threads": 2},
            "auth": {"homeserver_url": homeserver_url, "token_cache_ttl": "60s",
                     "static_tokens": [{"token": DEV_TOKEN, "user_id": "@dev:test.local"}]},
            "storage": {"path": str(self.storage)},
            "database": {"sqlite": {"path": str(self.db_path)}},
            "media": {"max_upload_size": "10MiB", "legacy_download_freeze": "off"},
        }, overrides or {})
        self.config_path = tmp_path / "mxcd.yaml"
        self.config_path.write_text(json.dumps(self.config))
        self.proc = None
        self.start()

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(self.binary), "serve", "--config", str(self.config_path)],
                                     stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"mxcd exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/_mxcd/health", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        pytest.fail("mxcd did not become healthy:\n" + self.log())

    @property
    def pid(self):
        return self.proc.pid

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail("mxcd did not stop in time")
        return self.proc.returncode

    def restart(self):
        self.stop()
        self.start()

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            time.sleep(0.05)
        return False

    # HTTP helpers
    def get(self, path, **kw):
        kw.setdefault("timeout", 30)
        return requests.get(self.url + path, **kw)

    def request(self, method, path, **kw):
        kw.setdefault("timeout", 30)
        return requests.request(method, self.url + path, **kw)

    def upload(self, data, content_type="application/octet-stream", filename=None,
               headers=ALICE, version="v3"):
        params = {"filename": filename} if filename is not None else None
        h = dict(headers)
        if content_type is not None:
            h["Content-Type"] = content_type
        r = requests.post(f"{self.url}/_matrix/media/{version}/upload", data=data, headers=h,
                          params=params, timeout=60)
        return r

    def upload_id(self, data, **kw):
        r = self.upload(data, **kw)
        assert r.status_code == 200, r.text
        uri = r.json()["content_uri"]
        assert uri.startswith(f"mxc://{SERVER_NAME}/")
        return uri.rsplit("/", 1)[1]

    def download(self, media_id, server=SERVER_NAME, filename=None, authenticated=True,
                 headers=ALICE, method="GET", params=None):
        base = "/_matrix/client/v1/media" if authenticated else "/_matrix/media/v3"
        path = f"{base}/download/{server}/{media_id}" + (f"/{filename}" if filename else "")
        return self.request(method, path, headers=headers if authenticated else {},
                            params=params)

    # What is on disk and in the database
    def blob_files(self):
        return sorted(p for p in (self.storage / "blobs").rglob("*") if p.is_file())

    def tmp_files(self):
        return sorted((self.storage / "tmp").iterdir())

    def db(self, sql, params=()):
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True) as c:
            return c.execute(sql, params).fetchall()

    def db_write(self, sql, params=()):
        assert self.proc.poll() is not None, "stop mxcd before writing to its database"
        with sqlite3.connect(self.db_path) as c:
            c.execute(sql, params)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def homeserver():
    double = HomeserverDouble()
    yield double
    double.close()


@pytest.fixture
def start_mxcd(tmp_path, homeserver):
    """Starts mxcd with config overrides; every instance is stopped at the end of the test."""
    instances = []

    def start(overrides=None, release=False, name="mxcd"):
        path = tmp_path / name
        path.mkdir()
        instance = Mxcd(path, homeserver.url, overrides, release)
        instances.append(instance)
        return instance

    yield start
    for instance in instances:
        if instance.proc and instance.proc.poll() is None:
            instance.proc.kill()
            instance.proc.wait()
        # A sanitizer report means a memory or undefined-behaviour bug, whatever the test saw.
        assert "ERROR: AddressSanitizer" not in instance.log(), instance.log()
        assert "runtime error:" not in instance.log(), instance.log()


@pytest.fixture
def mxcd(start_mxcd):
    return start_mxcd()


class RawConnection:
    """A plain TCP connection, for requests no HTTP library would send."""

    def __init__(self, server, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
        self.pending = b""  # bytes received beyond the last response read

    def send(self, data):
        self.sock.sendall(data)

    def read_all(self):
        """Everything until the server closes the connection (or the timeout)."""
        out, self.pending = self.pending, b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return out

    def read_response(self):
        """One response head and its Content-Length body."""
        data, self.pending = self.pending, b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            body += chunk
        body, self.pending = body[:length], body[length:]
        return head + b"\r\n\r\n" + body

    def close(self):
        self.sock.close()


def status_of(raw):
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else None
