"""A Synapse media installation built from scratch, for the tests of `mxcd import synapse`.

The importer reads what a running Synapse leaves behind: the rows of its media tables (in an
SQLite file or a PostgreSQL database), the files of its media store, and the homeserver.yaml
that says where both are. Running a real Synapse in the tests would be slow and heavy, so this
module writes the same three things directly:

- the five media tables, created with Synapse's own definitions (the full_schemas/72 base
  schema, then the deltas that changed these tables since: 86 added `authenticated`, 91 added
  `sha256` and its indexes), for SQLite and for PostgreSQL;
- rows inserted with the values Synapse's storage layer writes (for instance: a pending
  /create reservation has only media_id, created_ts, user_id and authenticated; a remote row
  gets last_access_ts = created_ts; media_length is the byte count);
- files at the paths Synapse's MediaFilePaths computes (local_content/ab/cd/rest,
  remote_content/<origin>/<filesystem_id split 2/2/rest>, thumbnails named
  W-H-top-sub-method, URL previews under url_cache/<date>/<random>);
- a homeserver.yaml with server_name, media_store_path and a database section in Synapse's
  format (name sqlite3 or psycopg2, with args).

SynapseInstallation adds one item at a time and returns a MediaRecord describing what a test
should find after an import. standard_installation() builds the set the importer tests share:
ordinary uploads, Unicode names, quarantined media, a pending upload, URL previews, a remote
row without its file, duplicate content, thumbnails of several sizes and methods, and a remote
thumbnail under its legacy name. Run this file to build it and check that rows and files
agree, on SQLite and on the test PostgreSQL server.

Where the table definitions come from: element-hq/synapse at commit
a58ad44eb0ce3cc14153f921206f322e17339dc5 (July 2026), files
synapse/storage/schema/main/full_schemas/72/full.sql.sqlite and full.sql.postgres,
synapse/storage/schema/main/delta/86/01_authenticate_media.sql and
synapse/storage/schema/main/delta/91/01_media_hash.sql, plus the sha256 index definitions that
delta 91 schedules as background updates (registered in
synapse/storage/databases/main/media_repository.py). The row values follow the same file's
store_* methods, synapse/media/media_repository.py and synapse/media/url_previewer.py; the
paths follow synapse/media/filepath.py.

Left out on purpose: quarantined_media_changes (delta 94), a log of quarantine changes that
says nothing about the media themselves, and Synapse's bookkeeping tables (schema_version,
background_updates), which an importer has no reason to read."""

import datetime
import functools
import hashlib
import io
import json
import random
import sqlite3
import string
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# ---------------------------------------------------------------------------------------------
# Synapse's table definitions
# ---------------------------------------------------------------------------------------------

# SQLite: the CREATE statements of full_schemas/72/full.sql.sqlite as written there (one line
# each), then delta 86 and delta 91. Delta 91 does not create the sha256 indexes itself: it
# queues two background updates, which create them as below once Synapse has run a while.
# A fresh installation (and every one old enough to hold media worth importing) has them.
SQLITE_SCHEMA = """
CREATE TABLE local_media_repository ( media_id TEXT, media_type TEXT, media_length INTEGER, created_ts BIGINT, upload_name TEXT, user_id TEXT, quarantined_by TEXT, url_cache TEXT, last_access_ts BIGINT, safe_from_quarantine BOOLEAN NOT NULL DEFAULT 0, UNIQUE (media_id) );
CREATE TABLE remote_media_cache ( media_origin TEXT, media_id TEXT, media_type TEXT, created_ts BIGINT, upload_name TEXT, media_length INTEGER, filesystem_id TEXT, last_access_ts BIGINT, quarantined_by TEXT, UNIQUE (media_origin, media_id) );
CREATE TABLE IF NOT EXISTS "local_media_repository_url_cache"( url TEXT, response_code INTEGER, etag TEXT, expires_ts BIGINT, og TEXT, media_id TEXT, download_ts BIGINT );
CREATE INDEX local_media_repository_url_cache_expires_idx ON local_media_repository_url_cache(expires_ts);
CREATE INDEX local_media_repository_url_cache_by_url_download_ts ON local_media_repository_url_cache(url, download_ts);
CREATE INDEX local_media_repository_url_cache_media_idx ON local_media_repository_url_cache(media_id);
CREATE TABLE IF NOT EXISTS "local_media_repository_thumbnails" ( media_id TEXT, thumbnail_width INTEGER, thumbnail_height INTEGER, thumbnail_type TEXT, thumbnail_method TEXT, thumbnail_length INTEGER, UNIQUE ( media_id, thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method ) );
CREATE INDEX local_media_repository_thumbnails_media_id ON local_media_repository_thumbnails (media_id);
CREATE TABLE IF NOT EXISTS "remote_media_cache_thumbnails" ( media_origin TEXT, media_id TEXT, thumbnail_width INTEGER, thumbnail_height INTEGER, thumbnail_method TEXT, thumbnail_type TEXT, thumbnail_length INTEGER, filesystem_id TEXT, UNIQUE ( media_origin, media_id, thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method ) );
CREATE INDEX users_have_local_media ON local_media_repository (user_id, created_ts) ;
CREATE INDEX local_media_repository_url_idx ON local_media_repository (created_ts) WHERE url_cache IS NOT NULL;

-- delta 86
ALTER TABLE remote_media_cache ADD COLUMN authenticated BOOLEAN DEFAULT FALSE NOT NULL;
ALTER TABLE local_media_repository ADD COLUMN authenticated BOOLEAN DEFAULT FALSE NOT NULL;

-- delta 91, and the indexes of its background updates
ALTER TABLE local_media_repository ADD COLUMN sha256 TEXT;
ALTER TABLE remote_media_cache ADD COLUMN sha256 TEXT;
CREATE INDEX IF NOT EXISTS local_media_repository_sha256 ON local_media_repository (sha256) WHERE sha256 IS NOT NULL;
CREATE INDEX IF NOT EXISTS remote_media_cache_sha256 ON remote_media_cache (sha256) WHERE sha256 IS NOT NULL;
"""

