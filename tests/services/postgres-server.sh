#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for the tests, on loopback only, tuned for speed over durability.
#   tests/services/postgres-server.sh start DIR          prints "host port superuser" when ready
#   tests/services/postgres-server.sh stop DIR           stops it and removes DIR
#   tests/services/postgres-server.sh restart DIR        a fast restart on the same port and data
#   tests/services/postgres-server.sh stop-server DIR    stops it, keeping DIR for start-server
#   tests/services/postgres-server.sh start-server DIR   starts it again after stop-server
# The data (DIR/data), the Unix socket (DIR) and the log (DIR/postgres.log) all live under DIR;
# nothing outside it is touched, and the system's own cluster (if any) is not used. The
# superuser is mxcd, trusted without a password. Starts in 1 to 3 s.
set -euo pipefail

usage="usage: postgres-server.sh start|stop|restart|stop-server|start-server DIR"
command=${1:?$usage}
dir=$(realpath -m "${2:?$usage}")
data=$dir/data
bin=/usr/lib/postgresql/15/bin

# PostgreSQL refuses to run as root: then DIR belongs to the postgres user (created by the
# Debian package) and the server runs as that user.
as_owner=()
[[ $(id -u) -ne 0 ]] || as_owner=(runuser -u postgres --)
pg_ctl() { "${as_owner[@]}" "$bin/pg_ctl" -D "$data" -l "$dir/postgres.log" "$@"; }

# -w waits until the server accepts connections; pg_isready then checks the TCP listener the
# tests use (rather than the socket pg_ctl looks at). Prints the line the caller reads.
start_server() {
  pg_ctl -w -t 30 start >/dev/null
  port=$(sed -n 's/^port = //p' "$data/postgresql.conf")
  "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 10
  echo "127.0.0.1 $port mxcd"
}

case "$command" in
  start) ;;
  stop)
    [[ ! -f "$data/postmaster.pid" ]] || pg_ctl -w -m fast stop >/dev/null || true
    rm -rf "$dir"
    exit 0 ;;
  restart) pg_ctl -w -t 30 -m fast restart >/dev/null; exit 0 ;;
  stop-server) pg_ctl -w -m fast stop >/dev/null; exit 0 ;;
  start-server) start_server; exit 0 ;;
  *) echo "unknown command $command" >&2; exit 64 ;;
esac

# A port free now; restarts keep it, as it is written in postgresql.conf below.
port=$(/usr/bin/python3 -c \
  'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

rm -rf "$dir"
mkdir -p "$dir"
if ((${#as_owner[@]})); then
  chown postgres: "$dir"
  "${as_owner[@]}" test -x "$dir" ||
    { echo "the postgres user cannot reach $dir: is a parent directory private?" >&2; exit 1; }
fi
# --no-sync: a throwaway cluster need not reach the disk.
"${as_owner[@]}" "$bin/initdb" -D "$data" --auth=trust --username=mxcd --encoding=UTF8 \
  --locale=C --no-sync --no-instructions >"$dir/initdb.log"
# Appended settings win over initdb's. fsync, synchronous_commit and full_page_writes off lose
# data only if the machine or PostgreSQL itself crashes, which no test does (restart is a fast
# shutdown, which writes everything out); several mxcd instances each hold a pool.
cat >>"$data/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
start_server
