"""Fixtures: the homeserver double, and mxcd instances (harness.Mxcd) that are always
stopped at the end and checked for sanitizer reports."""

import pytest

import homeserver_double
import s3_service
from harness import DEV_TOKEN, Mxcd
from homeserver_double import HomeserverDouble

# Secrets the suite hands to mxcd besides the homeserver double's tokens; tests that make up
# tokens of their own add them here.
SECRETS = {DEV_TOKEN, "secret-unknown", "secret-in-bad"}


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log(tmp_path_factory):
    """After the whole session: every line every mxcd process of the suite logged, searched
    for every access token (and the S3 secret key) the suite used. Whatever a test did with a
    token, it must never reach a log."""
    yield
    secrets = set(SECRETS)
    secrets.update(value for name, value in vars(homeserver_double).items()
                   if name.endswith("_TOKEN") and isinstance(value, str))
    if s3_service._service is not None:
        secrets.add(s3_service._service.secret_key)
    leaks = []
    for log in tmp_path_factory.getbasetemp().rglob("mxcd*.log"):
        for number, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
            leaks += [f"{log}:{number}: {secret!r}" for secret in secrets if secret in line]
    assert not leaks, "secrets in the logs:\n" + "\n".join(leaks[:20])


def stop_and_check(instance):
    if instance.proc is None:
        return
    # A graceful stop, so that LeakSanitizer gets to run at exit.
    if instance.running():
        instance.proc.terminate()
        try:
            instance.proc.wait(30)
        except Exception:
            instance.kill()
    # A sanitizer report is a memory or undefined-behaviour bug, whatever the test saw.
    reports = instance.sanitizer_reports()
    assert not reports, f"{reports} in the log of mxcd:\n{instance.log()}"


@pytest.fixture
def homeserver():
    double = HomeserverDouble()
    yield double
    double.close()


@pytest.fixture
def start_mxcd(tmp_path, homeserver):
    """start_mxcd(overrides=None, release=False, small_disk=None) starts an instance with a
    directory of its own; overrides are deep-merged into the default test config; small_disk
    puts storage.path on a tmpfs of its own (harness.on_small_disk). With start=False the
    instance is only set up (and still stopped and checked at the end)."""
    instances = []

    def start(overrides=None, release=False, start=True, small_disk=None):
        instance = Mxcd(tmp_path / f"mxcd{len(instances)}", homeserver.url, overrides, release,
                        small_disk)
        instances.append(instance)  # before start(), so a failed start is cleaned up too
        if start:
            instance.start()
        return instance

    yield start
    for instance in instances:
        stop_and_check(instance)


@pytest.fixture
def mxcd(start_mxcd):
    return start_mxcd()


def module_instance(tmp_path_factory, name, overrides=None):
    """The body of a module-scoped instance fixture (`yield from` it): an instance with its
    own homeserver double, stopped and checked when the module's tests are done."""
    double = HomeserverDouble()
    instance = Mxcd(tmp_path_factory.mktemp(name), double.url, overrides)
    try:
        instance.start()
        yield instance
    finally:
        try:
            stop_and_check(instance)
        finally:
            double.close()


@pytest.fixture(scope="module")
def shared_mxcd(tmp_path_factory):
    """One default instance for all the tests of a module that need neither a fresh state nor
    another configuration: starting one per test would dominate the suite's run time. Tests
    using it must not depend on what others stored."""
    yield from module_instance(tmp_path_factory, "shared")
