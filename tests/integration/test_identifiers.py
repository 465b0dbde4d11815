"""Server names and media IDs in paths: anything outside the grammar is 400 M_INVALID_PARAM
(after authentication), and no file outside the storage directory is ever read or written.
Requests go through http.client, which sends the path byte for byte (requests would
resolve /../ itself)."""

import pytest

from harness import ALICE, AUTHENTICATED, LEGACY, SERVER_NAME, assert_error

CANARY = b"canary: this file lies outside the storage directory"

INVALID = [
    (SERVER_NAME, ".."),
    (SERVER_NAME, "%2e%2e"),
    (SERVER_NAME, "%2E%2E"),
    (SERVER_NAME, "..%2F..%2F..%2Fsecret.txt"),
    (SERVER_NAME, "%2e%2e%2f%2e%2e%2fsecret.txt"),
    (SERVER_NAME, "..%5C..%5Csecret.txt"),
    (SERVER_NAME, "a%00b"),
    (SERVER_NAME, "secret.txt%00"),
    (SERVER_NAME, "a" * 256),
    (SERVER_NAME, "dot.dot"),
    (SERVER_NAME, "sp%20ace"),
    (SERVER_NAME, "%C3%A9t%C3%A9"),
    ("..", "abcdef"),
    ("%2e%2e", "abcdef"),
    ("a%2Fb", "abcdef"),
    ("..%2F..", "abcdef"),
    ("bad%00name", "abcdef"),
    ("back%5Cslash", "abcdef"),
    ("a" * 256, "abcdef"),
    ("under_score", "abcdef"),
    (f"{SERVER_NAME}:99999", "abcdef"),
    (f"{SERVER_NAME}:0", "abcdef"),
    (f"{SERVER_NAME}:123456", "abcdef"),
    (f"{SERVER_NAME}:", "abcdef"),
    (f"{SERVER_NAME}:80a", "abcdef"),
    ("%5B%3A%3A1", "abcdef"),         # [::1
    ("%5Bnot-ipv6%5D", "abcdef"),     # [not-ipv6]
]

# Valid, if unusual: these must get as far as the lookup (404), not be refused as invalid.
VALID_UNKNOWN = [
    (SERVER_NAME, "a" * 255),
    (SERVER_NAME, "under_score-and-dash"),
    ("a" * 255, "abcdef"),
    ("%5B%3A%3A1%5D%3A8448", "abcdef"),   # [::1]:8448 (clients percent-encode [ ] :)
    ("%5B2001%3Adb8%3A%3A1%5D", "abcdef"),  # [2001:db8::1]
    ("192.0.2.1:1", "abcdef"),
    (f"{SERVER_NAME}:65535", "abcdef"),
]


@pytest.fixture
def server(shared_mxcd):
    # The canary sits next to the storage directory and the database, where a traversal
    # from <storage>/blobs/xx/yy/ or <storage>/ would land.
    (shared_mxcd.dir / "secret.txt").write_bytes(CANARY)
    (shared_mxcd.storage / "secret.txt").write_bytes(CANARY)
    return shared_mxcd


def paths(server_name, media_id):
    return [f"{AUTHENTICATED}/download/{server_name}/{media_id}",
            f"{AUTHENTICATED}/download/{server_name}/{media_id}/name.txt",
            f"{LEGACY}/download/{server_name}/{media_id}",
            f"/_matrix/media/r0/download/{server_name}/{media_id}/name.txt"]


@pytest.mark.parametrize("server_name,media_id", INVALID)
def test_invalid_identifiers_are_400(server, server_name, media_id):
    for path in paths(server_name, media_id):
        r = server.raw("GET", path, headers=ALICE)
        assert CANARY not in r.content
        assert_error(r, 400, "M_INVALID_PARAM")
    assert server.healthy()


@pytest.mark.parametrize("target", [
    f"{AUTHENTICATED}/download/{SERVER_NAME}/..\\..\\secret.txt",
    f"{AUTHENTICATED}/download/back\\slash/abcdef",
    f"{AUTHENTICATED}/download/[::1/abcdef",
    f"{LEGACY}/download/{SERVER_NAME}/..\\..\\secret.txt",
])
def test_characters_not_allowed_in_a_uri_are_400(server, target):
    """A raw backslash or bracket in a path is not a valid request target (RFC 3986): 400,
    as a malformed request or as an invalid identifier."""
    r = server.raw("GET", target, headers=ALICE)
    assert CANARY not in r.content
    assert r.status_code == 400
    assert r.json()["errcode"] in ("M_UNKNOWN", "M_INVALID_PARAM")
    assert server.healthy()


@pytest.mark.parametrize("server_name,media_id", VALID_UNKNOWN)
def test_valid_unknown_identifiers_are_404(server, server_name, media_id):
    for path in paths(server_name, media_id):
        assert_error(server.raw("GET", path, headers=ALICE), 404, "M_NOT_FOUND")


@pytest.mark.parametrize("server_name,media_id", INVALID)
def test_token_is_checked_before_the_identifiers(server, server_name, media_id):
    for path in (f"{AUTHENTICATED}/download/{server_name}/{media_id}",
                 f"{AUTHENTICATED}/download/{server_name}/{media_id}/name.txt"):
        assert_error(server.raw("GET", path), 401, "M_MISSING_TOKEN")
    r = server.raw("PUT", f"/_matrix/media/v3/upload/{server_name}/{media_id}", body=b"x")
    assert_error(r, 401, "M_MISSING_TOKEN")


@pytest.mark.parametrize("server_name,media_id", INVALID)
def test_put_with_invalid_identifiers_writes_nothing(server, server_name, media_id):
    before = sorted(p for p in server.dir.rglob("*") if server.storage not in p.parents)
    r = server.raw("PUT", f"/_matrix/media/v3/upload/{server_name}/{media_id}", body=CANARY,
                   headers=dict(ALICE, **{"Content-Type": "text/plain"}))
    assert_error(r, 400, "M_INVALID_PARAM")
    after = sorted(p for p in server.dir.rglob("*") if server.storage not in p.parents)
    # Only the database's own files may change (SQLite journals; PostgreSQL keeps none here).
    assert [p for p in after if p not in before and "sqlite" not in p.name] == []
    assert server.media_count() == 0  # no test of this module stores anything
