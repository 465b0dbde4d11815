#!/usr/bin/python3
"""mxcd import synapse, side by side with uploading the same media store with boto3, in one run
against the same Ceph RGW:
  - mxcd import synapse (release build, --workers 4) of a Synapse installation into an S3 store;
  - boto3 the way synapse-s3-storage-provider's s3_media_upload works (one file at a time,
    HEAD then upload_file), and boto3 with 4 threads;
  - adopting the same files where they are in the bucket (--bucket-media adopt), against
    copying them into mxcd's layout (--bucket-media copy).
Every figure is the median of alternating rounds, each on a fresh bucket and database; ratios
matter, absolute figures depend on the machine's load.
Usage: bench/import.py [rounds, default 3] [files, default 400]"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import REPO  # noqa: E402
import s3_service  # noqa: E402  (the RGW the tests use)
from synapse_fixture import SynapseInstallation  # noqa: E402

MIB = 1024 * 1024
SERVER = "bench.local"
PREFIX = "synapse/"


def installation(root, files):
    """files local uploads of 16 KiB to 2 MiB (about 1 MiB on average), all different."""
    hs = SynapseInstallation(root, "sqlite", SERVER, seed=1)
    sizes = [16 * 1024 + (n * 7919 * 1024) % (2 * MIB) for n in range(files)]
    for n, size in enumerate(sizes):
        hs.add_local(n.to_bytes(8, "little") + os.urandom(size - 8),
                     media_type="application/octet-stream", upload_name=f"f{n}.bin",
                     user_id=f"@u:{SERVER}", created_ts=1_700_000_000_000 + n)
    return hs, sum(sizes)


def media_files(hs):
    return sorted(p for p in hs.media_store.rglob("*") if p.is_file())


def mxcd_config(work, s3, bucket):
    import json
    work.mkdir(parents=True, exist_ok=True)
    config = work / "mxcd.yaml"
    config.write_text(json.dumps({
        "server_name": SERVER,
        "auth": {"homeserver_url": "http://127.0.0.1:1"},  # never asked: an import checks no tokens
        "storage": {"path": str(work / "media")},
        "database": {"sqlite": {"path": str(work / "mxcd.sqlite3")}},
        "stores": [s3.store_config(bucket, prefix="mxcd")],
        "media": {"write_store": {"local_media": "bucket"}},
        "log": {"level": "warn"},
    }))
    return config


def run_mxcd_import(config, hs, *args):
    """Seconds and peak RSS (MiB) of one import. GNU time measures the peak: a child of this
    Python process would report Python's own size, which ru_maxrss keeps across exec."""
    peak_file = config.parent / "peak-kib"
    start = time.monotonic()
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(peak_file),
                    str(REPO / "build" / "release" / "mxcd"), "import", "synapse", "--config",
                    str(config), "--homeserver-config", str(hs.config_path), "--progress",
                    "none", *args], check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start, int(peak_file.read_text().split()[-1]) / 1024


def boto3_upload(s3, bucket, hs, threads):
    """Seconds to upload the media store as s3_media_upload does: HEAD, then upload_file."""
    client = s3.client()

    def one(path):
        key = PREFIX + path.relative_to(hs.media_store).as_posix()
        try:
            client.head_object(Bucket=bucket, Key=key)
            return
        except client.exceptions.ClientError:
            pass
        client.upload_file(str(path), bucket, key)

    files = media_files(hs)
    start = time.monotonic()
    if threads == 1:
        for path in files:
            one(path)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, files))
    return time.monotonic() - start


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    if not (REPO / "build" / "release" / "mxcd").exists():
        subprocess.run([str(REPO / "scripts" / "build.sh"), "release"], check=True)
    s3 = s3_service.service()
    work = Path(tempfile.mkdtemp(prefix="mxcd-bench-import-"))
    try:
        hs, total = installation(work / "synapse", files)
        (work / "empty").mkdir()
        results = {k: [] for k in ("mxcd", "boto3_1", "boto3_4", "adopt", "copy")}
        peaks = {"mxcd": [], "adopt": [], "copy": []}
        for r in range(rounds):
            bucket = s3.new_bucket()
            seconds, peak = run_mxcd_import(mxcd_config(work / f"import{r}", s3, bucket), hs)
            results["mxcd"].append(seconds)
            peaks["mxcd"].append(peak)
            results["boto3_1"].append(boto3_upload(s3, s3.new_bucket(), hs, 1))
            provider = s3.new_bucket()
            results["boto3_4"].append(boto3_upload(s3, provider, hs, 4))
            # The provider's bucket, as boto3 just filled it: adopt it, then copy it.
            for mode in ("adopt", "copy"):
                config = mxcd_config(work / f"{mode}{r}", s3, provider)
                # Files only in the bucket, as after s3_media_upload --delete.
                seconds, peak = run_mxcd_import(config, hs, "--bucket-store", "bucket",
                                                "--bucket-prefix", PREFIX, "--bucket-media",
                                                mode, "--media-store", str(work / "empty"))
                results[mode].append(seconds)
                peaks[mode].append(peak)

        med = {k: statistics.median(v) for k, v in results.items()}
        mib = total / MIB
        print(f"{files} files, {mib:.0f} MiB, {rounds} rounds (medians)\n")
        print("| Import into the bucket | seconds | files/s | MiB/s | vs mxcd |")
        print("|---|---|---|---|---|")
        for key, label in (("mxcd", "mxcd import synapse, --workers 4"),
                           ("boto3_1", "boto3, one at a time (as s3_media_upload)"),
                           ("boto3_4", "boto3, 4 threads")):
            print(f"| {label} | {med[key]:.1f} | {files / med[key]:.0f} | {mib / med[key]:.1f} | "
                  f"{med[key] / med['mxcd']:.2f}x the time |")
        print("\n| From a provider's bucket | seconds | files/s | vs copy |")
        print("|---|---|---|---|")
        for key in ("adopt", "copy"):
            print(f"| --bucket-media {key} | {med[key]:.1f} | {files / med[key]:.0f} | "
                  f"{med[key] / med['copy']:.2f}x the time |")
        print("\nmxcd peak RSS, MiB: " + ", ".join(
            f"{k} {statistics.median(v):.0f}" for k, v in peaks.items()))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
