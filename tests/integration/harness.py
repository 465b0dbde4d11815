"""The test harness: one mxcd process per Mxcd object, started from the real binary with a
configuration of its own in a temporary directory, plus helpers to talk to it over HTTP (with
requests, with http.client for paths requests would normalise, and over raw sockets for
requests no HTTP library would send) and to look at what it left on disk and in its database
(SQLite or PostgreSQL)."""

import email.message
import hashlib
import http.client
import json
import os
import select
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path, PurePosixPath

import pytest
import requests

import postgres_service

from homeserver_double import (ALICE_TOKEN, APPSERVICE_TOKEN, BOB_TOKEN, GUEST_TOKEN)

REPO = Path(__file__).resolve().parents[2]
SERVER_NAME = "test.local"
DEV_TOKEN = "static-dev-token"
DEV_USER = "@dev:test.local"
MAX_UPLOAD = 10 * 1024 * 1024  # the default max_upload_size of test instances

ALICE = {"Authorization": f"Bearer {ALICE_TOKEN}"}
BOB = {"Authorization": f"Bearer {BOB_TOKEN}"}
GUEST = {"Authorization": f"Bearer {GUEST_TOKEN}"}
APPSERVICE = {"Authorization": f"Bearer {APPSERVICE_TOKEN}"}

AUTHENTICATED = "/_matrix/client/v1/media"
LEGACY = "/_matrix/media/v3"

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization, Date",
    "Cross-Origin-Resource-Policy": "cross-origin",
}
CSP = ("sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; "
       "style-src 'unsafe-inline'; media-src 'self'; object-src 'self';")

