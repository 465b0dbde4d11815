"""mxcd import synapse: a Synapse installation built by synapse_fixture.py (Synapse's own table
definitions and on-disk layout) is imported, and mxcd then serves every mxc URI Synapse served
with the same bytes, type and name, and the thumbnails Synapse made. Synapse's database is of
the kind the pass tests (SQLite, or PostgreSQL with MXCD_TEST_DATABASE=postgres); the store is
the pass's (local disk, or RGW with MXCD_TEST_STORE=s3)."""

import os
import pty
import signal
import subprocess
import time

import pytest

from harness import (ALICE, AUTHENTICATED, DATABASE, SANITIZER_MARKERS, SERVER_NAME, STORE,
                     assert_error, disposition, server_env, sha256, wait_until)
from synapse_fixture import SynapseInstallation, image, standard_installation


def run_import(server, hs, *args, timeout=300):
    """Runs the importer with the server's configuration (the server itself may be stopped)
    and checks its output for sanitizer reports."""
    command = [str(server.binary), "import", "synapse", "--config", str(server.config_path),
               "--homeserver-config", str(hs.config_path), "--progress", "lines", *args]
    result = subprocess.run(command, capture_output=True, text=True, env=server_env(),
                            timeout=timeout)
    for marker in SANITIZER_MARKERS:
        assert marker not in result.stderr, result.stderr
    return result


def report(result):
    """The report's lines by their label: {"imported": "3 media imported (...)", ...}."""
    lines = {}
    for line in result.stdout.splitlines():
        label, _, rest = line.partition(":")
        lines[label.strip()] = rest.strip()
    return lines


def first_number(text):
    return int(text.split()[0])


def db_state(server):
    """Everything the import writes, to compare runs."""
    return (server.db("SELECT server_name, media_id, sha256, content_type, upload_name, uploader, "
                      "created_ts, last_access_ts, quarantined FROM media "
                      "ORDER BY server_name, media_id"),
            server.db("SELECT sha256, size, store FROM blobs ORDER BY sha256"),
            server.db("SELECT server_name, media_id, width, height, method, sha256, content_type "
                      "FROM thumbnails ORDER BY server_name, media_id, width, height, method"))


def served(record):
    return record.server, record.media_id


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """The standard installation imported once into a stopped mxcd, which then serves it."""
    from conftest import module_instance
    root = tmp_path_factory.mktemp("synapse")
    standard = standard_installation(root / "synapse", DATABASE, SERVER_NAME)
    instances = module_instance(tmp_path_factory, "imported")
    server = next(instances)
    server.stop()
    result = run_import(server, standard.installation)
    server.start()
    yield standard, server, result
    next(instances, None)


# --- what mxcd serves afterwards ---

def test_the_import_succeeds_and_reports_every_kind_of_row(imported):
    standard, _, result = imported
    assert result.returncode == 0, result.stdout + result.stderr
    lines = report(result)
    media = len(standard.imported) + len(standard.url_preview)
    assert first_number(lines["imported"]) == media
    assert f"({len(standard.url_preview)} of them URL-preview media)" in lines["imported"]
    thumbnails = sum(len(r.thumbnails) for r in standard.imported + standard.url_preview)
    # Two thumbnails of the square image fall into one mxcd box each way; none is lost here.
    assert f"{thumbnails} thumbnails" in lines["imported"]
    assert first_number(lines["skipped"]) == len(standard.pending) == 1
    assert first_number(lines["missing"]) == len(standard.missing) == 1
    assert first_number(lines["failed"]) == 0
    assert first_number(lines["already there"]) == 0
    # The duplicate upload, and thumbnails the duplicates share, were stored once.
    assert first_number(lines["deduplicated"]) >= 1
    # Progress went to stderr as plain lines, ending with everything done.
    assert f"import: {len(standard.all)}/{len(standard.all)} media" in result.stderr


