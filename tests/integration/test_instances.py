"""Several mxcd instances on one PostgreSQL database and one bucket, behind nginx (round
robin): identical uploads spread across instances, async uploads awaited on one instance and
filled on another, an instance killed mid-burst, PostgreSQL going away and coming back,
migrations when instances start together, and the copy of an SQLite database into PostgreSQL."""

import copy
import io
import json
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

import postgres_service
import s3_service
from harness import (ALICE, AUTHENTICATED, DATABASE, DEV_USER, SERVER_NAME, STORE, assert_error,
                     disposition, media_id_of, sha256, wait_until)
from test_delete import delete
from nginx_proxy import LoadBalancer

# Each test sets up its own database and bucket: one run is enough.
pytestmark = pytest.mark.skipif(STORE != "local" or DATABASE != "sqlite",
                                reason="runs once, with its own PostgreSQL database and bucket")


@pytest.fixture
def postgres():
    return postgres_service.service()


@pytest.fixture
def cluster(start_mxcd, postgres, tmp_path):
    """cluster(n) starts n instances sharing a new database and a new bucket, and nginx in
    front of them; returns (instances, front), front being an instance's client pointed at
    nginx."""
    balancers = []

    def start(n, **store):
        s3 = s3_service.service()
        shared = {"auth": {"admin_users": [DEV_USER]},
                  "database": postgres.database_config(postgres.new_database()),
                  "stores": [s3.store_config(s3.new_bucket(), **store)],
                  "media": {"write_store": {"local_media": "bucket"}}}
        instances = [start_mxcd(shared) for _ in range(n)]
        balancer = LoadBalancer(tmp_path / "nginx", [i.url for i in instances])
        balancers.append(balancer)
        return instances, through(balancer, instances[0])

    yield start
    for balancer in balancers:
        balancer.close()


def through(balancer, instance):
    """The harness's client for `instance`, sending its requests to the load balancer."""
    front = copy.copy(instance)
    front.url, front.port = balancer.url, balancer.port
    return front


def bucket_keys(instance):
    store = instance.config["stores"][0]
    return s3_service.service().keys(store["bucket"])


def uploads_served(instance):
    return sum(1 for line in instance.log().splitlines()
               if "method=POST" in line and "/upload" in line and "status=200" in line)


def test_identical_uploads_across_instances_store_one_object(cluster):
    instances, front = cluster(3)
    data = os.urandom(200_000)
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: front.upload(data, content_type="image/png"),
                                  range(100)))
    ids = {media_id_of(r) for r in responses}
    assert len(ids) == 100
    assert bucket_keys(front) == [f"{sha256(data)[:2]}/{sha256(data)[2:4]}/{sha256(data)}"]
    assert front.db("SELECT COUNT(*) FROM media") == [(100,)]
    assert front.db("SELECT COUNT(*), MIN(sha256) FROM blobs") == [(1, sha256(data))]
    for instance in instances:  # round robin: every instance took its share
        assert wait_until(lambda: uploads_served(instance) > 0), instance.log()
    for media_id in list(ids)[:10]:
        r = front.download(media_id)
        assert r.status_code == 200 and r.content == data


def test_pending_upload_limit_holds_across_instances(cluster):
    _, front = cluster(3)
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda _: front.create(), range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 5 + [429] * 15, statuses  # media.max_pending_uploads_per_user
    assert front.db("SELECT COUNT(*) FROM media WHERE sha256 IS NULL") == [(5,)]


def test_blob_seen_by_one_instance_is_served_and_deleted_by_others(cluster):
    (a, b, c), _ = cluster(3)
    data = os.urandom(40_000)
    first, second = a.upload_id(data), a.upload_id(data)
    assert b.download(first).content == data  # b never saw the blob: it fetches it
    assert c.download(first).content == data  # now in c's record cache
    assert delete(b, first).status_code == 200
    # c hears of the deletion and stops serving the record it had cached.
    assert wait_until(lambda: c.download(first).status_code == 404, timeout=10)
    assert c.download(second).content == data
    assert delete(c, second).status_code == 200
    assert wait_until(lambda: bucket_keys(a) == [], timeout=30), c.log()
    assert a.db("SELECT COUNT(*) FROM blobs") == [(0,)]
    # The same bytes uploaded while another instance deletes them are never lost.
    current = a.upload_id(data)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for uploader, deleter in ((b, c), (c, a), (a, b)) * 4:
            upload = pool.submit(uploader.upload_id, data)
            deletion = pool.submit(delete, deleter, current)
            current = upload.result()
            assert deletion.result().status_code == 200
    assert wait_until(lambda: not a.db("SELECT 1 FROM blobs WHERE deleting_since_ts IS NOT NULL"))
    assert bucket_keys(a) == [f"{sha256(data)[:2]}/{sha256(data)[2:4]}/{sha256(data)}"]
    for instance in (a, b, c):
        assert instance.download(current).content == data


