"""What the benchmarks share: timed curl requests, wrk, and an mxcd process."""

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
# The test services (Ceph RGW, PostgreSQL) are started the way the tests start them.
sys.path.insert(0, str(REPO / "tests" / "integration"))
from harness import free_port  # noqa: E402

TOKEN = "bench-token-0123456789"


def curl_seconds(args):
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total}"] + args,
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0] in ("200", "206"), f"curl {args}: HTTP {out[0]}"
    return float(out[1])


def wrk(url, headers=(), seconds=5, script=None):
    """Requests per second, 64 connections on 2 threads; script: a wrk Lua script."""
    args = ["wrk", "-t2", "-c64", f"-d{seconds}s"] + (["-s", str(script)] if script else [])
    for h in headers:
        args += ["-H", h]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


class Mxcd:
    """One mxcd (release build) with an S3 store named "bucket" taking new uploads, on SQLite
    unless `database` names another database section."""

    def __init__(self, work, store, database=None):
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = work / "mxcd.yaml"
        self.config.write_text(json.dumps({
            "server_name": "bench.local",
            "listen": {"address": "127.0.0.1", "port": self.port},
            "http": {"threads": 2},
            "auth": {"static_tokens": [{"token": TOKEN, "user_id": "@bench:bench.local"}]},
            "storage": {"path": str(work / "media")},
            "database": database or {"sqlite": {"path": str(work / "mxcd.sqlite3")}},
            "stores": [store],
            "media": {"max_upload_size": "1GiB", "legacy_download_freeze": "off",
                      "write_store": {"local_media": "bucket"}},
            "log": {"level": "warn"},
        }))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([str(REPO / "build/release/mxcd"), "serve", "--config", str(self.config)],
                                     stderr=open(self.work / "mxcd.log", "ab"))
        for _ in range(200):
            try:
                if requests.get(self.url + "/_mxcd/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("mxcd did not start")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)

    def restart_cold(self):
        self.stop()
        shutil.rmtree(self.work / "media" / "cache", ignore_errors=True)
        self.start()

    def put(self, path):
        """Returns (seconds, media ID)."""
        out = subprocess.run(["curl", "-sS", "-w", "\n%{time_total}", "-X", "POST", "-T", str(path),
                              "-H", f"Authorization: Bearer {TOKEN}",
                              "-H", "Content-Type: application/octet-stream",
                              f"{self.url}/_matrix/media/v3/upload"],
                             capture_output=True, text=True, check=True).stdout
        body, seconds = out.rsplit("\n", 1)
        return float(seconds), json.loads(body)["content_uri"].rsplit("/", 1)[1]

    def wait_until_queue_drained(self):
        """With durability: background, until every acknowledged upload is in the bucket, so
        that the background upload does not slow down the next measurement."""
        command = [str(REPO / "build/release/mxcd"), "s3", "queue", "--config", str(self.config)]
        while ": 0 blob(s)" not in subprocess.run(command, capture_output=True, text=True,
                                                  check=True).stdout:
            time.sleep(0.1)

    def download_url(self, media_id):
        return f"{self.url}/_matrix/client/v1/media/download/bench.local/{media_id}"

    def get(self, media_id):
        return curl_seconds(["-H", f"Authorization: Bearer {TOKEN}", self.download_url(media_id)])