def test_every_imported_media_is_served_with_its_bytes_type_and_name(imported):
    standard, server, _ = imported
    for record in standard.imported + standard.url_preview:
        if record.quarantined_by:
            continue
        response = server.download(record.media_id, server=record.server)
        assert response.status_code == 200, (record.mxc, response.text)
        assert response.content == record.data, record.mxc
        assert response.headers["Content-Type"].split(";")[0] == record.media_type.split(";")[0]
        kind, filename = disposition(response.headers["Content-Disposition"])
        assert filename == record.upload_name, record.mxc
        # The legacy path serves it too (its freeze is off in the test configuration).
        legacy = server.download(record.media_id, server=record.server, authenticated=False)
        assert legacy.status_code == 200 and legacy.content == record.data


def test_quarantined_pending_and_missing_media_are_not_served(imported):
    standard, server, _ = imported
    for record in standard.quarantined + standard.pending + standard.missing:
        assert_error(server.download(record.media_id, server=record.server), 404, "M_NOT_FOUND")
    # Quarantined media is recorded, as quarantined, so that it stays refused.
    for record in standard.quarantined:
        assert server.db("SELECT quarantined FROM media WHERE server_name = ? AND media_id = ?",
                         served(record))[0][0] in (1, True)


def test_records_keep_synapse_uploader_and_timestamps(imported):
    standard, server, _ = imported
    for record in standard.imported:
        rows = server.db("SELECT uploader, created_ts, last_access_ts, upload_name, sha256 "
                         "FROM media WHERE server_name = ? AND media_id = ?", served(record))
        assert rows, record.mxc
        uploader, created_ts, last_access_ts, upload_name, digest = rows[0]
        assert uploader == (record.user_id or "")
        assert created_ts == record.created_ts
        assert last_access_ts == record.last_access_ts
        assert upload_name == record.upload_name
        assert digest == record.content_sha256


def test_duplicate_content_is_stored_once(imported):
    standard, server, _ = imported
    a, b = standard.duplicates
    assert a.content_sha256 == b.content_sha256
    assert server.db("SELECT COUNT(*) FROM blobs WHERE sha256 = ?", (a.content_sha256,)) == [(1,)]
    # Every blob row is one distinct content of the installation, and nothing else.
    contents = {r.content_sha256 for r in standard.imported + standard.url_preview}
    contents |= {sha256(t.data) for r in standard.imported + standard.url_preview
                 for t in r.thumbnails}
    assert {row[0] for row in server.db("SELECT sha256 FROM blobs")} == contents


def test_synapse_thumbnails_are_served_for_their_boxes(imported):
    standard, server, _ = imported
    photo = standard.named["photo"]  # 800x600: every default box is filled exactly
    by_size = {(t.width, t.height, t.method): t for t in photo.thumbnails}
    for (width, height, method) in [(32, 32, "crop"), (96, 96, "crop"), (320, 240, "scale"),
                                    (640, 480, "scale")]:
        response = server.get(f"{AUTHENTICATED}/thumbnail/{SERVER_NAME}/{photo.media_id}",
                              params={"width": width, "height": height, "method": method},
                              headers=ALICE)
        assert response.status_code == 200, response.text
        assert response.content == by_size[(width, height, method)].data, (width, height)
        assert response.headers["Content-Type"] == "image/jpeg"
    # A remote thumbnail an old Synapse stored under its legacy name (no method suffix).
    legacy = standard.named["remote_legacy"]
    crop = next(t for t in legacy.thumbnails if (t.width, t.height) == (32, 32))
    assert crop.legacy_name
    response = server.get(f"{AUTHENTICATED}/thumbnail/{legacy.server}/{legacy.media_id}",
                          params={"width": 32, "height": 32, "method": "crop"},
                          headers=ALICE)
    assert response.status_code == 200 and response.content == crop.data


# --- running it again ---

def test_a_second_run_changes_nothing(imported):
    standard, server, _ = imported
    server.stop()  # it writes access times when it stops
    try:
        before, files = db_state(server), server.blob_files()
        again = run_import(server, standard.installation)
        after = db_state(server), server.blob_files()
    finally:
        server.start()
    assert again.returncode == 0, again.stdout + again.stderr
    lines = report(again)
    assert first_number(lines["imported"]) == 0
    assert "0 thumbnails" in lines["imported"]
    assert first_number(lines["already there"]) == len(standard.imported) + len(standard.url_preview)
    assert after == (before, files)