def test_async_upload_awaited_on_one_instance_wakes_when_filled_on_another(cluster):
    (a, b, c), _ = cluster(3)
    media_id = a.create_id()
    answer = {}

    def wait_on_b():
        answer["response"] = b.download(media_id, params={"timeout_ms": "30000"})
        answer["at"] = time.monotonic()

    waiter = threading.Thread(target=wait_on_b)
    waiter.start()
    time.sleep(1)  # b is waiting now
    assert c.put(media_id, b"filled on c", content_type="text/plain").status_code == 200
    put_done = time.monotonic()
    waiter.join(40)
    r = answer["response"]
    assert r.status_code == 200 and r.content == b"filled on c"
    # Woken by PostgreSQL's notification, not by the end of its 30-second wait.
    assert answer["at"] - put_done < 1.0, answer["at"] - put_done


def test_killing_an_instance_mid_burst_loses_no_acknowledged_upload(cluster):
    instances, front = cluster(3)
    blobs = [os.urandom(50_000 + i) for i in range(60)]
    done = []

    def upload(data):
        r = front.upload(data)
        done.append(r)
        return data, r

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(upload, data) for data in blobs]
        assert wait_until(lambda: len(done) >= 10, timeout=60)
        instances[1].kill()  # kill -9, mid-burst
        results = [f.result() for f in futures]
    acknowledged = [(data, media_id_of(r)) for data, r in results if r.status_code == 200]
    failed = [r for _, r in results if r.status_code != 200]
    for r in failed:  # a connection cut by the kill: nginx answers 502, nothing else
        assert r.status_code in (502, 503), (r.status_code, r.text)
    assert len(acknowledged) >= 50
    # The others keep serving, and every acknowledged upload is there.
    for data, media_id in acknowledged:
        r = front.download(media_id)
        assert r.status_code == 200 and r.content == data
    assert front.upload_id(b"after the kill")
    # Nothing half-recorded: every record has its blob (a foreign key) and its object in the
    # bucket, and every object a blob row, so the collector owns it. A row or an object no
    # record refers to (an upload killed between its lease and its record) is allowed: the
    # collector deletes it once the lease expires (test_crash_ledger.py).
    shas = {row[0] for row in front.db("SELECT sha256 FROM blobs")}
    referenced = {row[0] for row in front.db("SELECT sha256 FROM media")}
    objects = {key.rsplit("/", 1)[1] for key in bucket_keys(front)}
    assert referenced <= objects
    assert objects <= shas
    assert front.db("SELECT COUNT(*) FROM media WHERE sha256 IS NULL") == [(0,)]
    instances[1].start()
    assert instances[1].healthy()


def test_postgres_going_away_gives_clean_errors_and_service_comes_back(start_mxcd, postgres):
    server = start_mxcd({"database": postgres.database_config(postgres.new_database())})
    cached = server.upload_id(b"read before the outage")
    assert server.download(cached).status_code == 200
    waiting = server.create_id()

    # A restart under traffic: every answer is a success or a clean 503.
    answers = []
    stop = threading.Event()

    def traffic():
        while not stop.is_set():
            answers.append(server.upload(os.urandom(1000)))

    worker = threading.Thread(target=traffic)
    worker.start()
    time.sleep(0.5)
    postgres.restart()
    time.sleep(1)
    stop.set()
    worker.join(60)
    assert answers
    for r in answers:
        if r.status_code != 200:
            assert_error(r, 503, "M_UNKNOWN")
    assert answers[-1].status_code == 200, answers[-1].text  # recovered by itself
    # Changes may have been missed meanwhile: the record cache was emptied. Fill it again.
    assert server.wait_for_log("database notifications are back", timeout=30)
    assert server.download(cached).status_code == 200

    # A longer outage.
    postgres.stop_server()
    try:
        assert_error(server.upload(b"during the outage"), 503, "M_UNKNOWN")
        assert_error(server.download("NeverSeenBefore"), 503, "M_UNKNOWN")
        assert server.get("/_mxcd/health").status_code == 503
        # A record in the cache is served without the database.
        assert server.download(cached).content == b"read before the outage"
    finally:
        postgres.start_server()
    assert wait_until(server.healthy, timeout=30), server.log()
    assert wait_until(lambda: server.upload(b"after the outage").status_code == 200, timeout=30)
    assert wait_until(lambda: server.log().count("database notifications are back") == 2,
                      timeout=30)
    # Waiters are woken by notifications again.
    answer = {}
    waiter = threading.Thread(target=lambda: answer.setdefault(
        "r", server.download(waiting, params={"timeout_ms": "30000"})))
    waiter.start()
    time.sleep(1)
    assert server.put(waiting, b"late bytes", content_type="text/plain").status_code == 200
    waiter.join(40)
    assert answer["r"].content == b"late bytes"


