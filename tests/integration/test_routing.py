"""Paths, methods, CORS and the operator endpoints."""

import pytest

from conftest import ALICE

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization, Date",
    "Cross-Origin-Resource-Policy": "cross-origin",
}


def assert_matrix_error(r, status, errcode):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert r.json()["errcode"] == errcode
    assert r.json()["error"]


@pytest.mark.parametrize("path", [
    "/_matrix/media/unknown",
    "/_matrix/media/v3/unknown",
    "/_matrix/media/v3/thumbnail/test.local/abc",
    "/_matrix/client/v1/media/thumbnail/test.local/abc",
    "/_matrix/media/v3/preview_url",
    "/_matrix/client/v1/media/preview_url",
    "/_matrix/media/v3/create",
    "/",
    "/_matrix/media/v3/download/test.local",
])
def test_unknown_paths_are_unrecognized(mxcd, path):
    assert_matrix_error(mxcd.get(path, headers=ALICE), 404, "M_UNRECOGNIZED")


def test_wrong_method_is_405_unrecognized(mxcd):
    r = mxcd.request("PATCH", "/_matrix/media/v3/upload", headers=ALICE)
    assert_matrix_error(r, 405, "M_UNRECOGNIZED")
    assert r.headers["Allow"] == "POST"
    assert_matrix_error(mxcd.request("DELETE", "/_matrix/client/v1/media/download/test.local/x",
                                     headers=ALICE), 405, "M_UNRECOGNIZED")
    assert_matrix_error(mxcd.request("GET", "/_matrix/media/v1/create", headers=ALICE),
                        405, "M_UNRECOGNIZED")


@pytest.mark.parametrize("path", ["/_matrix/media/v3/upload",
                                  "/_matrix/client/v1/media/download/test.local/abc",
                                  "/_matrix/whatever"])
def test_options_needs_no_token_and_carries_cors(mxcd, homeserver, path):
    r = mxcd.request("OPTIONS", path)
    assert r.status_code == 204
    for name, value in CORS.items():
        assert r.headers[name] == value
    assert homeserver.whoami_calls() == []


def test_every_response_carries_cors(mxcd):
    for r in (mxcd.get("/_matrix/nothing"), mxcd.get("/_mxcd/health"),
              mxcd.get("/_matrix/client/v1/media/config")):
        for name, value in CORS.items():
            assert r.headers[name] == value


def test_health_and_version(mxcd):
    assert mxcd.get("/_mxcd/health").json() == {"status": "ok"}
    version = mxcd.get("/_mxcd/version").json()
    assert version["server"] == "mxcd" and version["version"]


def test_config_on_both_paths(mxcd):
    for path in ("/_matrix/client/v1/media/config", "/_matrix/media/v3/config",
                 "/_matrix/media/r0/config", "/_matrix/media/v1/config"):
        r = mxcd.get(path, headers=ALICE)
        assert r.status_code == 200
        assert r.json() == {"m.upload.size": 10 * 1024 * 1024}
        assert isinstance(r.json()["m.upload.size"], int)