def test_verify_reads_every_blob_back(imported):
    standard, server, _ = imported
    server.stop()
    try:
        result = run_import(server, standard.installation, "--verify")
    finally:
        server.start()
    assert result.returncode == 0, result.stdout + result.stderr
    blobs = server.db("SELECT COUNT(*) FROM blobs")[0][0]
    assert first_number(report(result)["verified"]) == blobs


def test_a_later_run_picks_up_what_arrived_since(start_mxcd, tmp_path):
    """Synapse keeps serving during the import: a later run brings what was uploaded since,
    including a reservation that has been filled meanwhile, and nothing else."""
    server = start_mxcd(start=False)
    hs = SynapseInstallation(tmp_path / "synapse", DATABASE, SERVER_NAME, seed=5)
    first = hs.add_local(b"first upload", media_type="text/plain", upload_name="first.txt",
                         user_id=f"@a:{SERVER_NAME}")
    reserved = hs.add_local(user_id=f"@a:{SERVER_NAME}", pending=True)
    result = run_import(server, hs)
    assert result.returncode == 0
    assert first_number(report(result)["imported"]) == 1
    assert first_number(report(result)["skipped"]) == 1

    # Meanwhile, in Synapse: a new upload, and the reservation gets its bytes.
    later = hs.add_local(b"uploaded later", media_type="text/plain", upload_name="later.txt",
                         user_id=f"@b:{SERVER_NAME}")
    filled = b"filled after /create"
    (hs.media_store / reserved.path).parent.mkdir(parents=True, exist_ok=True)
    (hs.media_store / reserved.path).write_bytes(filled)
    with hs._sql() as sql:
        sql("UPDATE local_media_repository SET media_type = ?, media_length = ?, "
            "upload_name = ? WHERE media_id = ?",
            ("text/plain", len(filled), "filled.txt", reserved.media_id))
    result = run_import(server, hs)
    assert result.returncode == 0
    lines = report(result)
    assert first_number(lines["imported"]) == 2
    assert first_number(lines["already there"]) == 1
    assert first_number(lines["skipped"]) == 0

    server.start()
    for media_id, data in ((first.media_id, b"first upload"), (later.media_id, b"uploaded later"),
                           (reserved.media_id, filled)):
        assert server.download(media_id).content == data


# --- on a fresh mxcd ---

@pytest.fixture
def synapse(tmp_path):
    return standard_installation(tmp_path / "synapse", DATABASE, SERVER_NAME)


