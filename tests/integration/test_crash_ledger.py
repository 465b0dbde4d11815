"""kill -9 under a stream of uploads, with a ledger of every upload mxcd acknowledged.

Four uploaders stream uploads (small and multipart-sized, identical ones among them, some
chunked) while the server is killed with SIGKILL four times and started again. Afterwards
every acknowledged upload must download byte-identical through a fresh instance (for an S3
store: a new directory, so an empty cache), and what is stored must be accounted for:
  - every media record has its blob row and its bytes (a file, or an object in the bucket);
  - every file or object has a blob row, so the collector owns it (one an upload stored
    and was killed before recording has a row from its lease on);
  - once the uploads' leases have expired and the collector has run, only bytes a record
    refers to are left: no orphan file or object;
  - no temporary or spool file, and no multipart upload once mxcd has cleaned up.
Runs once, on its own databases and buckets, for local+SQLite and for S3+PostgreSQL with
both durabilities."""

import os
import random
import threading
import time

import pytest
import requests
import urllib3

import postgres_service
import s3_service
from harness import ALICE, DATABASE, STORE, media_id_of, sha256, wait_until

pytestmark = pytest.mark.skipif(STORE != "local" or DATABASE != "sqlite",
                                reason="runs once, with its own PostgreSQL databases and buckets")

KILLS = 4
UPLOADERS = 4
SEED = 14


class Ledger:
    """The uploads mxcd acknowledged, and every answer that was not a success."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acknowledged = {}  # media ID -> bytes
        self.refusals = []

    def count(self):
        with self.lock:
            return len(self.acknowledged)


def payloads(rng):
    """Random sizes, a few over the multipart threshold, and repeats of earlier bytes."""
    earlier = []
    while True:
        if earlier and rng.random() < 0.15:
            yield rng.choice(earlier)
            continue
        size = 6 * 1024 * 1024 + rng.randrange(1 << 20) if rng.random() < 0.05 \
            else rng.randrange(1, 600_000)
        data = rng.randbytes(size)
        earlier = (earlier + [data])[-20:]
        yield data


def in_pieces(data, size=64 * 1024):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def uploader(server, ledger, stop, seed):
    rng = random.Random(seed)
    for data in payloads(rng):
        if stop.is_set():
            return
        body = in_pieces(data) if rng.random() < 0.25 else data  # a generator goes chunked
        try:
            r = requests.post(server.url + "/_matrix/media/v3/upload", data=body, timeout=30,
                              headers={**ALICE, "Content-Type": "application/octet-stream"})
        # A chunked body's request lets urllib3's and the socket's errors through unwrapped.
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
            time.sleep(0.05)  # killed mid-request, or not started yet
            continue
        with ledger.lock:
            if r.status_code == 200:
                ledger.acknowledged[media_id_of(r)] = data
            else:
                ledger.refusals.append((r.status_code, r.text))


def stream_while_killing(server):
    """Runs the uploaders across KILLS kill -9s and restarts; returns the ledger."""
    ledger, stop = Ledger(), threading.Event()
    threads = [threading.Thread(target=uploader, args=(server, ledger, stop, SEED + i))
               for i in range(UPLOADERS)]
    for t in threads:
        t.start()
    rng = random.Random(SEED)
    try:
        for _ in range(KILLS):
            before = ledger.count()
            assert wait_until(lambda: ledger.count() >= before + 10, timeout=60), server.log()
            time.sleep(rng.uniform(0.2, 1.5))  # so the kill lands anywhere in an upload
            server.kill()
            server.start()
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    # While the server runs, every answer is a success or a clean "try again".
    assert all(status == 503 for status, _ in ledger.refusals), ledger.refusals[:5]
    return ledger


def assert_every_upload_downloads(server, ledger):
    for media_id, data in ledger.acknowledged.items():
        r = server.download(media_id)
        assert r.status_code == 200, (media_id, r.status_code, r.text)
        assert r.content == data, media_id


def assert_stored_bytes_are_accounted_for(server, stored_shas):
    """stored_shas(): the names of the blobs the store holds now. Stops the server and
    starts it again with every lease expired; its collector must then delete exactly the
    bytes no record refers to."""
    referenced = {row[0] for row in server.db("SELECT sha256 FROM media")}
    blob_rows = {row[0] for row in server.db("SELECT sha256 FROM blobs")}
    assert None not in referenced, "a pending record was left behind"
    assert referenced <= blob_rows
    stored = stored_shas()
    assert referenced <= stored, "records whose bytes are gone"
    assert stored <= blob_rows, f"stored bytes no blob row owns: {stored - blob_rows}"
    # The kills' leases would hold their bytes for hours: expire them, as time would.
    server.stop()
    server.db_write("UPDATE blob_leases SET expires_ts = 0")
    server.start()
    assert wait_until(lambda: stored_shas() == referenced, timeout=60), \
        (stored_shas() - referenced, server.log())
    assert {row[0] for row in server.db("SELECT sha256 FROM blobs")} == referenced


def test_local_store_on_sqlite(start_mxcd):
    server = start_mxcd()
    ledger = stream_while_killing(server)
    server.stop()
    server.start()  # a fresh process on the same directory, which is the store
    assert server.tmp_files() == []
    assert_every_upload_downloads(server, ledger)
    assert_stored_bytes_are_accounted_for(server, lambda: {p.name for p in server.blob_files()})
    assert_every_upload_downloads(server, ledger)  # the collector took nothing a record holds


@pytest.mark.parametrize("durability", ["sync", "background"])
def test_s3_store_on_postgres(start_mxcd, durability):
    s3, postgres = s3_service.service(), postgres_service.service()
    bucket = s3.new_bucket()
    shared = {"database": postgres.database_config(postgres.new_database()),
              "stores": [s3.store_config(bucket, durability=durability,
                                         multipart_threshold="5MiB", part_size="5MiB",
                                         stale_multipart_age="1s")],
              "media": {"write_store": {"local_media": "bucket"}}}
    server = start_mxcd(shared)
    ledger = stream_while_killing(server)
    # What the last kill left in the upload queue goes to the bucket before the cache is left
    # behind with this directory.
    queue = server.storage / "queue" / "bucket"
    assert wait_until(lambda: not queue.exists() or not any(queue.iterdir()), timeout=120), \
        server.log()
    spool = server.storage / "cache" / "bucket" / "tmp"
    assert not spool.exists() or list(spool.iterdir()) == []
    server.stop()

    fresh = start_mxcd(shared)  # a new directory: an empty cache
    # Its start-up aborts the multipart uploads the kills left unfinished.
    assert wait_until(lambda: s3.multipart_uploads(bucket) == [], timeout=30), fresh.log()
    assert_every_upload_downloads(fresh, ledger)
    assert_stored_bytes_are_accounted_for(
        fresh, lambda: {key.rsplit("/", 1)[1] for key in s3.keys(bucket)})
    assert_every_upload_downloads(fresh, ledger)  # the collector took nothing a record holds