# PostgreSQL: the same from full_schemas/72/full.sql.postgres, which (being a pg_dump) declares
# tables first and adds their constraints and indexes further down. The thumbnail tables carry
# unique indexes rather than constraints, and the remote one's name is cut at PostgreSQL's 63
# characters, as in the dump. media_length is integer (int4) here too.
POSTGRES_SCHEMA = """
CREATE TABLE local_media_repository (
    media_id text,
    media_type text,
    media_length integer,
    created_ts bigint,
    upload_name text,
    user_id text,
    quarantined_by text,
    url_cache text,
    last_access_ts bigint,
    safe_from_quarantine boolean DEFAULT false NOT NULL
);
CREATE TABLE local_media_repository_thumbnails (
    media_id text,
    thumbnail_width integer,
    thumbnail_height integer,
    thumbnail_type text,
    thumbnail_method text,
    thumbnail_length integer
);
CREATE TABLE local_media_repository_url_cache (
    url text,
    response_code integer,
    etag text,
    expires_ts bigint,
    og text,
    media_id text,
    download_ts bigint
);
CREATE TABLE remote_media_cache (
    media_origin text,
    media_id text,
    media_type text,
    created_ts bigint,
    upload_name text,
    media_length integer,
    filesystem_id text,
    last_access_ts bigint,
    quarantined_by text
);
CREATE TABLE remote_media_cache_thumbnails (
    media_origin text,
    media_id text,
    thumbnail_width integer,
    thumbnail_height integer,
    thumbnail_method text,
    thumbnail_type text,
    thumbnail_length integer,
    filesystem_id text
);
ALTER TABLE ONLY local_media_repository
    ADD CONSTRAINT local_media_repository_media_id_key UNIQUE (media_id);
ALTER TABLE ONLY remote_media_cache
    ADD CONSTRAINT remote_media_cache_media_origin_media_id_key UNIQUE (media_origin, media_id);
CREATE UNIQUE INDEX local_media_repository_thumbn_media_id_width_height_method_key ON local_media_repository_thumbnails USING btree (media_id, thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method);
CREATE INDEX local_media_repository_thumbnails_media_id ON local_media_repository_thumbnails USING btree (media_id);
CREATE INDEX local_media_repository_url_cache_by_url_download_ts ON local_media_repository_url_cache USING btree (url, download_ts);
CREATE INDEX local_media_repository_url_cache_expires_idx ON local_media_repository_url_cache USING btree (expires_ts);
CREATE INDEX local_media_repository_url_cache_media_idx ON local_media_repository_url_cache USING btree (media_id);
CREATE INDEX local_media_repository_url_idx ON local_media_repository USING btree (created_ts) WHERE (url_cache IS NOT NULL);
CREATE UNIQUE INDEX remote_media_repository_thumbn_media_origin_id_width_height_met ON remote_media_cache_thumbnails USING btree (media_origin, media_id, thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method);
CREATE INDEX users_have_local_media ON local_media_repository USING btree (user_id, created_ts);

-- delta 86
ALTER TABLE remote_media_cache ADD COLUMN authenticated BOOLEAN DEFAULT FALSE NOT NULL;
ALTER TABLE local_media_repository ADD COLUMN authenticated BOOLEAN DEFAULT FALSE NOT NULL;

-- delta 91, and the indexes of its background updates (Synapse builds them CONCURRENTLY)
ALTER TABLE local_media_repository ADD COLUMN sha256 TEXT;
ALTER TABLE remote_media_cache ADD COLUMN sha256 TEXT;
CREATE INDEX local_media_repository_sha256 ON local_media_repository (sha256) WHERE sha256 IS NOT NULL;
CREATE INDEX remote_media_cache_sha256 ON remote_media_cache (sha256) WHERE sha256 IS NOT NULL;
"""

MEDIA_TABLES = ("local_media_repository", "local_media_repository_thumbnails",
                "remote_media_cache", "remote_media_cache_thumbnails",
                "local_media_repository_url_cache")

# ---------------------------------------------------------------------------------------------
# Synapse's media store layout (synapse/media/filepath.py)
# ---------------------------------------------------------------------------------------------


def _split(identifier):
    """The 2/2/rest split Synapse uses for media IDs and filesystem IDs."""
    return (identifier[0:2], identifier[2:4], identifier[4:])


def _thumbnail_name(width, height, media_type, method=None):
    """W-H-top-sub-method; without the method for the legacy remote name."""
    top, sub = media_type.split("/")
    name = f"{width}-{height}-{top}-{sub}"
    return name if method is None else f"{name}-{method}"


def _is_dated(media_id):
    # URL-preview media since 2017 are named YYYY-MM-DD_<16 letters>; the older ones look like
    # any local media ID and are stored with the 2/2/rest split under url_cache/.
    return (len(media_id) > 10 and media_id[4] == "-" and media_id[7] == "-"
            and media_id[:4].isdigit())


def local_content_path(media_id):
    return PurePosixPath("local_content", *_split(media_id))