def test_a_dry_run_changes_nothing(start_mxcd, synapse):
    server = start_mxcd(start=False)
    result = run_import(server, synapse.installation, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dry run, nothing changed" in result.stdout
    lines = report(result)
    assert first_number(lines["imported"]) == len(synapse.imported) + len(synapse.url_preview)
    assert f"({len(synapse.url_preview)} of them URL-preview media)" in lines["imported"]
    # Nothing was created: neither the database's tables nor the stores' folders.
    assert not server.storage_path.exists()
    if server.database:
        assert server.db("SELECT COUNT(*) FROM information_schema.tables "
                         "WHERE table_schema = 'public'") == [(0,)]
    else:
        assert not server.db_path.exists()
    server.start()
    assert server.media_count() == 0
    assert server.blob_files() == []


def test_a_killed_import_continues_where_it_stopped(start_mxcd, tmp_path):
    server = start_mxcd(start=False)
    hs = SynapseInstallation(tmp_path / "synapse", DATABASE, SERVER_NAME, seed=11)
    shared = os.urandom(100_000)
    for n in range(300):
        # Every tenth upload repeats one content: deduplication across the interruption.
        data = shared if n % 10 == 0 else os.urandom(100_000)
        hs.add_local(data, media_type="application/octet-stream", upload_name=f"file{n}.bin",
                     user_id=f"@u{n % 7}:{SERVER_NAME}", created_ts=1_700_000_000_000 + n)
    command = [str(server.binary), "import", "synapse", "--config", str(server.config_path),
               "--homeserver-config", str(hs.config_path), "--workers", "1", "--progress",
               "none"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=server_env())
    try:
        assert wait_until(lambda: server.db_path.exists() or server.database, timeout=30)
        assert wait_until(lambda: media_rows(server) >= 20, timeout=120)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    stopped_at = media_rows(server)
    assert stopped_at < 300, "the import finished before it could be killed"

    second = run_import(server, hs)
    assert second.returncode == 0, second.stdout + second.stderr
    lines = report(second)
    assert first_number(lines["already there"]) == stopped_at
    assert first_number(lines["imported"]) == 300 - stopped_at
    contents = {r.content_sha256 for r in hs.records}
    assert len(contents) == 271
    assert {row[0] for row in server.db("SELECT sha256 FROM blobs")} == contents
    assert len(server.blob_files()) == len(contents)

    state = db_state(server)
    third = run_import(server, hs)
    assert third.returncode == 0
    assert first_number(report(third)["imported"]) == 0
    assert db_state(server) == state
    assert len(server.blob_files()) == len(contents)

    server.start()
    for record in hs.records[:: 37]:
        assert server.download(record.media_id).content == record.data


def media_rows(server):
    try:
        return server.media_count()
    except Exception:  # the database is not created yet
        return 0


# --- what goes wrong ---

def test_a_different_server_name_is_refused(start_mxcd, tmp_path):
    server = start_mxcd(start=False)
    hs = SynapseInstallation(tmp_path / "synapse", "sqlite", "other.example")
    hs.add_local(b"x" * 10, user_id="@a:other.example")
    result = run_import(server, hs)
    assert result.returncode == 2
    assert "other.example" in result.stderr and SERVER_NAME in result.stderr


def test_a_missing_homeserver_config_is_refused(start_mxcd, tmp_path):
    server = start_mxcd(start=False)
    result = subprocess.run(
        [str(server.binary), "import", "synapse", "--config", str(server.config_path),
         "--homeserver-config", str(tmp_path / "nowhere.yaml")],
        capture_output=True, text=True, env=server_env(), timeout=60)
    assert result.returncode == 2
    assert "nowhere.yaml" in result.stderr


def test_hostile_names_never_reach_a_path(start_mxcd, tmp_path):
    """Rows whose IDs or origins would climb out of the media store are skipped; a file
    outside the store is never read."""
    server = start_mxcd(start=False)
    hs = SynapseInstallation(tmp_path / "synapse", DATABASE, SERVER_NAME, seed=3)
    good = hs.add_local(b"good bytes", media_type="text/plain", upload_name="good.txt",
                        user_id=f"@a:{SERVER_NAME}")
    secret = tmp_path / "secret"
    secret.write_bytes(b"not media")
    with hs._sql() as sql:
        sql("INSERT INTO remote_media_cache (media_origin, media_id, media_type, created_ts, "
            "media_length, filesystem_id) VALUES (?, ?, ?, ?, ?, ?)",
            ("../..", "abcdefgh", "text/plain", 1, 9, "../../../secret"))
        sql("INSERT INTO remote_media_cache (media_origin, media_id, media_type, created_ts, "
            "media_length, filesystem_id) VALUES (?, ?, ?, ?, ?, ?)",
            ("evil.example", "abcdefgh", "text/plain", 1, 9, "../../../../secret"))
        sql("INSERT INTO local_media_repository (media_id, media_type, media_length, "
            "created_ts, user_id) VALUES (?, ?, ?, ?, ?)",
            ("../../../secret", "text/plain", 9, 1, f"@a:{SERVER_NAME}"))
    result = run_import(server, hs)
    lines = report(result)
    assert first_number(lines["imported"]) == 1
    assert "2 with IDs mxcd cannot serve" in lines["skipped"]
    assert first_number(lines["failed"]) == 1  # the remote row with a bad filesystem_id
    assert result.returncode == 1
    server.start()
    assert server.download(good.media_id).content == b"good bytes"
    assert sha256(b"not media") not in {row[0] for row in server.db("SELECT sha256 FROM blobs")}


def test_progress_is_a_bar_on_a_terminal(start_mxcd, synapse):
    server = start_mxcd(start=False)
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [str(server.binary), "import", "synapse", "--config", str(server.config_path),
             "--homeserver-config", str(synapse.installation.config_path)],
            stdout=subprocess.PIPE, stderr=terminal, env=server_env())
        os.close(terminal)
        output = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            output += chunk
        process.wait(120)
    finally:
        os.close(controller)
    assert process.returncode == 0
    text = output.decode(errors="replace")
    assert "\r" in text and "[###" in text and "100%" in text, text


