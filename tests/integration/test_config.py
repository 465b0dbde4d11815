"""Configuration validation: `mxcd check-config` exits 2 naming the offending key, and
`mxcd serve` refuses the same configs with the same message."""

import copy
import json
import subprocess

import pytest

from harness import REPO, asan_binary, free_port, merge, server_env

EXAMPLE = REPO / "config/mxcd.example.yaml"

INVALID = [
    ({"surprise": 1}, "surprise"),
    ({"media": {"max_upload_sise": "10M"}}, "media.max_upload_sise"),
    ({"media": {"max_upload_size": "12 parsecs"}}, "media.max_upload_size"),
    ({"media": {"max_upload_size": -1}}, "media.max_upload_size"),
    ({"media": {"max_upload_size": [1]}}, "media.max_upload_size"),
    ({"http": {"header_timeout": "soon"}}, "http.header_timeout"),
    ({"http": {"idle_timeout": "5 fortnights"}}, "http.idle_timeout"),
    ({"http": {"idle_timeout": "0s"}}, "http.idle_timeout"),
    ({"http": {"max_connections": "many"}}, "http.max_connections"),
    ({"http": {"trusted_proxies": ["not-an-ip"]}}, "http.trusted_proxies[0]"),
    ({"http": {"trusted_proxies": "127.0.0.1"}}, "http.trusted_proxies"),
    ({"listen": {"port": 70000}}, "listen.port"),
    ({"listen": {"port": 0}}, "listen.port"),
    ({"listen": {"port": [1, 2]}}, "listen.port"),
    ({"listen": {"port": "eighty"}}, "listen.port"),
    ({"listen": {"address": "not-an-address"}}, "listen.address"),
    ({"media": {"legacy_download_freeze": "yesterday"}}, "media.legacy_download_freeze"),
    ({"media": {"max_pending_uploads_per_user": 0}}, "media.max_pending_uploads_per_user"),
    ({"log": {"level": "chatty"}}, "log.level"),
    ({"auth": {"homeserver_url": "ftp://example.org"}}, "auth.homeserver_url"),
    ({"auth": {"static_tokens": [{"token": "short", "user_id": "@a:b"}]}},
     "auth.static_tokens[0].token"),
    ({"auth": {"static_tokens": [{"token": "long-enough-token", "user_id": "nobody"}]}},
     "auth.static_tokens[0].user_id"),
    ({"auth": {"admin_users": ["admin"]}}, "auth.admin_users[0]"),
    ({"auth": {"admin_users": [{"user": "@a:b"}]}}, "auth.admin_users[0]"),
    ({"auth": {"admin_users": "@a:b"}}, "auth.admin_users"),
    ({"server_name": ""}, "server_name"),
    ({"storage": "not a mapping"}, "storage"),
]


def valid_config(tmp_path):
    return {
        "server_name": "test.local",
        "listen": {"address": "127.0.0.1", "port": free_port()},
        "auth": {"homeserver_url": "http://127.0.0.1:8008"},
        "storage": {"path": str(tmp_path / "media")},
        "database": {"sqlite": {"path": str(tmp_path / "mxcd.sqlite3")}},
    }


def run(command, config, tmp_path, env=None, unset=()):
    """Runs `mxcd <command> --config` on config (a dict, written as JSON, or YAML text)."""
    path = tmp_path / "config.yaml"
    path.write_text(config if isinstance(config, str) else json.dumps(config))
    environment = server_env(env)
    for name in unset:
        environment.pop(name, None)
    return subprocess.run([str(asan_binary()), command, "--config", str(path)],
                          capture_output=True, text=True, timeout=60, env=environment)


def assert_config_error(result, key):
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert f"config error: {key}: " in result.stderr, result.stderr


@pytest.mark.parametrize("override,key", INVALID, ids=[key for _, key in INVALID])
def test_invalid_config_names_the_key(tmp_path, override, key):
    config = merge(valid_config(tmp_path), copy.deepcopy(override))
    assert_config_error(run("check-config", config, tmp_path), key)


def test_valid_config_passes(tmp_path):
    result = run("check-config", valid_config(tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing,key", [("server_name", "server_name"),
                                         ("storage", "storage.path"),
                                         ("database", "database")])
def test_missing_required_keys(tmp_path, missing, key):
    config = valid_config(tmp_path)
    del config[missing]
    assert_config_error(run("check-config", config, tmp_path), key)


def test_environment_variables(tmp_path):
    config = merge(valid_config(tmp_path), {"auth": {"static_tokens": [
        {"token": "${MXCD_TEST_SECRET}", "user_id": "@a:test.local"}]}})
    result = run("check-config", config, tmp_path, unset=["MXCD_TEST_SECRET"])
    assert_config_error(result, "auth.static_tokens[0].token")
    assert "MXCD_TEST_SECRET" in result.stderr
    result = run("check-config", config, tmp_path, env={"MXCD_TEST_SECRET": "long-enough-secret"})
    assert result.returncode == 0, result.stderr


def test_example_config(tmp_path):
    result = run("check-config", EXAMPLE.read_text(), tmp_path,
                 env={"MXCD_DEV_TOKEN": "let-me-in-please"})
    assert result.returncode == 0, result.stderr
    result = run("check-config", EXAMPLE.read_text(), tmp_path, unset=["MXCD_DEV_TOKEN"])
    assert_config_error(result, "auth.static_tokens[0].token")


def test_invalid_yaml(tmp_path):
    result = run("check-config", "server_name: [unclosed\n", tmp_path)
    assert result.returncode == 2 and "config error: " in result.stderr


def test_missing_file(tmp_path):
    result = subprocess.run([str(asan_binary()), "check-config", "--config",
                             str(tmp_path / "nope.yaml")],
                            capture_output=True, text=True, timeout=60, env=server_env())
    assert result.returncode == 2 and "config error: " in result.stderr


SERVE_INVALID = [({"surprise": 1}, "surprise"),
                 ({"media": {"max_upload_size": "lots"}}, "media.max_upload_size"),
                 ({"listen": {"port": 70000}}, "listen.port")]


@pytest.mark.parametrize("override,key", SERVE_INVALID, ids=[key for _, key in SERVE_INVALID])
def test_serve_refuses_a_bad_config(tmp_path, override, key):
    config = merge(valid_config(tmp_path), copy.deepcopy(override))
    result = run("serve", config, tmp_path)
    assert result.returncode > 0, result.returncode  # an error exit, not a crash by signal
    assert f"config error: {key}: " in result.stderr
    assert not (tmp_path / "media").exists()
