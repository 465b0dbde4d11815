"""The PostgreSQL server of the test session: one PostgreSQL 15
(tests/services/postgres-server.sh), started on first use and stopped when the session ends,
with a fresh database for every mxcd instance that asks."""

import atexit
import functools
import itertools
import subprocess
import tempfile
from contextlib import closing
from pathlib import Path

import psycopg2

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "services" / "postgres-server.sh"

_database_numbers = itertools.count(1)


class PostgresService:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="mxcd-pg-"))
        self.host, port, self.user = self._script("start").split()[-3:]
        self.port = int(port)

    def _script(self, command):
        # stderr is left to pytest, which shows it with the test that failed.
        return subprocess.run([str(SCRIPT), command, str(self.dir)], check=True,
                              stdout=subprocess.PIPE, text=True, timeout=60).stdout

    def stop(self):
        subprocess.run([str(SCRIPT), "stop", str(self.dir)], check=False, timeout=60)

    def restart(self):
        """A fast restart on the same port and data: mxcd's connections are cut."""
        self._script("restart")

    def stop_server(self):
        """Stops the server until start_server(), keeping its data and port."""
        self._script("stop-server")

    def start_server(self):
        self._script("start-server")

    def connect(self, dbname="postgres", read_only=False):
        options = "-c default_transaction_read_only=on" if read_only else None
        connection = psycopg2.connect(host=self.host, port=self.port, user=self.user,
                                      dbname=dbname, connect_timeout=10, options=options)
        connection.autocommit = True
        return connection

    def new_database(self):
        name = f"mxcd_test_{next(_database_numbers)}"
        # FILE_COPY copies the template's files instead of writing them all to the WAL (the
        # default): faster, and its checkpoint costs nothing with fsync off.
        with closing(self.connect()) as connection:
            connection.cursor().execute(f"CREATE DATABASE {name} STRATEGY = FILE_COPY")
        return name

    def database_config(self, name):
        """The database: section of mxcd's config for the database `name`."""
        return {"postgres": {"host": self.host, "port": self.port, "dbname": name,
                             "user": self.user, "pool_size": 4}}

    def execute(self, dbname, sql, params=(), read_only=False):
        """Runs one statement written for Python's sqlite3 (? placeholders) in dbname: its rows
        as a list of tuples, or None for a statement that returns none. psycopg2 takes %s, and
        a literal % must be doubled; a ? inside a string literal is not supported."""
        sql = sql.replace("%", "%%").replace("?", "%s")
        with closing(self.connect(dbname, read_only)) as connection:
            cursor = connection.cursor()
            cursor.execute(sql, tuple(params))
            return cursor.fetchall() if cursor.description else None


@functools.cache
def service():
    server = PostgresService()
    atexit.register(server.stop)
    return server