# --- media already in a synapse-s3-storage-provider bucket ---

PROVIDER_PREFIX = "synapse/"


def provider_bucket(tmp_path):
    """The standard installation after s3_media_upload --delete: every original and
    thumbnail in a bucket under the provider's prefix, gone from disk; URL-preview files,
    which Synapse never sends to providers, still on disk. homeserver.yaml names the bucket."""
    import s3_service
    s3 = s3_service.service()
    bucket = s3.new_bucket()
    standard = standard_installation(tmp_path / "synapse", DATABASE, SERVER_NAME)
    hs = standard.installation
    client = s3.client()
    for path in sorted(hs.media_store.rglob("*")):
        relative = path.relative_to(hs.media_store).as_posix()
        if path.is_file() and not relative.startswith("url_cache"):
            client.upload_file(str(path), bucket, PROVIDER_PREFIX + relative)
            path.unlink()
    with open(hs.config_path, "a") as config:
        config.write("media_storage_providers:\n"
                     "- module: s3_storage_provider.S3StorageProviderBackend\n"
                     "  store_local: true\n  store_remote: true\n  store_synchronous: true\n"
                     "  config:\n"
                     f"    bucket: {bucket}\n    prefix: {PROVIDER_PREFIX}\n"
                     f"    endpoint_url: {s3.endpoint}\n")
    return s3, bucket, standard


def bucket_overrides(s3, bucket):
    return {"stores": [s3.store_config(bucket, prefix="mxcd")],
            "media": {"write_store": {"local_media": "bucket", "remote_media": "bucket",
                                      "thumbnails": "bucket"}}}


def url_preview_contents(standard):
    return {sha256(data) for r in standard.url_preview for data in [r.data] +
            [t.data for t in r.thumbnails]}


def assert_everything_served(server, standard):
    for record in standard.imported + standard.url_preview:
        if record.quarantined_by:
            continue
        response = server.download(record.media_id, server=record.server)
        assert response.status_code == 200 and response.content == record.data, record.mxc
    photo = standard.named["photo"]
    crop = next(t for t in photo.thumbnails if (t.width, t.height, t.method) == (96, 96, "crop"))
    response = server.get(f"{AUTHENTICATED}/thumbnail/{SERVER_NAME}/{photo.media_id}",
                          params={"width": 96, "height": 96, "method": "crop"}, headers=ALICE)
    assert response.status_code == 200 and response.content == crop.data


