"""Memory stays bounded whatever the file size: a 1 GiB upload and a 1 GiB download each grow
the server's peak RSS by less than 64 MiB. This runs the release build, because the
sanitizers inflate RSS. The test itself streams too: it never holds 1 GiB either."""

import hashlib
import os

import requests

from harness import ALICE, AUTHENTICATED, SERVER_NAME, media_id_of

GIB = 1024 ** 3
LIMIT = 64 * 1024 ** 2


def peak_rss(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def generated(total, digest):
    """total bytes in 1 MiB blocks, hashed into digest as they are produced. The block is
    random, and varied per position, so no layer can compress or deduplicate it away."""
    block = bytearray(os.urandom(1024 * 1024))
    for i in range(total // len(block)):
        block[:8] = i.to_bytes(8, "little")
        digest.update(block)
        yield bytes(block)


def warm_up(server):
    """The first requests allocate the server's fixed structures (buffers, caches, SQLite
    pages); those are not what is measured."""
    media_id = server.upload_id(b"w" * 4_000_000)
    assert server.download(media_id).content == b"w" * 4_000_000


def upload_gib(server):
    """Uploads 1 GiB, checks the growth of peak RSS; returns the media ID and SHA-256."""
    warm_up(server)
    before = peak_rss(server.pid)
    sent = hashlib.sha256()
    r = requests.post(server.url + "/_matrix/media/v3/upload", data=generated(GIB, sent),
                      headers=ALICE, timeout=900)
    media_id = media_id_of(r)
    growth = peak_rss(server.pid) - before
    assert growth < LIMIT, f"the upload grew peak RSS by {growth >> 20} MiB"
    return media_id, sent.hexdigest()


def download_gib(server, media_id, digest):
    """Downloads it again (in a fresh process, so its peak is its own) and checks the bytes
    and the growth of peak RSS."""
    warm_up(server)
    before = peak_rss(server.pid)
    received = hashlib.sha256()
    length = 0
    with requests.get(f"{server.url}{AUTHENTICATED}/download/{SERVER_NAME}/{media_id}",
                      headers=ALICE, stream=True, timeout=900) as d:
        assert d.status_code == 200
        assert d.headers["Content-Length"] == str(GIB)
        for chunk in d.iter_content(1024 * 1024):
            received.update(chunk)
            length += len(chunk)
    assert length == GIB and received.hexdigest() == digest
    growth = peak_rss(server.pid) - before
    assert growth < LIMIT, f"the download grew peak RSS by {growth >> 20} MiB"


def test_one_gib_upload_and_download(start_mxcd):
    server = start_mxcd({"media": {"max_upload_size": "2GiB"}}, release=True)
    media_id, digest = upload_gib(server)
    assert server.db("SELECT sha256 FROM media WHERE media_id = ?", (media_id,)) == [(digest,)]
    server.restart()
    download_gib(server, media_id, digest)
