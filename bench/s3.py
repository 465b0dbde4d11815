#!/usr/bin/python3
"""S3 benchmarks, mxcd side by side with direct requests to the same Ceph RGW in one run:
  - a 100 MiB object uploaded and downloaded (cold cache) through mxcd vs `curl --aws-sigv4`
    straight to the bucket;
  - 32 KiB objects uploaded and downloaded (cold cache), one request at a time: median time per
    request through mxcd vs direct, and the difference (the latency mxcd adds);
  - warm-cache 32 KiB downloads (wrk, 64 connections): mxcd vs nginx serving the same file.
Every figure is the median of alternating rounds; ratios matter, absolute figures depend on
the machine's load. Usage: bench/s3.py [rounds, default 3]"""

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import s3_service  # noqa: E402  (the RGW the tests use)

MIB = 1024 * 1024
TOKEN = "bench-token-0123456789"
SMALL = 32 * 1024
SMALL_COUNT = 100


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def curl_seconds(args):
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total}"] + args,
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0] in ("200", "206"), f"curl {args}: HTTP {out[0]}"
    return float(out[1])


class Direct:
    def __init__(self, s3, bucket):
        self.base = f"{s3.endpoint}/{bucket}"
        # S3 wants the payload hash header; UNSIGNED-PAYLOAD spares curl hashing the file.
        self.auth = ["--aws-sigv4", "aws:amz:us-east-1:s3", "--user", f"{s3.access_key}:{s3.secret_key}",
                     "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]

    def put(self, key, path):
        return curl_seconds(self.auth + ["-T", str(path), f"{self.base}/{key}"])

    def get(self, key):
        return curl_seconds(self.auth + [f"{self.base}/{key}"])


class Mxcd:
    def __init__(self, work, s3, bucket, durability="sync"):
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
            "database": {"sqlite": {"path": str(work / "mxcd.sqlite3")}},
            "stores": [s3.store_config(bucket, durability=durability)],
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


def distinct_file(path, size, n):
    """size random bytes, different for every n, so that no upload is deduplicated."""
    with open(path, "wb") as f:
        f.write(n.to_bytes(8, "little") + os.urandom(size - 8))
    return path


def wrk(url, headers=(), seconds=5):
    args = ["wrk", "-t2", "-c64", f"-d{seconds}s"]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def nginx(work, root):
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(f"""worker_processes 2;
user root;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
daemon off;
events {{ worker_connections 4096; }}
http {{
  access_log {work}/nginx-access.log;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
""")
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)])
    time.sleep(0.5)
    return proc, f"http://127.0.0.1:{port}"


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    work = Path(tempfile.mkdtemp(prefix="mxcd-bench-s3-"))
    s3 = s3_service.service()
    bucket = s3.new_bucket()
    direct = Direct(s3, bucket)
    server = Mxcd(work, s3, bucket)
    server.start()
    # Acknowledges uploads once they are on local disk and stores them in the bucket after.
    background = Mxcd(work / "background", s3, s3.new_bucket(), durability="background")
    background.start()
    results = {k: [] for k in ("up_mxcd", "up_background", "up_direct", "down_mxcd", "down_direct",
                               "small_up_mxcd", "small_up_direct", "small_down_mxcd",
                               "small_down_direct", "warm_mxcd", "warm_nginx")}
    try:
        for r in range(rounds):
            big = distinct_file(work / "big", 100 * MIB, r)
            seconds, big_id = server.put(big)
            results["up_mxcd"].append(100 / seconds)
            big = distinct_file(work / "big", 100 * MIB, 2000 + r)
            results["up_background"].append(100 / background.put(big)[0])
            background.wait_until_queue_drained()
            big = distinct_file(work / "big", 100 * MIB, 1000 + r)
            results["up_direct"].append(100 / direct.put(f"direct/big{r}", big))
            server.restart_cold()
            results["down_mxcd"].append(100 / server.get(big_id))
            results["down_direct"].append(100 / direct.get(f"direct/big{r}"))

            small_ids = []
            for i in range(SMALL_COUNT):
                path = distinct_file(work / "small", SMALL, r * 100000 + i)
                seconds, media_id = server.put(path)
                small_ids.append(media_id)
                results["small_up_mxcd"].append(seconds)
                path = distinct_file(work / "small", SMALL, r * 100000 + 50000 + i)
                results["small_up_direct"].append(direct.put(f"direct/small{r}-{i}", path))
            server.restart_cold()
            for i, media_id in enumerate(small_ids):
                results["small_down_mxcd"].append(server.get(media_id))
                results["small_down_direct"].append(direct.get(f"direct/small{r}-{i}"))

            # Warm: the last small blob is in the cache now; nginx serves the same file.
            warm_id = small_ids[-1]
            server.get(warm_id)
            cached = [p for p in (work / "media" / "cache" / "bucket" / "blobs").rglob("*") if p.is_file()]
            proc, base = nginx(work, work / "media" / "cache" / "bucket")
            try:
                relative = cached[-1].relative_to(work / "media" / "cache" / "bucket")
                results["warm_nginx"].append(wrk(f"{base}/{relative}"))
                results["warm_mxcd"].append(wrk(server.download_url(warm_id),
                                                [f"Authorization: Bearer {TOKEN}"]))
            finally:
                proc.terminate()
                proc.wait()
    finally:
        server.stop()
        background.stop()
        shutil.rmtree(work, ignore_errors=True)

    m = {k: statistics.median(v) for k, v in results.items()}
    ms = lambda s: s * 1000  # noqa: E731
    print("| Measurement | mxcd | direct / nginx | ratio |")
    print("|---|---|---|---|")
    print(f"| 100 MiB upload (MiB/s) | {m['up_mxcd']:.0f} | {m['up_direct']:.0f} | {m['up_mxcd'] / m['up_direct']:.2f}x |")
    print(f"| 100 MiB upload, durability: background (MiB/s) | {m['up_background']:.0f} | {m['up_direct']:.0f} | {m['up_background'] / m['up_direct']:.2f}x |")
    print(f"| 100 MiB cold download (MiB/s) | {m['down_mxcd']:.0f} | {m['down_direct']:.0f} | {m['down_mxcd'] / m['down_direct']:.2f}x |")
    print(f"| 32 KiB upload, median (ms) | {ms(m['small_up_mxcd']):.2f} | {ms(m['small_up_direct']):.2f} | +{ms(m['small_up_mxcd'] - m['small_up_direct']):.2f} ms |")
    print(f"| 32 KiB cold download, median (ms) | {ms(m['small_down_mxcd']):.2f} | {ms(m['small_down_direct']):.2f} | +{ms(m['small_down_mxcd'] - m['small_down_direct']):.2f} ms |")
    print(f"| 32 KiB warm downloads (req/s, nginx) | {m['warm_mxcd']:.0f} | {m['warm_nginx']:.0f} | {m['warm_mxcd'] / m['warm_nginx']:.2f}x |")


if __name__ == "__main__":
    main()