def test_instances_starting_together_migrate_once(start_mxcd, postgres):
    database = {"database": postgres.database_config(postgres.new_database())}
    instances = [start_mxcd(database, start=False) for _ in range(3)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda instance: instance.start(), instances))
    migrations = [i.log().count("database migrated to schema version") for i in instances]
    assert sorted(migrations) == [0, 0, 4], migrations
    assert instances[0].db("SELECT version FROM schema_version") == [(4,)]
    assert all(i.healthy() for i in instances)


def png(width, height):
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 90)).save(out, "PNG")
    return out.getvalue()


PNG_10x10 = png(10, 10)


def test_sqlite_database_copied_into_postgres(start_mxcd, postgres):
    sqlite_server = start_mxcd()
    data = os.urandom(30_000)
    kept = sqlite_server.upload_id(data, content_type="image/png", filename="Grüße.png")
    twin = sqlite_server.upload_id(data, content_type="text/plain")
    image = sqlite_server.upload_id(PNG_10x10, content_type="image/png")
    thumbnail = sqlite_server.get(f"{AUTHENTICATED}/thumbnail/{SERVER_NAME}/{image}"
                                  "?width=32&height=32&method=crop", headers=ALICE)
    assert thumbnail.status_code == 200
    # The other configured sizes are made in the background: wait for all five.
    wait_until(lambda: sqlite_server.db("SELECT COUNT(*) FROM thumbnails") == [(5,)])
    quarantined = sqlite_server.upload_id(b"bad")
    pending = sqlite_server.create_id()
    sqlite_server.stop()
    sqlite_server.db_write("UPDATE media SET quarantined = TRUE WHERE media_id = ?", (quarantined,))
    # A blob adopted in place (mxcd import synapse): its location must come along.
    sqlite_server.db_write("INSERT INTO blobs (sha256, size, store, created_ts, location) "
                           "VALUES (?, 7, 'local', 1700000000000, ?)",
                           ("unhashed-" + "e" * 64, "synapse/local_content/ab/cd/efgh"))
    blobs_query = ("SELECT sha256, size, store, created_ts, unreferenced_since_ts, location "
                   "FROM blobs ORDER BY sha256")
    blobs_before = sqlite_server.db(blobs_query)
    before = sqlite_server.db("SELECT server_name, media_id, sha256, content_type, upload_name, "
                              "uploader, created_ts, last_access_ts, pending_expires_ts, "
                              "quarantined != 0 FROM media ORDER BY media_id")

    pg = postgres.database_config(postgres.new_database())
    config = {**sqlite_server.config, "database": pg}
    config_path = sqlite_server.dir / "postgres.yaml"
    config_path.write_text(json.dumps(config))

    def copy_database():
        return subprocess.run([str(sqlite_server.binary), "database", "copy", "--config",
                               str(config_path), "--from-sqlite", str(sqlite_server.db_path)],
                              capture_output=True, text=True, timeout=120)

    first = copy_database()
    assert first.returncode == 0, first.stdout + first.stderr
    # Blobs: the random bytes, b"bad", the image and its one thumbnail (the 10x10 image gives
    # the same 10x10 thumbnail for every size), and the adopted one.
    assert ("done: 5 blobs (5 new, 0 already there), 5 media (5 new, 0 already there), "
            "5 thumbnails (5 new, 0 already there)") in first.stdout
    second = copy_database()
    assert second.returncode == 0, second.stdout + second.stderr
    assert ("done: 5 blobs (0 new, 5 already there), 5 media (0 new, 5 already there), "
            "5 thumbnails (0 new, 5 already there)") in second.stdout

    sqlite_server.config = config
    sqlite_server.database = pg["postgres"]["dbname"]  # db() reads PostgreSQL from now on
    sqlite_server.write_config()
    sqlite_server.start()
    after = sqlite_server.db("SELECT server_name, media_id, sha256, content_type, upload_name, "
                             "uploader, created_ts, last_access_ts, pending_expires_ts, "
                             "quarantined FROM media ORDER BY media_id")
    assert after == before
    assert sqlite_server.db(blobs_query) == blobs_before
    r = sqlite_server.download(kept)
    assert r.content == data and r.headers["Content-Type"] == "image/png"
    assert disposition(r.headers["Content-Disposition"]) == ("inline", "Grüße.png")
    assert sqlite_server.download(twin).content == data
    assert_error(sqlite_server.download(quarantined), 404, "M_NOT_FOUND")
    made_before = sqlite_server.log().count("thumbnail generated")
    moved = sqlite_server.get(f"{AUTHENTICATED}/thumbnail/{SERVER_NAME}/{image}"
                              "?width=32&height=32&method=crop", headers=ALICE)
    assert moved.status_code == 200 and moved.content == thumbnail.content
    assert sqlite_server.log().count("thumbnail generated") == made_before  # the copied row
    assert sqlite_server.put(pending, b"filled after the move").status_code == 200
    assert sqlite_server.download(pending).content == b"filled after the move"
