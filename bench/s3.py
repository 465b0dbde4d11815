#!/usr/bin/python3
"""S3 benchmarks, mxcd side by side with direct requests to the same Ceph RGW in one run:
  - a 100 MiB object uploaded and downloaded (cold cache) through mxcd vs `curl --aws-sigv4`
    straight to the bucket;
  - 32 KiB objects uploaded and downloaded (cold cache), one request at a time: median time per
    request through mxcd vs direct, and the difference (the latency mxcd adds);
  - warm-cache 32 KiB downloads (wrk, 64 connections): mxcd vs nginx serving the same file.
Every figure is the median of alternating rounds; ratios matter, absolute figures depend on
the machine's load. Usage: bench/s3.py [rounds, default 3]"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import TOKEN, Mxcd, curl_seconds, free_port, wrk  # noqa: E402
import s3_service  # noqa: E402  (the RGW the tests use)

MIB = 1024 * 1024
SMALL = 32 * 1024
SMALL_COUNT = 100


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


def distinct_file(path, size, n):
    """size random bytes, different for every n, so that no upload is deduplicated."""
    with open(path, "wb") as f:
        f.write(n.to_bytes(8, "little") + os.urandom(size - 8))
    return path


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
    server = Mxcd(work, s3.store_config(bucket))
    server.start()
    # Acknowledges uploads once they are on local disk and stores them in the bucket after.
    background = Mxcd(work / "background", s3.store_config(s3.new_bucket(), durability="background"))
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
