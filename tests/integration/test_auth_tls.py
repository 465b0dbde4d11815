"""A homeserver reached over https: verified against the system CAs plus a configured CA
file, host name included; anything unverifiable is refused (fail closed)."""

import json
import subprocess

import pytest

from harness import ALICE, assert_error, server_env
from homeserver_double import HomeserverDouble


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def certificates(tmp_path):
    """A private CA and a certificate for 127.0.0.1 (and only that) signed by it."""
    d = tmp_path / "tls"
    d.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=mxcd test CA", cwd=d)
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=homeserver",
            cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext", cwd=d)
    return d


@pytest.fixture
def tls_homeserver(certificates):
    double = HomeserverDouble(tls=(str(certificates / "server.pem"),
                                   str(certificates / "server.key")))
    yield double
    double.close()


def config_for(url, ca_file=None):
    auth = {"homeserver_url": url}
    if ca_file:
        auth["homeserver_ca_file"] = str(ca_file)
    return {"auth": auth}


def test_trusted_https_homeserver(start_mxcd, tls_homeserver, certificates):
    assert tls_homeserver.url.startswith("https://")
    server = start_mxcd(config_for(tls_homeserver.url, certificates / "ca.pem"))
    assert server.upload(b"over tls").status_code == 200
    assert len(tls_homeserver.whoami_calls()) == 1


def test_untrusted_certificate_is_refused(start_mxcd, tls_homeserver):
    server = start_mxcd(config_for(tls_homeserver.url))
    r = server.get("/_matrix/client/v1/media/config", headers=ALICE)
    assert_error(r, 502, "M_UNKNOWN")
    assert tls_homeserver.whoami_calls() == []


def test_certificate_for_another_host_is_refused(start_mxcd, tls_homeserver, certificates):
    port = tls_homeserver.url.rsplit(":", 1)[1]
    server = start_mxcd(config_for(f"https://localhost:{port}", certificates / "ca.pem"))
    r = server.get("/_matrix/client/v1/media/config", headers=ALICE)
    assert_error(r, 502, "M_UNKNOWN")
    assert tls_homeserver.whoami_calls() == []


def test_unreadable_ca_file_stops_start_up(start_mxcd, tmp_path):
    server = start_mxcd()
    server.stop()
    server.config["auth"]["homeserver_ca_file"] = str(tmp_path / "missing.pem")
    server.config_path.write_text(json.dumps(server.config))
    result = subprocess.run([str(server.binary), "serve", "--config", str(server.config_path)],
                            capture_output=True, text=True, timeout=60, env=server_env())
    assert result.returncode == 1
    assert "missing.pem" in result.stderr
