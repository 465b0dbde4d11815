"""Paths and methods, OPTIONS and CORS, the config endpoint and the operator endpoints."""

import subprocess

import pytest

from harness import ALICE, CORS, SERVER_NAME, assert_error, server_env


@pytest.mark.parametrize("path", [
    "/_matrix/media/unknown",
    "/_matrix/media/v3/unknown",
    "/_matrix/client/v1/media/unknown",
    "/_matrix/media/v3/thumbnail/test.local",
    "/_matrix/client/v1/media/thumbnail/test.local/abcdef/extra",
    "/_matrix/media/v3/preview_url?url=https://example.org",
    "/_matrix/media/r0/preview_url",
    "/_matrix/client/v1/media/preview_url?url=https://example.org",
    "/_matrix/media/v2/upload",
    "/_matrix/media/v3/create",
    "/_matrix/media/v3/download/test.local",
    "/_matrix/media/v3/download/test.local/abcdef/name/extra",
    "/_matrix/client/v1/media/download",
    "/",
    "/_mxcd/nothing",
])
@pytest.mark.parametrize("headers", [ALICE, {}], ids=["token", "no-token"])
def test_unknown_paths_are_unrecognized(shared_mxcd, path, headers):
    assert_error(shared_mxcd.get(path, headers=headers), 404, "M_UNRECOGNIZED")


@pytest.mark.parametrize("method,path,allowed", [
    ("PATCH", "/_matrix/media/v3/upload", {"POST"}),
    ("GET", "/_matrix/media/v3/upload", {"POST"}),
    ("GET", "/_matrix/media/v1/create", {"POST"}),
    ("DELETE", f"/_matrix/client/v1/media/download/{SERVER_NAME}/abcdef", {"GET", "HEAD"}),
    ("POST", f"/_matrix/media/v3/download/{SERVER_NAME}/abcdef", {"GET", "HEAD"}),
    ("GET", f"/_matrix/media/v3/upload/{SERVER_NAME}/abcdef", {"PUT"}),
    ("POST", "/_matrix/client/v1/media/config", {"GET"}),
    ("POST", "/_mxcd/health", {"GET"}),
])
def test_known_path_with_another_method_is_405(shared_mxcd, method, path, allowed):
    r = shared_mxcd.request(method, path, headers=ALICE)
    assert_error(r, 405, "M_UNRECOGNIZED")
    allow = {m.strip() for m in r.headers["Allow"].split(",")}
    assert allowed <= allow and method not in allow, r.headers["Allow"]


@pytest.mark.parametrize("method,path", [
    ("GET", f"/_synapse/admin/v1/media/{SERVER_NAME}/abcdef"),   # Synapse: query the media
    ("POST", f"/_synapse/admin/v1/media/{SERVER_NAME}/delete"),  # Synapse: delete by age
    ("PUT", f"/_synapse/admin/v1/media/{SERVER_NAME}/abcdef"),
])
@pytest.mark.parametrize("headers", [ALICE, {}], ids=["token", "no-token"])
def test_admin_media_endpoints_not_served_are_unrecognized(shared_mxcd, method, path, headers):
    """The admin media prefix is Synapse's: a method mxcd does not serve on a path it serves
    for DELETE is an unknown endpoint, as docs/http-api.md says, not a 405."""
    assert_error(shared_mxcd.request(method, path, headers=headers), 404, "M_UNRECOGNIZED")


@pytest.mark.parametrize("path", ["/_matrix/media/v3/upload", "/_matrix/media/v1/create",
                                  f"/_matrix/client/v1/media/download/{SERVER_NAME}/abcdef",
                                  "/_matrix/client/v1/media/config", "/_matrix/whatever"])
def test_options_needs_no_token_and_runs_nothing(mxcd, homeserver, path):
    r = mxcd.request("OPTIONS", path, data=b"not a body to store")
    assert r.status_code == 204 and r.content == b""
    for name, value in CORS.items():
        assert r.headers[name] == value
    assert homeserver.whoami_calls() == []
    assert mxcd.media_count() == 0


def test_every_response_carries_cors(mxcd):
    media_id = mxcd.upload_id(b"x")
    for r in (mxcd.get("/_matrix/nothing"),
              mxcd.get("/_mxcd/health"),
              mxcd.get("/_matrix/client/v1/media/config"),
              mxcd.get("/_matrix/client/v1/media/config", headers=ALICE),
              mxcd.request("PATCH", "/_matrix/media/v3/upload"),
              mxcd.download(media_id),
              mxcd.download(media_id, authenticated=False),
              mxcd.download("unknownMedia", authenticated=False),
              mxcd.upload(b"x")):
        for name, value in CORS.items():
            assert r.headers.get(name) == value, (r.url, r.status_code, name)


def test_health_and_version(mxcd):
    r = mxcd.get("/_mxcd/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert r.headers["Content-Type"] == "application/json"
    version = mxcd.get("/_mxcd/version").json()
    assert version["server"] == "mxcd" and version["version"]
    # The command line prints the same version.
    result = subprocess.run([str(mxcd.binary), "version"], capture_output=True, text=True,
                            timeout=60, env=server_env())
    assert result.returncode == 0
    assert version["version"] in result.stdout


def test_health_reports_unwritable_storage(mxcd):
    moved = mxcd.dir / "moved-away"
    mxcd.storage.rename(moved)
    try:
        r = mxcd.get("/_mxcd/health")
        assert r.status_code == 503
        assert r.json()["status"] == "unavailable" and r.json()["error"]
    finally:
        moved.rename(mxcd.storage)
    assert mxcd.get("/_mxcd/health").status_code == 200


def test_config_on_every_path(start_mxcd):
    server = start_mxcd({"media": {"max_upload_size": "12345678"}})
    for path in ("/_matrix/client/v1/media/config", "/_matrix/media/v3/config",
                 "/_matrix/media/r0/config", "/_matrix/media/v1/config"):
        r = server.get(path, headers=ALICE)
        assert r.status_code == 200 and r.headers["Content-Type"] == "application/json", path
        assert r.json() == {"m.upload.size": 12345678}, path
        assert type(r.json()["m.upload.size"]) is int