# The sanitizers report to stderr, which the harness captures; a report fails the test.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
SANITIZER_ENV = {"ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "print_stacktrace=1"}

# MXCD_TEST_STORE=s3 runs every instance on an S3 store (a bucket of its own on the session's
# Ceph RGW) instead of the local filesystem store, so the whole media API is tested on both.
STORE = os.environ.get("MXCD_TEST_STORE", "local")
# MXCD_TEST_DATABASE=postgres gives every instance a database of its own on the session's
# PostgreSQL server instead of an SQLite file, so the whole suite runs on both metadata stores.
DATABASE = os.environ.get("MXCD_TEST_DATABASE", "sqlite")

START_DEADLINE = 20  # seconds for /_mxcd/health to answer 200 after start (ASan is slow)
HTTP_TIMEOUT = 30    # default for every HTTP call


def binary(variable, default):
    path = Path(os.environ.get(variable, REPO / default))
    if not path.is_file():
        pytest.fail(f"mxcd binary {path} does not exist: build it first (scripts/build.sh), "
                    f"or point {variable} at it", pytrace=False)
    return path


def asan_binary():
    return binary("MXCD_BINARY", "build/asan/mxcd")


def release_binary():
    return binary("MXCD_RELEASE_BINARY", "build/release/mxcd")


def server_env(extra=None):
    env = dict(os.environ)
    for name, value in SANITIZER_ENV.items():
        env.setdefault(name, value)
    env.update(extra or {})
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def merge(base, overrides):
    """Deep-merges overrides into base: nested dicts merge, anything else replaces."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def on_small_disk(options, mount_point, command):
    """command, run in a mount namespace of its own in which mount_point is a tmpfs mounted
    with options: a disk that can be filled without touching the machine's. It lives as long
    as the process (a restart starts on an empty one) and nobody else sees it; the process's
    PID stays that of command (unshare and sh exec it)."""
    namespace = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        namespace[1:1] = ["--user", "--map-root-user"]
    script = 'mount -t tmpfs -o "$1" mxcd-test-disk "$2" && shift 2 && exec "$@"'
    return namespace + ["sh", "-c", script, "sh", options, str(mount_point)] + command


def wait_until(predicate, timeout=10, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def media_id_of(response):
    """The media ID of a POST upload or create answer, checking the mxc URI on the way."""
    assert response.status_code == 200, response.text
    uri = response.json()["content_uri"]
    prefix = f"mxc://{SERVER_NAME}/"
    assert uri.startswith(prefix), uri
    return uri[len(prefix):]


def assert_error(response, status, errcode):
    """A Matrix error: the status, a JSON body with errcode and a non-empty error."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["errcode"] == errcode, body
    assert isinstance(body["error"], str) and body["error"], body
    return body


def disposition(header):
    """Content-Disposition parsed the way a MIME library parses it (RFC 2231/5987 aware,
    quoted strings unescaped), as Complement does with Go's mime.ParseMediaType:
    (disposition type, filename)."""
    message = email.message.Message()
    message["Content-Disposition"] = header
    return message.get_content_disposition(), message.get_filename()


def slow_body(total, pieces, pause):
    """A request body of `total` bytes sent in `pieces` parts with `pause` seconds between."""
    for _ in range(pieces):
        yield b"s" * (total // pieces)
        time.sleep(pause)


class RawResponse:
    """An answer read with http.client, shaped like the parts of requests.Response we use."""

    def __init__(self, status, headers, content):
        self.status_code = status
        self.headers = headers  # http.client.HTTPMessage: case-insensitive look-ups
        self.content = content
        self.text = content.decode(errors="replace")

    def json(self):
        return json.loads(self.content)


class Mxcd:
    """One mxcd process. JSON is valid YAML, so the config is written as JSON."""

    def __init__(self, directory, homeserver_url, overrides=None, release=False,
                 small_disk=None):
        """small_disk: tmpfs mount options ("size=64m,nr_inodes=400") for a filesystem of
        the process's own under storage.path (see on_small_disk)."""
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.storage_path = directory / "media"
        self.small_disk = small_disk
        self.db_path = directory / "mxcd.sqlite3"
        self.log_path = directory / "mxcd.log"
        self.binary = release_binary() if release else asan_binary()
        defaults = {
            "server_name": SERVER_NAME,
            "listen": {"address": "127.0.0.1", "port": self.port},
            "http": {"threads": 2},
            "auth": {"homeserver_url": homeserver_url, "token_cache_ttl": "60s",
                     "static_tokens": [{"token": DEV_TOKEN, "user_id": DEV_USER}]},
            "storage": {"path": str(self.storage_path)},
            "database": {"sqlite": {"path": str(self.db_path)}},
            "media": {"max_upload_size": MAX_UPLOAD, "legacy_download_freeze": "off"},
        }
        self.bucket = None
        if STORE == "s3":
            import s3_service
            self.s3 = s3_service.service()
            self.bucket = self.s3.new_bucket()
            defaults["stores"] = [self.s3.store_config(self.bucket)]
            defaults["media"]["write_store"] = {"local_media": "bucket", "thumbnails": "bucket"}
        if DATABASE == "postgres":
            postgres = postgres_service.service()
            defaults["database"] = postgres.database_config(postgres.new_database())
        # A test's own database section merges into the default one when it names the same
        # backend (sqlite or postgres) and replaces it when it names the other, as mxcd refuses
        # a config naming both.
        database = (overrides or {}).get("database")
        if database and not database.keys() & defaults["database"].keys():
            del defaults["database"]
        self.config = merge(defaults, overrides or {})
        # The PostgreSQL database db() and db_write() use; None: the SQLite file at db_path.
        self.database = self.config["database"].get("postgres", {}).get("dbname")
        self.config_path = directory / "mxcd.yaml"
        self.write_config()
        self.proc = None  # start() runs it

    def write_config(self):
        """Writes self.config, for the next start."""
        self.config_path.write_text(json.dumps(self.config))

    @property
    def storage(self):
        """storage.path as the test sees it: on a small disk, through the process's root."""
        if self.small_disk and self.running():
            return Path(f"/proc/{self.pid}/root") / self.storage_path.relative_to("/")
        return self.storage_path

    # The process
    def start(self):
        command = [str(self.binary), "serve", "--config", str(self.config_path)]
        if self.small_disk:
            self.storage_path.mkdir(parents=True, exist_ok=True)
            command = on_small_disk(self.small_disk, self.storage_path, command)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=server_env())
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"mxcd exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/_mxcd/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.kill()
        pytest.fail("mxcd did not become healthy in time:\n" + self.log())

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit status."""
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                pytest.fail(f"mxcd did not stop within {timeout} s of SIGTERM")
        return self.proc.returncode

    def kill(self):
        if self.running():
            self.proc.kill()
        self.proc.wait(30)

    def restart(self):
        self.stop()
        self.start()

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text, timeout=5):
        # Request lines are written in batches, up to 250 ms late.
        return wait_until(lambda: text in self.log(), timeout)

    def request_line(self, marker):
        """The request log line containing marker (a unique string put in the query)."""
        assert self.wait_for_log(marker), f"no log line with {marker}:\n{self.log()}"
        return next(line for line in self.log().splitlines() if marker in line)

    # HTTP with requests
    def request(self, method, path, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return requests.request(method, self.url + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def raw(self, method, target, headers=None, body=None, timeout=HTTP_TIMEOUT):
        """A request whose target is sent byte for byte (requests would remove dot
        segments such as /../ before sending)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, target, body=body, headers=headers or {})
            r = conn.getresponse()
            return RawResponse(r.status, r.headers, r.read())
        finally:
            conn.close()

    def healthy(self):
        return self.get("/_mxcd/health", timeout=10).status_code == 200

    # The media API
    def upload(self, data, content_type="application/octet-stream", filename=None,
               headers=ALICE, version="v3", params=None):
        params = dict(params or {})
        if filename is not None:
            params["filename"] = filename
        h = dict(headers)
        if content_type is not None:
            h["Content-Type"] = content_type
        return self.request("POST", f"/_matrix/media/{version}/upload", data=data, headers=h,
                            params=params, timeout=120)

    def upload_id(self, data, **kw):
        return media_id_of(self.upload(data, **kw))

    def create(self, headers=ALICE):
        # Complement sends an empty JSON object with create.
        return self.request("POST", "/_matrix/media/v1/create", headers=headers, json={})

    def create_id(self, headers=ALICE):
        return media_id_of(self.create(headers))

    def put(self, media_id, data=b"", headers=ALICE, content_type="image/png",
            server_name=SERVER_NAME, filename=None, version="v3"):
        h = dict(headers)
        if content_type is not None:
            h["Content-Type"] = content_type
        params = {"filename": filename} if filename is not None else None
        return self.request("PUT", f"/_matrix/media/{version}/upload/{server_name}/{media_id}",
                            data=data, headers=h, params=params)

    @staticmethod
    def download_path(media_id, server=SERVER_NAME, filename=None, authenticated=True,
                      version="v3"):
        base = AUTHENTICATED if authenticated else f"/_matrix/media/{version}"
        return f"{base}/download/{server}/{media_id}" + (f"/{filename}" if filename else "")

    def download(self, media_id, server=SERVER_NAME, filename=None, authenticated=True,
                 headers=None, method="GET", params=None, version="v3", **kw):
        """headers: by default alice's token on the authenticated path, none on legacy."""
        if headers is None:
            headers = ALICE if authenticated else {}
        return self.request(method, self.download_path(media_id, server, filename,
                                                       authenticated, version),
                            headers=headers, params=params, **kw)

    # What is on disk and in the database
    def blob_files(self):
        """The stored blobs: files of the local store, or objects in the S3 store's bucket."""
        if self.bucket:
            return [PurePosixPath(key) for key in self.s3.keys(self.bucket)]
        return sorted(p for p in (self.storage / "blobs").rglob("*") if p.is_file())

    def tmp_files(self):
        """Unfinished uploads: temporary files of the local store or spool files of S3's."""
        tmp = self.storage / ("cache/bucket/tmp" if self.bucket else "tmp")
        return sorted(tmp.iterdir()) if tmp.exists() else []

    def db(self, sql, params=()):
        """The rows of a query (SQL in SQLite's dialect, ? placeholders) as a list of tuples."""
        if self.database:
            return postgres_service.service().execute(self.database, sql, params, read_only=True)
        connection = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def media_count(self):
        return self.db("SELECT COUNT(*) FROM media")[0][0]

    def db_write(self, sql, params=()):
        # mxcd may cache records in memory, so it must be stopped (and restarted after).
        assert not self.running(), "stop mxcd before writing to its database"
        if self.database:
            postgres_service.service().execute(self.database, sql, params)
            return
        connection = sqlite3.connect(self.db_path, timeout=10)
        try:
            with connection:
                connection.execute(sql, params)
        finally:
            connection.close()

    def sanitizer_reports(self):
        log = self.log()
        return [marker for marker in SANITIZER_MARKERS if marker in log]