@pytest.mark.skipif(STORE != "local", reason="configures its own bucket: one run is enough")
def test_a_provider_bucket_is_adopted_without_copying_then_verified(start_mxcd, tmp_path):
    s3, bucket, standard = provider_bucket(tmp_path)
    before = set(s3.keys(bucket))
    server = start_mxcd(bucket_overrides(s3, bucket), start=False)
    # No --bucket-prefix: the provider's prefix comes from homeserver.yaml.
    result = run_import(server, standard.installation, "--bucket-store", "bucket")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = report(result)
    assert first_number(lines["imported"]) == len(standard.imported) + len(standard.url_preview)
    assert first_number(lines["adopted"]) > 0

    # Nothing that was in the bucket travelled: the only new objects are the URL-preview
    # files, which were on disk, stored in mxcd's layout.
    after = set(s3.keys(bucket))
    assert before <= after
    added = after - before
    assert all(key.startswith("mxcd/") for key in added), added
    assert len(added) == len(url_preview_contents(standard))
    # Those Synapse recorded no hash for are named by their key until they are hashed.
    unhashed = server.db("SELECT COUNT(*) FROM blobs WHERE sha256 LIKE 'unhashed-%'")[0][0]
    assert unhashed > 0
    # Adopted blobs point at the provider's keys; the others hold the URL-preview files.
    for name, location in server.db("SELECT sha256, location FROM blobs"):
        if location is None:
            assert name in url_preview_contents(standard)
        else:
            assert location.startswith(PROVIDER_PREFIX) and location in before

    server.start()
    assert_everything_served(server, standard)
    server.stop()

    verified = run_import(server, standard.installation, "--bucket-store", "bucket", "--verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"({unhashed} adopted ones hashed now)" in report(verified)["verified"]
    # Every blob is named by its content now, and identical content is one blob.
    names = {row[0] for row in server.db("SELECT sha256 FROM media WHERE sha256 IS NOT NULL "
                                         "UNION SELECT sha256 FROM thumbnails")}
    contents = {r.content_sha256 for r in standard.imported + standard.url_preview}
    contents |= {sha256(t.data) for r in standard.imported + standard.url_preview
                 for t in r.thumbnails}
    assert names == contents
    assert set(s3.keys(bucket)) == after  # hashing read the objects and moved none
    server.start()
    assert_everything_served(server, standard)


@pytest.mark.skipif(STORE != "local", reason="configures its own bucket: one run is enough")
def test_a_provider_bucket_can_be_copied_into_mxcds_layout(start_mxcd, tmp_path):
    s3, bucket, standard = provider_bucket(tmp_path)
    before = set(s3.keys(bucket))
    server = start_mxcd(bucket_overrides(s3, bucket), start=False)
    result = run_import(server, standard.installation, "--bucket-store", "bucket",
                        "--bucket-prefix", PROVIDER_PREFIX, "--bucket-media", "copy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "adopted" not in report(result)
    assert server.db("SELECT COUNT(*) FROM blobs WHERE location IS NOT NULL") == [(0,)]
    # One object per distinct content, in mxcd's layout; the provider's objects are untouched.
    blobs = server.db("SELECT COUNT(*) FROM blobs")[0][0]
    after = set(s3.keys(bucket))
    assert before <= after and len(after - before) == blobs
    server.start()
    assert_everything_served(server, standard)


@pytest.mark.skipif(STORE != "local", reason="configures its own bucket: one run is enough")
def test_an_adopted_object_with_the_wrong_bytes_fails_verification(start_mxcd, tmp_path):
    s3, bucket, standard = provider_bucket(tmp_path)
    server = start_mxcd(bucket_overrides(s3, bucket), start=False)
    assert run_import(server, standard.installation, "--bucket-store", "bucket").returncode == 0
    # Synapse recorded this one's hash; the object no longer holds those bytes.
    pdf = standard.named["pdf"]
    s3.client().put_object(Bucket=bucket, Key=PROVIDER_PREFIX + str(pdf.path),
                           Body=b"X" * len(pdf.data))
    result = run_import(server, standard.installation, "--bucket-store", "bucket", "--verify")
    assert result.returncode == 1
    assert first_number(report(result)["failed"]) == 1
    assert pdf.content_sha256 in result.stderr


@pytest.mark.skipif(STORE != "local", reason="configures its own bucket: one run is enough")
def test_an_import_uploads_even_with_background_durability(start_mxcd, tmp_path, synapse):
    """With durability: background a server acknowledges uploads before they reach the bucket;
    an import must not leave the whole media store queued on local disk instead."""
    import s3_service
    s3 = s3_service.service()
    bucket = s3.new_bucket()
    overrides = bucket_overrides(s3, bucket)
    overrides["stores"][0]["durability"] = "background"
    server = start_mxcd(overrides, start=False)
    result = run_import(server, synapse.installation)
    assert result.returncode == 0, result.stdout + result.stderr
    names = {row[0] for row in server.db("SELECT sha256 FROM blobs WHERE store = 'bucket'")}
    assert names
    assert {key.rsplit("/", 1)[1] for key in s3.keys(bucket)} == names
    queue = server.storage / "queue" / "bucket"  # one file per blob waiting for the bucket
    assert not queue.exists() or not any(queue.iterdir())
