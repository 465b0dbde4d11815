"""A frozen PostgreSQL: its processes stopped with SIGSTOP, which is what a network partition
or a hung host looks like to mxcd (the TCP connections stay open, nothing answers). Uploads,
downloads of media not in any cache and /_mxcd/health must answer 503 within a bound instead
of hanging, and service must come back by itself after SIGCONT. The test freezes a PostgreSQL
server of its own, never the session's shared one."""

import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

import postgres_service
from harness import ALICE, DATABASE, STORE, assert_error, media_id_of, wait_until

pytestmark = pytest.mark.skipif(STORE != "local" or DATABASE != "sqlite",
                                reason="runs once, with a PostgreSQL server of its own")

# Every database timeout of the instance under test.
TIMEOUT = "1s"
# A generous multiple of it for any answer while the database is frozen (ASan is slow, and a
# request may queue behind others that each wait out a timeout); the old code never answered.
BOUND = 10.0
STREAMS = 8


@pytest.fixture
def own_postgres():
    server = postgres_service.PostgresService()
    try:
        yield server
    finally:
        server.stop()


def process_state(pid):
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2:].split()[0]


def children_of(parent):
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        if int(stat[stat.rindex(")") + 2:].split()[1]) == parent:
            children.append(int(entry.name))
    return children


@contextmanager
def frozen(server):
    """The postmaster, then every backend and helper it started, stopped with SIGSTOP (the
    postmaster first, so that it forks no new ones); all continued with SIGCONT on the way
    out, whatever happened."""
    postmaster = int((server.dir / "data" / "postmaster.pid").read_text().split()[0])
    stopped = []
    try:
        os.kill(postmaster, signal.SIGSTOP)
        stopped.append(postmaster)
        assert wait_until(lambda: process_state(postmaster) == "T", timeout=5)
        for pid in children_of(postmaster):
            try:
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            except ProcessLookupError:
                pass
        yield
    finally:
        for pid in reversed(stopped):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


def timed(call):
    """(answer or the exception raised, seconds taken)."""
    started = time.monotonic()
    try:
        answer = call()
    except requests.RequestException as e:
        answer = e
    return answer, time.monotonic() - started


def assert_answered_in_time(answer, seconds, what):
    assert not isinstance(answer, Exception), f"{what}: no answer within {BOUND} s ({answer})"
    assert seconds < BOUND, f"{what}: answered after {seconds:.1f} s"


def assert_unhealthy_in_time(health):
    answer, seconds = timed(health)
    assert_answered_in_time(answer, seconds, "/_mxcd/health")
    assert answer.status_code == 503, answer.text
    assert answer.json()["status"] == "unavailable"


def test_frozen_postgres_answers_503_in_time_and_recovers(start_mxcd, own_postgres):
    database = own_postgres.database_config(own_postgres.new_database())
    database["postgres"].update({"connect_timeout": TIMEOUT, "statement_timeout": TIMEOUT,
                                 "acquire_timeout": TIMEOUT, "network_timeout": "2s"})
    database["health_timeout"] = TIMEOUT
    server = start_mxcd({"database": database})
    upload_url = server.url + "/_matrix/media/v3/upload"

    def upload(data):
        return requests.post(upload_url, data=data, headers=ALICE, timeout=BOUND)

    def download(media_id):
        return server.download(media_id, timeout=BOUND)

    def health():
        return server.get("/_mxcd/health", timeout=BOUND)

    # Media whose records the restarted instance has in no cache: each download of one of them
    # before it succeeds asks the database.
    stored = {}
    for i in range(12):
        data = os.urandom(2000) + bytes([i])
        stored[server.upload_id(data)] = data
    server.restart()
    uncached = list(stored)

    # Upload streams before, during and after the freeze: every answer in time, and either a
    # success or a clean 503.
    stop = threading.Event()
    answers = [[] for _ in range(STREAMS)]

    def stream(number):
        while not stop.is_set():
            answer, seconds = timed(lambda: upload(os.urandom(64 * 1024)))
            answers[number].append((answer, seconds))

    streams = [threading.Thread(target=stream, args=(n,)) for n in range(STREAMS)]
    for t in streams:
        t.start()
    try:
        time.sleep(1)
        with frozen(own_postgres):
            # At once, while the statements in flight still wait: the health check's own
            # deadline answers.
            assert_unhealthy_in_time(health)
            # Long enough for every statement in flight at the freeze to time out.
            time.sleep(3)
            for media_id in uncached[:4]:
                answer, seconds = timed(lambda: download(media_id))
                assert_answered_in_time(answer, seconds, "download of an uncached record")
                assert_error(answer, 503, "M_UNKNOWN")
            answer, seconds = timed(lambda: upload(b"during the freeze"))
            assert_answered_in_time(answer, seconds, "upload")
            assert_error(answer, 503, "M_UNKNOWN")
            assert_unhealthy_in_time(health)
            frozen_answers = sum(len(a) for a in answers)
            time.sleep(2)
            # The streams go on getting answers while the database stays frozen.
            assert sum(len(a) for a in answers) > frozen_answers
        # Back without a restart.
        assert wait_until(lambda: upload(b"after the freeze").status_code == 200,
                          timeout=3 * BOUND), server.log()
        assert wait_until(lambda: health().status_code == 200, timeout=BOUND), server.log()
        for media_id in uncached:
            answer = download(media_id)
            assert answer.status_code == 200, answer.text
            assert answer.content == stored[media_id]
        time.sleep(2)
    finally:
        stop.set()
        for t in streams:
            t.join(2 * BOUND)

    assert server.running(), server.log()
    for number, stream_answers in enumerate(answers):
        assert stream_answers, f"stream {number} got no answer"
        for answer, seconds in stream_answers:
            assert_answered_in_time(answer, seconds, f"stream {number}")
            if answer.status_code != 200:
                assert_error(answer, 503, "M_UNKNOWN")
        last, _ = stream_answers[-1]
        assert last.status_code == 200, last.text  # recovered
        media_id_of(last)
    assert any(a.status_code == 503 for s in answers for a, _ in s), "the freeze went unnoticed"
