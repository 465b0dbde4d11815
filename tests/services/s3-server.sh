#!/usr/bin/env bash
# A throwaway single-node Ceph RADOS Gateway for the S3 tests, on loopback only:
# one monitor, one memstore OSD (objects live in RAM), one radosgw, cephx off.
#   tests/services/s3-server.sh start DIR   prints "endpoint access_key secret_key" when ready
#   tests/services/s3-server.sh stop DIR    stops the daemons by their PID files
# Everything lives under DIR; nothing outside it is touched. Starts in about 3 s.
# Path-style requests go to http://127.0.0.1:PORT; virtual-hosted ones to <bucket>.s3.localhost.
set -euo pipefail

command=${1:?usage: s3-server.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: s3-server.sh start|stop DIR}")

stop() {
  for pidfile in "$dir"/run/*.pid; do
    [[ -f "$pidfile" ]] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
}

if [[ "$command" == stop ]]; then
  stop
  exit 0
fi
[[ "$command" == start ]] || { echo "unknown command $command" >&2; exit 64; }

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mon_v2=$(free_port); mon_v1=$(free_port); rgw_port=$(free_port)
access_key=mxcdtestaccesskey
secret_key=mxcdtestsecretkey0123456789
fsid=$(uuidgen)

rm -rf "$dir"
mkdir -p "$dir"/{run,log,mon,osd}
conf="$dir/ceph.conf"
cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
run dir = $dir/run
pid file = $dir/run/\$name.pid
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
keyring = $dir/keyring
mon data = $dir/mon
osd data = $dir/osd
osd objectstore = memstore
memstore device bytes = 8589934592
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon max pg per osd = 1000
paxos propose interval = 0.01
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 1
mon data avail crit = 0

[client.rgw.test]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw dns name = s3.localhost
rgw gc obj min wait = 60
rgw gc processor period = 60
# SSE-C is tested over plain http on loopback.
rgw crypt require ssl = false
CONF

ceph_cli() { ceph -c "$conf" "$@"; }

monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]" \
  "$dir/monmap" >/dev/null
ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" --keyring "$dir/keyring"
ceph-mon -c "$conf" -i a 2>>"$dir/log/start.log"

# radosgw creates its pools lazily, each waiting for a monitor round: create them all at once.
pools=(.rgw.root default.rgw.log default.rgw.control default.rgw.meta default.rgw.buckets.index
       default.rgw.buckets.data default.rgw.buckets.non-ec)
for pool in "${pools[@]}"; do
  echo "osd pool create $pool 8 8"
  echo "osd pool application enable $pool rgw"
done | ceph_cli >/dev/null 2>&1

osd_uuid=$(uuidgen)
osd_id=$(ceph_cli osd new "$osd_uuid")
ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1
ceph-osd -c "$conf" -i "$osd_id" 2>>"$dir/log/start.log"
for _ in $(seq 300); do
  ceph_cli osd stat 2>/dev/null | grep -q "1 up" && break
  sleep 0.1
done

radosgw -c "$conf" -n client.rgw.test 2>>"$dir/log/start.log"
for _ in $(seq 300); do
  curl -s -o /dev/null "http://127.0.0.1:$rgw_port/" && break
  sleep 0.1
done
radosgw-admin -c "$conf" user create --uid=mxcd --display-name=mxcd \
  --access-key="$access_key" --secret="$secret_key" >/dev/null
echo "http://127.0.0.1:$rgw_port $access_key $secret_key"
