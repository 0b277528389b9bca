#!/usr/bin/env bash
# Quickstart, the full story on the embedded default repository (/var/lib/pgha, or
# PGHA_REPO): a throwaway PostgreSQL cluster archives its WAL with `pgha wal-push` and is
# backed up with `pgha backup`; a table is dropped by mistake; one `pgha restore` brings
# the cluster back to the second before the drop, and the table is there again.
# Everything runs in a temporary directory that is removed at the end, and the cluster's
# objects (its archived WAL and backup) are deleted from the repository with
# `pgha cluster delete`.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
pg_bin="${PGHA_PG_BIN:-/usr/lib/postgresql/15/bin}"
repo="${PGHA_REPO:-/var/lib/pgha}"
cluster="quickstart-$(date +%Y%m%d-%H%M%S)"
node_bin="$(command -v node)"

if [ ! -x "$pg_bin/initdb" ]; then
  echo "quickstart: PostgreSQL server binaries not found in $pg_bin" >&2
  echo "HINT: apt-get install postgresql-15, or set PGHA_PG_BIN to the bin directory" >&2
  exit 2
fi
[ -d "$here/node_modules" ] || (cd "$here" && npm ci)
(cd "$here" && npm run --silent build)

# PostgreSQL refuses to run as root: the server, archive_command, backup and restore run
# as postgres (as they would in production).
as_pg=()
if [ "$(id -u)" = 0 ]; then
  as_pg=(runuser -u postgres --)
  if [ "$repo" = /var/lib/pgha ] && [ ! -d "$repo" ]; then install -d -o postgres -g postgres -m 750 "$repo"; fi
fi
work="$(mktemp -d /tmp/pgha-quickstart-XXXXXX)"
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres "$work"
cleanup() {
  for d in data restored; do "${as_pg[@]}" "$pg_bin/pg_ctl" stop -D "$work/$d" -m immediate >/dev/null 2>&1 || true; done
  # The restore prefetcher wal-fetch started outlives the server (until --idle-exit): stop
  # it by the PID its spool records, so it writes nothing into the directory being removed.
  for pidfile in "$work"/*/pg_wal/.pgha/*/pid; do
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile" 2>/dev/null)" || continue
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  rm -rf "$work"
}
trap cleanup EXIT

export PGHA_REPO="$repo" PGHA_CLUSTER="$cluster" PGHOST="$work" PGUSER=postgres PGDATABASE=postgres PGHA_LOG_LEVEL=warn
pgha=("${as_pg[@]}" env PGHA_NODE="$node_bin" "$here/bin/pgha")
psql=("${as_pg[@]}" "$pg_bin/psql" -At -v ON_ERROR_STOP=1)

echo "== a throwaway cluster in $work/data, archiving into $repo (cluster $cluster)"
"${as_pg[@]}" "$pg_bin/initdb" -D "$work/data" -U postgres --auth=trust --data-checksums >/dev/null
cat >>"$work/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$work'
archive_mode = on
archive_command = 'PGHA_NODE="$node_bin" "$here/bin/pgha" wal-push %p'
CONF
"${as_pg[@]}" env PGHA_REPO="$repo" PGHA_CLUSTER="$cluster" "$pg_bin/pg_ctl" start -w -D "$work/data" -l "$work/server.log" >/dev/null

echo "== orders are taken, and a base backup is made"
"${psql[@]}" -c "CREATE TABLE orders AS SELECT g AS id, 'order ' || g AS item FROM generate_series(1, 1000) g" >/dev/null
backup_id="$("${pgha[@]}" backup --fast --label quickstart)"
echo "backup $backup_id"
"${psql[@]}" -c "INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1001, 1500) g" >/dev/null
sleep 1
before_drop="$("${psql[@]}" -c "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")"
sleep 1

echo "== at $before_drop plus a second, someone drops the table"
"${psql[@]}" -c "DROP TABLE orders"
segment="$("${psql[@]}" -c "SELECT pg_walfile_name(pg_switch_wal())")"
for _ in $(seq 1 200); do
  [[ "$("${psql[@]}" -c "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")" < "$segment" ]] || break
  sleep 0.1
done
"${psql[@]}" -c "SELECT count(*) FROM orders" 2>&1 | sed 's/^/  /' || true
"${as_pg[@]}" "$pg_bin/pg_ctl" stop -D "$work/data" -m fast >/dev/null

echo "== one command restores to the second before the drop"
echo "\$ pgha restore --pgdata $work/restored --target-time $before_drop --target-action promote --no-archive"
"${pgha[@]}" restore --pgdata "$work/restored" --target-time "$before_drop" --target-action promote --no-archive | sed 's/^/  /'
"${as_pg[@]}" "$pg_bin/pg_ctl" start -w -D "$work/restored" -l "$work/restored.log" >/dev/null
for _ in $(seq 1 200); do
  [ "$("${psql[@]}" -c "SELECT pg_is_in_recovery()" 2>/dev/null)" = f ] && break
  sleep 0.1
done
echo "== the table is back:"
"${psql[@]}" -c "SELECT count(*) || ' orders, the newest ' || max(id) FROM orders" | sed 's/^/  /'

echo "== the quickstart's cluster is deleted from the repository"
"${as_pg[@]}" "$pg_bin/pg_ctl" stop -D "$work/restored" -m fast >/dev/null
echo "\$ pgha cluster delete $cluster --confirm"
"${pgha[@]}" cluster delete "$cluster" --confirm 2>&1 | sed 's/^/  /'
if "${pgha[@]}" cluster list | grep -q "^$cluster "; then
  echo "quickstart: cluster $cluster is still in $repo" >&2
  exit 1
fi
echo "quickstart OK"