def local_thumbnail_path(media_id, width, height, media_type, method):
    return PurePosixPath("local_thumbnails", *_split(media_id),
                         _thumbnail_name(width, height, media_type, method))


def remote_content_path(origin, filesystem_id):
    return PurePosixPath("remote_content", origin, *_split(filesystem_id))


def remote_thumbnail_path(origin, filesystem_id, width, height, media_type, method,
                          legacy_name=False):
    # The directory is remote_thumbnail, without the s of local_thumbnails.
    name = _thumbnail_name(width, height, media_type, None if legacy_name else method)
    return PurePosixPath("remote_thumbnail", origin, *_split(filesystem_id), name)


def url_cache_path(media_id):
    if _is_dated(media_id):
        return PurePosixPath("url_cache", media_id[:10], media_id[11:])
    return PurePosixPath("url_cache", *_split(media_id))


def url_cache_thumbnail_path(media_id, width, height, media_type, method):
    name = _thumbnail_name(width, height, media_type, method)
    if _is_dated(media_id):
        return PurePosixPath("url_cache_thumbnails", media_id[:10], media_id[11:], name)
    return PurePosixPath("url_cache_thumbnails", *_split(media_id), name)


# ---------------------------------------------------------------------------------------------
# What each item is, for the tests to compare an import against
# ---------------------------------------------------------------------------------------------


@dataclass
class ThumbnailRecord:
    width: int
    height: int
    media_type: str
    method: str
    data: bytes
    path: PurePosixPath  # relative to the media store
    legacy_name: bool = False  # a remote thumbnail stored as W-H-top-sub, without the method

    @property
    def length(self):
        return len(self.data)


@dataclass
class MediaRecord:
    server: str  # the server of the mxc URI: the local server_name or the remote origin
    media_id: str
    local: bool
    data: bytes | None  # None for a pending upload
    media_type: str | None
    upload_name: str | None
    user_id: str | None  # None for remote media
    created_ts: int
    last_access_ts: int | None
    quarantined_by: str | None
    authenticated: bool
    sha256: str | None  # what the row holds: NULL for media stored before Synapse 1.128
    path: PurePosixPath | None  # where the original is (or should be) in the media store
    file_written: bool
    filesystem_id: str | None = None  # remote media only
    url_cache: str | None = None  # the previewed URL, for URL-preview media
    safe_from_quarantine: bool = False
    thumbnails: list = field(default_factory=list)

    @property
    def mxc(self):
        return f"mxc://{self.server}/{self.media_id}"

    @property
    def length(self):
        return None if self.data is None else len(self.data)

    @property
    def content_sha256(self):
        """The hash of the bytes, whether or not the row records it."""
        return None if self.data is None else hashlib.sha256(self.data).hexdigest()

    @property
    def pending(self):
        return self.local and self.data is None


# ---------------------------------------------------------------------------------------------
# Test images
# ---------------------------------------------------------------------------------------------

_PIL_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF",
                "image/webp": "WEBP"}


