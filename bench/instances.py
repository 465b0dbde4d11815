#!/usr/bin/python3
"""Metadata on PostgreSQL versus SQLite, and several instances behind nginx, in one run:
  - warm-cache 32 KiB downloads (wrk, 64 connections, cycling through 100 media) from one
    mxcd with its records in SQLite and one with them in PostgreSQL, in alternating rounds;
  - the first download of each of those media after a restart (blob in the local cache,
    record not yet in the in-process cache: one database query), one request at a time,
    median time per request;
  - the same downloads through nginx (round robin) in front of 1, 2 and 3 instances sharing
    one PostgreSQL database and one bucket.
Every instance has the blobs in its local cache and the records in its in-process record
cache before it is measured, so the figures show what a warm download costs. Ratios matter;
absolute figures depend on the machine. Usage: bench/instances.py [rounds, default 3]"""

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import TOKEN, Mxcd, wrk  # noqa: E402
import postgres_service  # noqa: E402  (the PostgreSQL and RGW the tests use)
import s3_service  # noqa: E402
from nginx_proxy import LoadBalancer  # noqa: E402

MEDIA = 100
SIZE = 32 * 1024


def upload_media(server):
    ids = []
    for _ in range(MEDIA):
        path = server.work / "small"
        path.write_bytes(os.urandom(SIZE))
        ids.append(server.put(path)[1])
    return ids


def paths_script(work, ids, name):
    """A wrk script that cycles through the downloads of the given media."""
    paths = ",".join(json.dumps(f"/_matrix/client/v1/media/download/bench.local/{i}") for i in ids)
    script = work / name
    script.write_text(f"""local paths = {{{paths}}}
local i = 0
wrk.headers["Authorization"] = "Bearer {TOKEN}"
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
""")
    return script


def warm(url, ids, passes=1):
    """Every instance behind url serves every media once: blobs cached, records cached."""
    for _ in range(passes):
        for media_id in ids:
            r = requests.get(f"{url}/_matrix/client/v1/media/download/bench.local/{media_id}",
                             headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
            assert r.status_code == 200, r.status_code


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    work = Path(tempfile.mkdtemp(prefix="mxcd-bench-instances-"))
    s3 = s3_service.service()
    pg = postgres_service.service()
    results = {"sqlite": [], "postgres": [], 1: [], 2: [], 3: [],
               "sqlite first": [], "postgres first": []}
    servers = []
    balancers = []
    try:
        # One instance on each database.
        sqlite = Mxcd(work / "sqlite", s3.store_config(s3.new_bucket()))
        postgres = Mxcd(work / "postgres", s3.store_config(s3.new_bucket()),
                        pg.database_config(pg.new_database()))
        for server in (sqlite, postgres):
            servers.append(server)
            server.start()
        scripts = {}
        ids_of = {}
        for name, server in (("sqlite", sqlite), ("postgres", postgres)):
            ids = upload_media(server)
            warm(server.url, ids)
            scripts[name] = (server, paths_script(work, ids, f"{name}.lua"))
            ids_of[name] = ids

        # Three instances sharing one database and one bucket.
        shared_store = s3.store_config(s3.new_bucket())
        shared_database = pg.database_config(pg.new_database())
        cluster = [Mxcd(work / f"instance{n}", shared_store, shared_database) for n in range(3)]
        for server in cluster:
            servers.append(server)
            server.start()
        cluster_ids = upload_media(cluster[0])
        cluster_script = paths_script(work, cluster_ids, "cluster.lua")
        fronts = {}
        for n in (1, 2, 3):
            balancer = LoadBalancer(work / f"nginx{n}", [s.url for s in cluster[:n]])
            balancers.append(balancer)
            warm(balancer.url, cluster_ids, passes=n)
            fronts[n] = balancer.url

        for _ in range(rounds):
            for name, (server, script) in scripts.items():
                results[name].append(wrk(server.url, script=script))
                server.stop()
                server.start()  # an empty record cache; the blob cache stays on disk
                results[f"{name} first"] += [server.get(i) for i in ids_of[name]]
            for n, url in fronts.items():
                results[n].append(wrk(url, script=cluster_script))
    finally:
        for balancer in balancers:
            balancer.close()
        for server in servers:
            server.stop()

    m = {k: statistics.median(v) for k, v in results.items()}
    print("| Warm 32 KiB downloads, 100 media | requests/s | ratio |")
    print("|---|---|---|")
    print(f"| one instance, SQLite | {m['sqlite']:.0f} | 1.00x |")
    print(f"| one instance, PostgreSQL | {m['postgres']:.0f} | {m['postgres'] / m['sqlite']:.2f}x |")
    first = {k: m[f"{k} first"] * 1000 for k in ("sqlite", "postgres")}
    print(f"| first download after a restart, median ms: SQLite {first['sqlite']:.2f}, "
          f"PostgreSQL {first['postgres']:.2f} | | +{first['postgres'] - first['sqlite']:.2f} ms |")
    for n in (1, 2, 3):
        print(f"| {n} instance(s) on PostgreSQL behind nginx | {m[n]:.0f} | {m[n] / m[1]:.2f}x of 1 |")


if __name__ == "__main__":
    main()