class RawConnection:
    """A plain TCP connection, for requests no HTTP library would send."""

    def __init__(self, server, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
        self.pending = b""  # bytes received beyond the last response read

    def send(self, data):
        self.sock.sendall(data)

    def readable(self, timeout=0):
        return bool(select.select([self.sock], [], [], timeout)[0])

    def read_until_closed(self, timeout=10):
        """Everything until the server closes the connection: (bytes, closed). closed is
        False when the server kept the connection open for `timeout` seconds."""
        out, self.pending = self.pending, b""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.readable(left):
                return out, False
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk

    def read_response(self):
        """One response: its head and its Content-Length body (b"" if the server closed)."""
        data, self.pending = self.pending, b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(parse_raw(head + b"\r\n\r\n")[1].get("content-length", 0))
        while len(body) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            body += chunk
        body, self.pending = body[:length], body[length:]
        return head + b"\r\n\r\n" + body

    def send_until_answered(self, pieces):
        """Sends pieces one by one, stopping as soon as the server answers (or closes), so
        that an early answer is read rather than lost to a reset. Returns the bytes sent."""
        sent = 0
        for piece in pieces:
            if self.readable():
                break
            try:
                self.sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        return sent

    def close(self):
        self.sock.close()


def parse_raw(raw):
    """(status, {lower-case header name: value}, body) of a raw response; status None when
    raw holds no HTTP response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 "):
        return None, {}, body
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode()] = value.strip().decode()
    return int(lines[0].split(b" ", 2)[1]), headers, body


def status_of(raw):
    return parse_raw(raw)[0]


def raw_error(raw):
    """(status, errcode) of a raw JSON error response."""
    status, headers, body = parse_raw(raw)
    assert headers.get("content-type") == "application/json", raw
    return status, json.loads(body)["errcode"]


def request_head(method, target, headers=(), token=ALICE_TOKEN):
    """The bytes of a request head, with alice's token unless token is None."""
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    lines.extend(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