@functools.cache
def image(width, height, media_type="image/png", seed=0):
    """A small real image with some content (a gradient crossed by a seeded stripe), so that an
    importer that decodes or re-thumbnails it has pixels to work on. Cached: the same
    arguments give the same bytes, and building the larger ones in Python takes a moment."""
    from PIL import Image, ImageDraw
    picture = Image.new("RGB", (width, height))
    picture.putdata([((x * 255) // max(width - 1, 1), (y * 255) // max(height - 1, 1),
                      (seed * 53) % 256) for y in range(height) for x in range(width)])
    stripe = seed % max(height, 1)
    ImageDraw.Draw(picture).line([(0, stripe), (width - 1, height - 1 - stripe)],
                                 fill=(255, 255, 255), width=max(1, min(width, height) // 16))
    out = io.BytesIO()
    picture.save(out, _PIL_FORMATS[media_type])
    return out.getvalue()


# Synapse's default thumbnail_sizes; JPEG and WebP sources get JPEG thumbnails, PNG and GIF
# sources PNG ones (THUMBNAIL_SUPPORTED_MEDIA_FORMAT_MAP).
DEFAULT_THUMBNAIL_SIZES = ((32, 32, "crop"), (96, 96, "crop"), (320, 240, "scale"),
                           (640, 480, "scale"), (800, 600, "scale"))
_THUMBNAIL_TYPE = {"image/jpeg": "image/jpeg", "image/jpg": "image/jpeg",
                   "image/webp": "image/jpeg", "image/png": "image/png",
                   "image/gif": "image/png"}


def default_thumbnails(width, height, media_type, seed=0):
    """The thumbnails Synapse pre-generates for a width×height upload with its default
    thumbnail_sizes, as (w, h, type, method, bytes) tuples. Like Synapse, a scale thumbnail is
    recorded under its computed size (fitted in the box, never larger than the source), and
    sizes that come out equal collapse into one entry, the later scale winning over a crop."""
    t_type = _THUMBNAIL_TYPE[media_type]
    sizes = {}
    for box_w, box_h, method in DEFAULT_THUMBNAIL_SIZES:
        if method == "crop":
            sizes.setdefault((box_w, box_h), method)
            continue
        if box_w * height < box_h * width:
            w, h = box_w, max(box_w * height // width, 1)
        else:
            w, h = max(box_h * width // height, 1), box_h
        sizes[(min(w, width), min(h, height))] = method
    return [(w, h, t_type, method, image(w, h, t_type, seed))
            for (w, h), method in sizes.items()]


# ---------------------------------------------------------------------------------------------
# The installation
# ---------------------------------------------------------------------------------------------

_LETTERS = string.ascii_letters
ONE_HOUR_MS = 60 * 60 * 1000


class _Runner:
    """Runs SQL written with ? placeholders on either database."""

    def __init__(self, cursor, postgres):
        self.cursor = cursor
        self.postgres = postgres

    def __call__(self, sql, params=()):
        if self.postgres:
            sql = sql.replace("?", "%s")
        self.cursor.execute(sql, tuple(params))
        return self.cursor.fetchall() if self.cursor.description else None


class SynapseInstallation:
    """A Synapse media store, its database and its homeserver.yaml under `root`.

    database is "sqlite" (the file root/homeserver.db) or "postgres" (a fresh database on the
    test session's PostgreSQL server). `seed` makes the random IDs repeatable."""

    def __init__(self, root, database="sqlite", server_name="synapse.test", seed=None):
        if database not in ("sqlite", "postgres"):
            raise ValueError(f"database must be sqlite or postgres, not {database!r}")
        self.root = Path(root)
        self.database = database
        self.server_name = server_name
        self.media_store = self.root / "media_store"
        self.config_path = self.root / "homeserver.yaml"
        self.records = []
        self._random = random.Random(seed)
        self.root.mkdir(parents=True, exist_ok=True)
        # Synapse creates these on start, so even an installation with no media has them.
        for top in ("local_content", "local_thumbnails", "remote_content", "remote_thumbnail",
                    "url_cache", "url_cache_thumbnails"):
            (self.media_store / top).mkdir(parents=True, exist_ok=True)
        if database == "sqlite":
            self.sqlite_path = self.root / "homeserver.db"
            connection = sqlite3.connect(self.sqlite_path)
            try:
                connection.executescript(SQLITE_SCHEMA)
            finally:
                connection.close()
        else:
            import postgres_service
            self.postgres = postgres_service.service()
            self.postgres_database = self.postgres.new_database()
            with self._sql() as run:
                run(POSTGRES_SCHEMA)
        self._write_config()

    # The database
    @contextmanager
    def _sql(self):
        """One transaction: yields run(sql, params) and commits at the end."""
        if self.database == "sqlite":
            connection = sqlite3.connect(self.sqlite_path)
            try:
                with connection:
                    yield _Runner(connection.cursor(), postgres=False)
            finally:
                connection.close()
        else:
            connection = self.postgres.connect(self.postgres_database)
            connection.autocommit = False
            try:
                with connection:
                    yield _Runner(connection.cursor(), postgres=True)
            finally:
                connection.close()

    def query(self, sql, params=()):
        """The rows of a query (? placeholders) as a list of tuples. Booleans come back as 0/1
        from SQLite and as False/True from PostgreSQL."""
        with self._sql() as run:
            return run(sql, params)

    def database_args(self):
        """The database: section of homeserver.yaml, as Synapse reads it."""
        if self.database == "sqlite":
            return {"name": "sqlite3", "args": {"database": str(self.sqlite_path)}}
        # The test server trusts every local connection, so the password is never checked;
        # it is there because real configurations have one. cp_min and cp_max are Synapse's
        # connection pool settings, which real configurations carry too.
        return {"name": "psycopg2", "args": {
            "user": self.postgres.user, "password": "synapse-fixture-password",
            "database": self.postgres_database, "host": self.postgres.host,
            "port": self.postgres.port, "cp_min": 5, "cp_max": 10}}

    def _write_config(self):
        # Written as block YAML, the way administrators write it; json.dumps quotes each
        # scalar in a form YAML reads back unchanged.
        database = self.database_args()
        lines = ["# Written by tests/integration/synapse_fixture.py: only what the media",
                 "# importer reads, in Synapse's format.",
                 f"server_name: {json.dumps(self.server_name)}",
                 f"media_store_path: {json.dumps(str(self.media_store))}",
                 "database:",
                 f"  name: {database['name']}",
                 "  args:"]
        lines += [f"    {key}: {json.dumps(value)}" for key, value in database["args"].items()]
        self.config_path.write_text("\n".join(lines) + "\n")

    # Identifiers and files
    def random_id(self, length=24):
        """A media or filesystem ID as Synapse makes them: letters only."""
        return "".join(self._random.choice(_LETTERS) for _ in range(length))

    def _write(self, relative, data):
        path = self.media_store / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    @staticmethod
    def _thumbnail_specs(thumbnails):
        """(w, h, type, method, bytes[, legacy_name]) tuples, the last element optional."""
        for spec in thumbnails:
            width, height, media_type, method, data = spec[:5]
            yield width, height, media_type, method, data, bool(spec[5] if len(spec) > 5
                                                                else False)

    # Adding media
    def add_local(self, data=b"", *, media_type="application/octet-stream", upload_name=None,
                  user_id=None, media_id=None, created_ts=None, last_access_ts=None,
                  quarantined_by=None, safe_from_quarantine=False, authenticated=True,
                  record_sha256=True, thumbnails=(), url_cache=None, url_cache_row=None,
                  pending=False, write_file=True):
        """A media item uploaded to this server (or, with url_cache, fetched by a URL preview).

        pending: a /create reservation never uploaded to. Synapse's row then has only media_id,
        created_ts, user_id and authenticated; the other columns, media_length among them,
        are NULL, and there is no file.
        record_sha256: False for media stored before Synapse 1.128, whose sha256 is NULL.
        authenticated: False for media stored while enable_authenticated_media was off (the
        default before 1.120).
        url_cache: the previewed URL. The ID is then YYYY-MM-DD_<16 letters> (unless given),
        the file goes under url_cache/ and its thumbnails under url_cache_thumbnails/.
        url_cache_row: for the preview of a page, the (response_code, etag, og) of the
        local_media_repository_url_cache row pointing at this item; None writes no such row
        (as for an og:image, which only the page's og JSON refers to).
        thumbnails: (w, h, type, method, bytes) tuples.
        write_file: False leaves the row without its file."""
        user_id = user_id or f"@alice:{self.server_name}"
        created_ts = created_ts if created_ts is not None else _now_ms()
        if media_id is None:
            if url_cache is not None:
                date = datetime.datetime.fromtimestamp(created_ts / 1000, datetime.UTC).date()
                media_id = f"{date.isoformat()}_{self.random_id(16)}"
            else:
                media_id = self.random_id()

        if pending:
            record = MediaRecord(
                server=self.server_name, media_id=media_id, local=True, data=None,
                media_type=None, upload_name=None, user_id=user_id, created_ts=created_ts,
                last_access_ts=None, quarantined_by=None, authenticated=authenticated,
                sha256=None, path=local_content_path(media_id), file_written=False)
            with self._sql() as run:
                run("INSERT INTO local_media_repository (media_id, created_ts, user_id, "
                    "authenticated) VALUES (?, ?, ?, ?)",
                    (media_id, created_ts, user_id, authenticated))
            self.records.append(record)
            return record

        digest = hashlib.sha256(data).hexdigest()
        path = url_cache_path(media_id) if url_cache else local_content_path(media_id)
        record = MediaRecord(
            server=self.server_name, media_id=media_id, local=True, data=data,
            media_type=media_type, upload_name=upload_name, user_id=user_id,
            created_ts=created_ts, last_access_ts=last_access_ts,
            quarantined_by=quarantined_by, authenticated=authenticated,
            sha256=digest if record_sha256 else None, path=path, file_written=write_file,
            url_cache=url_cache, safe_from_quarantine=safe_from_quarantine)
        if write_file:
            self._write(path, data)
        with self._sql() as run:
            # last_access_ts is NULL at upload: Synapse fills it in on the first download.
            run("INSERT INTO local_media_repository (media_id, media_type, created_ts, "
                "upload_name, media_length, user_id, url_cache, authenticated, sha256, "
                "quarantined_by, last_access_ts, safe_from_quarantine) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (media_id, media_type, created_ts, upload_name, len(data), user_id, url_cache,
                 authenticated, record.sha256, quarantined_by, last_access_ts,
                 safe_from_quarantine))
            for width, height, t_type, method, t_data, _ in self._thumbnail_specs(thumbnails):
                t_path = (url_cache_thumbnail_path if url_cache else local_thumbnail_path)(
                    media_id, width, height, t_type, method)
                if write_file:
                    self._write(t_path, t_data)
                run("INSERT INTO local_media_repository_thumbnails (media_id, thumbnail_width, "
                    "thumbnail_height, thumbnail_type, thumbnail_method, thumbnail_length) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (media_id, width, height, t_type, method, len(t_data)))
                record.thumbnails.append(
                    ThumbnailRecord(width, height, t_type, method, t_data, t_path))
            if url_cache_row is not None:
                # Synapse keeps a preview valid for at most a day; one hour when the page
                # sends no caching headers.
                response_code, etag, og = url_cache_row
                run("INSERT INTO local_media_repository_url_cache (url, response_code, etag, "
                    "expires_ts, og, media_id, download_ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (url_cache, response_code, etag, created_ts + ONE_HOUR_MS,
                     json.dumps(og), media_id, created_ts))
        self.records.append(record)
        return record

    def add_remote(self, origin, media_id=None, data=b"", *,
                   media_type="application/octet-stream", upload_name=None,
                   filesystem_id=None, created_ts=None, last_access_ts=None,
                   quarantined_by=None, authenticated=True, record_sha256=True,
                   thumbnails=(), write_file=True):
        """A media item of another server, cached here. The file is stored under a
        filesystem_id chosen by this server, not under the remote media ID.

        thumbnails: (w, h, type, method, bytes) tuples, with an optional sixth element True
        for a thumbnail stored under the legacy name W-H-top-sub (its row still has the
        method).
        write_file: False leaves the row without its file or thumbnails, as after a disk
        loss or a half-done cleanup."""
        media_id = media_id or self.random_id()
        filesystem_id = filesystem_id or self.random_id()
        created_ts = created_ts if created_ts is not None else _now_ms()
        # Synapse sets last_access_ts to the download time when it caches the item.
        last_access_ts = last_access_ts if last_access_ts is not None else created_ts
        digest = hashlib.sha256(data).hexdigest()
        path = remote_content_path(origin, filesystem_id)
        record = MediaRecord(
            server=origin, media_id=media_id, local=False, data=data, media_type=media_type,
            upload_name=upload_name, user_id=None, created_ts=created_ts,
            last_access_ts=last_access_ts, quarantined_by=quarantined_by,
            authenticated=authenticated, sha256=digest if record_sha256 else None, path=path,
            file_written=write_file, filesystem_id=filesystem_id)
        if write_file:
            self._write(path, data)
        with self._sql() as run:
            run("INSERT INTO remote_media_cache (media_origin, media_id, media_type, "
                "media_length, created_ts, upload_name, filesystem_id, last_access_ts, "
                "authenticated, sha256, quarantined_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (origin, media_id, media_type, len(data), created_ts, upload_name,
                 filesystem_id, last_access_ts, authenticated, record.sha256, quarantined_by))
            for width, height, t_type, method, t_data, legacy in \
                    self._thumbnail_specs(thumbnails):
                t_path = remote_thumbnail_path(origin, filesystem_id, width, height, t_type,
                                               method, legacy_name=legacy)
                if write_file:
                    self._write(t_path, t_data)
                run("INSERT INTO remote_media_cache_thumbnails (media_origin, media_id, "
                    "thumbnail_width, thumbnail_height, thumbnail_method, thumbnail_type, "
                    "thumbnail_length, filesystem_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (origin, media_id, width, height, method, t_type, len(t_data),
                     filesystem_id))
                record.thumbnails.append(
                    ThumbnailRecord(width, height, t_type, method, t_data, t_path, legacy))
        self.records.append(record)
        return record

    # Checking
    def check(self):
        """Checks that the database, the media store and the records agree, the way Synapse
        would find them: every row with a media_length has its file of that length at its
        path, every thumbnail row its file, and no file lies in the store without a row.
        Returns the number of files checked; raises AssertionError on the first mismatch."""
        expected_files = {}
        local = {row[0]: row for row in self.query(
            "SELECT media_id, media_type, media_length, upload_name, user_id, url_cache, "
            "quarantined_by, sha256, created_ts, last_access_ts, authenticated "
            "FROM local_media_repository")}
        remote = {(row[0], row[1]): row for row in self.query(
            "SELECT media_origin, media_id, media_type, media_length, upload_name, "
            "filesystem_id, quarantined_by, sha256, created_ts, last_access_ts, authenticated "
            "FROM remote_media_cache")}
        assert len(local) + len(remote) == len(self.records), "rows and records differ"

        for record in self.records:
            if record.local:
                row = local[record.media_id]
                length = row[2]
                assert row[1] == record.media_type and row[3] == record.upload_name
                assert row[4] == record.user_id and row[5] == record.url_cache
                assert row[6] == record.quarantined_by and row[7] == record.sha256
                assert (row[8], row[9]) == (record.created_ts, record.last_access_ts)
                assert bool(row[10]) == record.authenticated
                thumbnails = self.query(
                    "SELECT thumbnail_width, thumbnail_height, thumbnail_type, "
                    "thumbnail_method, thumbnail_length FROM local_media_repository_thumbnails "
                    "WHERE media_id = ?", (record.media_id,))
            else:
                row = remote[(record.server, record.media_id)]
                length = row[3]
                assert row[2] == record.media_type and row[4] == record.upload_name
                assert row[5] == record.filesystem_id and row[6] == record.quarantined_by
                assert row[7] == record.sha256
                assert (row[8], row[9]) == (record.created_ts, record.last_access_ts)
                assert bool(row[10]) == record.authenticated
                thumbnails = self.query(
                    "SELECT thumbnail_width, thumbnail_height, thumbnail_type, "
                    "thumbnail_method, thumbnail_length FROM remote_media_cache_thumbnails "
                    "WHERE media_origin = ? AND media_id = ?", (record.server, record.media_id))
            if record.pending:
                assert length is None, f"pending {record.mxc} has a media_length"
                assert not (self.media_store / record.path).exists()
                continue
            assert length == record.length, f"{record.mxc}: media_length {length}"
            if record.file_written:
                expected_files[record.path] = record.data
            else:
                assert not (self.media_store / record.path).exists(), record.mxc
            assert sorted(thumbnails) == sorted(
                (t.width, t.height, t.media_type, t.method, t.length)
                for t in record.thumbnails), f"{record.mxc}: thumbnail rows"
            for thumbnail in record.thumbnails:
                if record.file_written:
                    expected_files[thumbnail.path] = thumbnail.data

        found = {PurePosixPath(path.relative_to(self.media_store).as_posix())
                 for path in self.media_store.rglob("*") if path.is_file()}
        assert found == set(expected_files), (
            f"files without rows: {sorted(map(str, found - set(expected_files)))}; "
            f"rows without files: {sorted(map(str, set(expected_files) - found))}")
        for relative, data in expected_files.items():
            on_disk = (self.media_store / relative).read_bytes()
            assert on_disk == data, f"{relative}: {len(on_disk)} bytes, expected {len(data)}"
        return len(expected_files)


def _now_ms():
    return int(datetime.datetime.now(datetime.UTC).timestamp() * 1000)


def _ms(year, month, day, hour=12, minute=0):
    return int(datetime.datetime(year, month, day, hour, minute,
                                 tzinfo=datetime.UTC).timestamp() * 1000)


# ---------------------------------------------------------------------------------------------
# The standard installation
# ---------------------------------------------------------------------------------------------


@dataclass
class StandardSet:
    """standard_installation()'s installation and what an import of it should do. Every
    record is in exactly one of imported, pending, missing and url_preview; the other lists
    and `named` pick records out of those."""
    installation: SynapseInstallation
    imported: list  # media an import brings over, with their thumbnails
    pending: list  # local /create reservations never uploaded to: nothing to import
    missing: list  # rows whose file is not in the store: nothing to import
    url_preview: list  # media fetched for URL previews (local rows with url_cache set)
    quarantined: list  # imported ones that are quarantined
    duplicates: list  # two local uploads with the same bytes
    named: dict  # every record by a short name, for tests that want one in particular

    @property
    def all(self):
        return self.imported + self.pending + self.missing + self.url_preview


def standard_installation(root, database="sqlite", server_name="synapse.test", seed=6):
    """A Synapse installation with one of each case the importer must handle (see StandardSet).
    The timestamps are fixed, and with the default seed so are the IDs."""
    hs = SynapseInstallation(root, database, server_name, seed=seed)
    alice, bob = f"@alice:{server_name}", f"@bob:{server_name}"
    admin = f"@admin:{server_name}"
    named = {}

    # Local uploads. The oldest predates Synapse 1.120 and 1.128: not authenticated, no hash.
    photo = image(800, 600, "image/jpeg", seed=1)
    named["photo"] = hs.add_local(
        photo, media_type="image/jpeg", upload_name="holiday.jpg", user_id=alice,
        created_ts=_ms(2024, 3, 2), last_access_ts=_ms(2025, 1, 9), authenticated=False,
        record_sha256=False, thumbnails=default_thumbnails(800, 600, "image/jpeg", seed=1))
    named["unicode_png"] = hs.add_local(
        image(200, 150, "image/png", seed=2), media_type="image/png",
        upload_name="Grüße 🌍.png", user_id=alice, created_ts=_ms(2025, 6, 1),
        last_access_ts=_ms(2025, 6, 2),
        thumbnails=default_thumbnails(200, 150, "image/png", seed=2))
    # A square image: the 32×32 crop and the 32×32 scale are two thumbnails with the same size
    # and type, told apart only by their method (a custom thumbnail_sizes makes that).
    square = image(64, 64, "image/png", seed=3)
    named["square"] = hs.add_local(
        square, media_type="image/png", upload_name="avatar.png", user_id=bob,
        created_ts=_ms(2025, 6, 3),
        thumbnails=[(32, 32, "image/png", "crop", image(32, 32, "image/png", seed=30)),
                    (32, 32, "image/png", "scale", image(32, 32, "image/png", seed=31)),
                    (64, 64, "image/png", "scale", image(64, 64, "image/png", seed=32))])
    named["gif"] = hs.add_local(
        image(120, 90, "image/gif", seed=4), media_type="image/gif",
        upload_name="réaction.gif", user_id=bob, created_ts=_ms(2025, 7, 14),
        thumbnails=default_thumbnails(120, 90, "image/gif", seed=4))
    named["text"] = hs.add_local(
        "Notizen: Ärger, naïve café, 日本語\n".encode() * 20,
        media_type="text/plain; charset=utf-8", upload_name="notes (v2) \"final\".txt",
        user_id=alice, created_ts=_ms(2025, 8, 1))
    named["pdf"] = hs.add_local(
        b"%PDF-1.4\n" + bytes(range(256)) * 64 + b"\n%%EOF\n", media_type="application/pdf",
        upload_name="report.pdf", user_id=bob, created_ts=_ms(2025, 8, 2),
        last_access_ts=_ms(2025, 9, 1))
    named["no_name"] = hs.add_local(
        bytes(random.Random(7).getrandbits(8) for _ in range(5000)),
        media_type="application/octet-stream", upload_name=None, user_id=alice,
        created_ts=_ms(2025, 8, 3))
    named["empty"] = hs.add_local(b"", media_type="text/plain", upload_name="empty.txt",
                                  user_id=alice, created_ts=_ms(2025, 8, 4))

    # The same bytes uploaded twice, by two users under two names: two media, one content.
    same = image(300, 200, "image/jpeg", seed=5)
    named["duplicate_a"] = hs.add_local(
        same, media_type="image/jpeg", upload_name="meme.jpg", user_id=alice,
        created_ts=_ms(2025, 9, 10),
        thumbnails=default_thumbnails(300, 200, "image/jpeg", seed=5))
    named["duplicate_b"] = hs.add_local(
        same, media_type="image/jpeg", upload_name="meme (1).jpg", user_id=bob,
        created_ts=_ms(2025, 9, 11),
        thumbnails=default_thumbnails(300, 200, "image/jpeg", seed=5))

    # Quarantined: a local one by an admin, protected media next to it for contrast.
    named["quarantined_local"] = hs.add_local(
        image(100, 100, "image/png", seed=6), media_type="image/png", upload_name="bad.png",
        user_id=bob, created_ts=_ms(2025, 10, 1), quarantined_by=admin,
        thumbnails=default_thumbnails(100, 100, "image/png", seed=6))
    named["protected"] = hs.add_local(
        b"protected content\n", media_type="text/plain", upload_name="keep.txt",
        user_id=admin, created_ts=_ms(2025, 10, 2), safe_from_quarantine=True)

    # A /create reservation that was never uploaded to.
    named["pending"] = hs.add_local(user_id=alice, created_ts=_ms(2025, 11, 5), pending=True)

    # A URL preview: the page itself and its og:image, both fetched into url_cache/. The page's
    # url_cache row holds the og JSON, which points at the image by its mxc URI.
    page_ts = _ms(2025, 11, 20, 9, 30)
    og_image = hs.add_local(
        image(640, 360, "image/png", seed=8), media_type="image/png", upload_name="banner.png",
        user_id=alice, created_ts=page_ts, url_cache="https://example.org/banner.png",
        thumbnails=default_thumbnails(640, 360, "image/png", seed=8))
    og = {"og:title": "Example page", "og:description": "An example",
          "og:image": og_image.mxc, "og:image:type": "image/png", "og:image:width": 640,
          "og:image:height": 360, "matrix:image:size": og_image.length}
    named["preview_image"] = og_image
    named["preview_page"] = hs.add_local(
        b"<html><head><title>Example page</title></head><body>...</body></html>\n",
        media_type="text/html; charset=utf-8", upload_name=None, user_id=alice,
        created_ts=page_ts, url_cache="https://example.org/page",
        url_cache_row=(200, '"etag-1"', og))

    # Remote media, under filesystem IDs of this server. The origins include a port and an
    # IPv6 literal, which Synapse puts into the path verbatim.
    named["remote_photo"] = hs.add_remote(
        "matrix.org", hs.random_id(), image(1024, 768, "image/jpeg", seed=9),
        media_type="image/jpeg", upload_name="Sonnenuntergang über dem Meer.jpg",
        created_ts=_ms(2025, 4, 4), last_access_ts=_ms(2025, 12, 1),
        thumbnails=default_thumbnails(1024, 768, "image/jpeg", seed=9))
    # Thumbnails stored by an old Synapse under the legacy name, without the method.
    named["remote_legacy"] = hs.add_remote(
        "example.com:8448", "legacyThumbMedia0123_-xyz", image(400, 300, "image/png", seed=10),
        media_type="image/png", upload_name="old.png", created_ts=_ms(2020, 2, 2),
        authenticated=False, record_sha256=False,
        thumbnails=[(32, 32, "image/png", "crop", image(32, 32, "image/png", seed=100), True),
                    (96, 96, "image/png", "crop", image(96, 96, "image/png", seed=101), True),
                    (320, 240, "image/png", "scale", image(320, 240, "image/png", seed=102))])
    named["remote_file"] = hs.add_remote(
        "[2001:db8::1]:8448", "AbCdEf0123456789", b"remote file contents\n" * 100,
        media_type="application/zip", upload_name="archive.zip", created_ts=_ms(2025, 5, 5))
    named["quarantined_remote"] = hs.add_remote(
        "evil.example", hs.random_id(), image(50, 50, "image/png", seed=11),
        media_type="image/png", upload_name="spam.png", created_ts=_ms(2025, 10, 3),
        quarantined_by=admin, thumbnails=default_thumbnails(50, 50, "image/png", seed=11))
    named["remote_missing"] = hs.add_remote(
        "matrix.org", hs.random_id(), b"gone from disk\n" * 10, media_type="text/plain",
        upload_name="lost.txt", created_ts=_ms(2025, 3, 3), write_file=False)

    url_preview = [named["preview_image"], named["preview_page"]]
    pending = [named["pending"]]
    missing = [named["remote_missing"]]
    excluded = {id(r) for r in url_preview + pending + missing}
    return StandardSet(
        installation=hs,
        imported=[r for r in hs.records if id(r) not in excluded],
        pending=pending, missing=missing, url_preview=url_preview,
        quarantined=[named["quarantined_local"], named["quarantined_remote"]],
        duplicates=[named["duplicate_a"], named["duplicate_b"]],
        named=named)


# ---------------------------------------------------------------------------------------------
# Self-check: python3 tests/integration/synapse_fixture.py [sqlite|postgres]...
# ---------------------------------------------------------------------------------------------

def _self_check(database, directory):
    import yaml
    standard = standard_installation(directory / database, database)
    hs = standard.installation
    files = hs.check()

    assert len(standard.all) == len(hs.records) == len({id(r) for r in standard.all})
    # The pending row is as /create leaves it; every other row has a length.
    assert hs.query("SELECT media_type, upload_name, media_length, sha256, last_access_ts "
                    "FROM local_media_repository WHERE media_id = ?",
                    (standard.pending[0].media_id,)) == [(None, None, None, None, None)]
    assert hs.query("SELECT COUNT(*) FROM local_media_repository "
                    "WHERE media_length IS NULL") == [(1,)]
    # The duplicates share their hash, and the sha256 index finds both.
    digest = standard.duplicates[0].sha256
    assert digest == standard.duplicates[1].sha256 == standard.duplicates[0].content_sha256
    assert hs.query("SELECT COUNT(*) FROM local_media_repository WHERE sha256 = ?",
                    (digest,)) == [(2,)]
    # Unicode names survive the round trip through the database.
    assert hs.query("SELECT upload_name FROM local_media_repository WHERE media_id = ?",
                    (standard.named["unicode_png"].media_id,)) == [("Grüße 🌍.png",)]
    # The URL preview: its files are under url_cache/, and the page has a url_cache row.
    for record in standard.url_preview:
        assert record.path.parts[0] == "url_cache" and record.path.parts[1] == "2025-11-20"
    (og_json,) = hs.query("SELECT og FROM local_media_repository_url_cache WHERE media_id = ?",
                          (standard.named["preview_page"].media_id,))[0]
    assert json.loads(og_json)["og:image"] == standard.named["preview_image"].mxc
    # The legacy thumbnail names carry no method; the row still does.
    legacy = [t for t in standard.named["remote_legacy"].thumbnails if t.legacy_name]
    assert legacy and all(t.path.name.count("-") == 3 for t in legacy)
    # The configuration reads back as Synapse would read it.
    config = yaml.safe_load(hs.config_path.read_text())
    assert config["server_name"] == hs.server_name
    assert Path(config["media_store_path"]) == hs.media_store
    assert config["database"] == hs.database_args()
    # Indexes present, as Synapse has them.
    if database == "sqlite":
        indexes = {row[0] for row in hs.query(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    else:
        indexes = {row[0] for row in hs.query(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert {"local_media_repository_sha256", "remote_media_cache_sha256",
            "users_have_local_media", "local_media_repository_url_idx"} <= indexes, indexes
    print(f"{database}: {len(hs.records)} media, {files} files in {hs.media_store}: "
          f"rows and files agree")


if __name__ == "__main__":
    import shutil
    import sys
    import tempfile

    # postgres_service sits next to this file; tests import it the same way.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    temporary = Path(tempfile.mkdtemp(prefix="synapse-fixture-"))
    try:
        for name in sys.argv[1:] or ["sqlite", "postgres"]:
            _self_check(name, temporary)
    finally:
        shutil.rmtree(temporary)
