"""The request log: one line per request with its fields, no access token ever, the client
address behind trusted proxies, and the log level."""

import re
import time

import pytest

from harness import (APPSERVICE, AUTHENTICATED, SERVER_NAME, RawConnection,
                     request_head)
from homeserver_double import ALICE_TOKEN, APPSERVICE_TOKEN, BOB_TOKEN, SOFT_LOGOUT_TOKEN


def fields(line):
    """The key=value fields of a request log line."""
    return dict(re.findall(r"(\w+)=(\S+)", line.split(" request ", 1)[1]))


def test_request_log_line(mxcd):
    body = mxcd.get("/_mxcd/version", params={"marker": "one"}).content
    line = mxcd.request_line("marker=one")
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} info request ", line), line
    f = fields(line)
    assert f["method"] == "GET"
    assert f["path"] == "/_mxcd/version?marker=one"
    assert f["status"] == "200"
    assert f["bytes"] == str(len(body))
    assert float(f["duration_ms"]) >= 0
    assert f["client"] == "127.0.0.1"
    assert "aborted" not in f


def test_one_line_per_request(mxcd):
    media_id = mxcd.upload_id(b"counted")
    for i in range(5):
        mxcd.download(media_id, params={"marker": f"count{i}"})
    mxcd.get("/_matrix/nothing", params={"marker": "count404"})
    assert mxcd.wait_for_log("marker=count404")
    lines = [line for line in mxcd.log().splitlines() if "marker=count" in line]
    assert len(lines) == 6
    assert [fields(line)["status"] for line in lines] == ["200"] * 5 + ["404"]
    assert fields(lines[0])["bytes"] == str(len(b"counted"))


def test_tokens_never_reach_the_log(mxcd):
    secrets = [ALICE_TOKEN, BOB_TOKEN, SOFT_LOGOUT_TOKEN, APPSERVICE_TOKEN, "secret-unknown"]
    mxcd.get("/_matrix/client/v1/media/config", params={"access_token": ALICE_TOKEN})
    mxcd.get("/_matrix/client/v1/media/config",
             params={"marker": "x", "access_token": "secret-unknown", "other": "y"})
    mxcd.get("/_matrix/client/v1/media/config", headers={"Authorization": f"Bearer {BOB_TOKEN}"})
    mxcd.get("/_matrix/client/v1/media/config",
             headers={"Authorization": f"Bearer {SOFT_LOGOUT_TOKEN}"})
    mxcd.upload(b"x", headers=APPSERVICE, params={"user_id": "@puppet:test.local"})
    mxcd.stop()  # flushes the batched request lines
    log = mxcd.log()
    assert log.count("path=/_matrix/client/v1/media/config") == 4
    assert "path=/_matrix/client/v1/media/config?access_token=<redacted> " in log
    assert "?marker=x&access_token=<redacted>&other=y " in log
    for secret in secrets:
        assert secret not in log


@pytest.mark.parametrize("trusted,forwarded,client", [
    (["127.0.0.1/32"], "203.0.113.7", "203.0.113.7"),
    (["127.0.0.1/32"], "198.51.100.1, 203.0.113.7", "203.0.113.7"),
    # The right-most address that is not itself a trusted proxy.
    (["127.0.0.1/32", "10.0.0.0/8"], "203.0.113.7, 10.1.2.3", "203.0.113.7"),
    ([], "203.0.113.7", "127.0.0.1"),
    (["10.0.0.0/8"], "203.0.113.7", "127.0.0.1"),
])
def test_forwarded_for_only_from_trusted_proxies(start_mxcd, trusted, forwarded, client):
    server = start_mxcd({"http": {"trusted_proxies": trusted}})
    server.get("/_mxcd/version", params={"marker": "xff"},
               headers={"X-Forwarded-For": forwarded})
    assert fields(server.request_line("marker=xff"))["client"] == client


def test_warn_level_turns_request_lines_off(start_mxcd):
    server = start_mxcd({"log": {"level": "warn"}})
    server.get("/_mxcd/version", params={"marker": "quiet"})
    server.get("/_matrix/nothing", params={"marker": "quiet"})
    server.stop()
    assert "marker=quiet" not in server.log()
    assert " request " not in server.log()


def test_aborted_download_is_marked(start_mxcd):
    server = start_mxcd({"media": {"max_upload_size": "64MiB"}})
    size = 48 * 1024 * 1024  # far more than the socket buffers hold
    media_id = server.upload_id(b"a" * size)
    conn = RawConnection(server)
    conn.send(request_head("GET", f"{AUTHENTICATED}/download/{SERVER_NAME}/{media_id}"
                                  "?marker=abort"))
    conn.sock.recv(1000)
    time.sleep(0.2)
    conn.close()
    line = server.request_line("marker=abort")
    f = fields(line)
    assert f["status"] == "200" and f.get("aborted") == "true", line


@pytest.mark.parametrize("name", ["access%5Ftoken", "%61ccess_token", "access_tok%65n",
                                  "%61%63%63%65%73%73%5f%74%6f%6b%65%6e"])
def test_encoded_parameter_names_are_redacted_too(shared_mxcd, name):
    """The token is looked up by the decoded name, so it is redacted by the decoded name."""
    marker = f"encoded-{abs(hash(name))}"
    r = shared_mxcd.raw("GET", f"/_matrix/client/v1/media/config?marker={marker}&{name}={ALICE_TOKEN}")
    assert r.status_code == 200, r.text  # the token was found under that name
    line = shared_mxcd.request_line(marker)
    assert ALICE_TOKEN not in line
    assert f"&{name}=<redacted> " in line


def test_token_in_a_malformed_target_is_redacted(shared_mxcd):
    marker = "malformed-target-marker"
    r = shared_mxcd.raw("GET", f"/_matrix/client/v1/media/config?marker={marker}&access%5ftoken=secret-in-bad%zz")
    assert r.status_code == 400
    line = shared_mxcd.request_line(marker)
    assert "secret-in-bad" not in line
