#!/usr/bin/env bash
# Quickstart: a throwaway PostgreSQL cluster archives its WAL with `pgha wal-push` into the
# embedded default repository (/var/lib/pgha, or PGHA_REPO), and `pgha wal-fetch` brings a
# segment back, byte-identical. The cluster is removed at the end; the archived WAL stays
# under its own cluster name in the repository.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
pg_bin="${PGHA_PG_BIN:-/usr/lib/postgresql/15/bin}"
repo="${PGHA_REPO:-/var/lib/pgha}"
cluster="quickstart-$(date +%Y%m%d-%H%M%S)"
node_bin="$(command -v node)"
pgha=("$node_bin" "$here/bin/pgha")

if [ ! -x "$pg_bin/initdb" ]; then
  echo "quickstart: PostgreSQL server binaries not found in $pg_bin" >&2
  echo "HINT: apt-get install postgresql-15, or set PGHA_PG_BIN to the bin directory" >&2
  exit 2
fi
[ -d "$here/node_modules" ] || (cd "$here" && npm ci)
(cd "$here" && npm run --silent build)

# PostgreSQL refuses to run as root: run the server (and so archive_command) as postgres.
as_server=()
if [ "$(id -u)" = 0 ]; then
  as_server=(runuser -u postgres --)
  if [ "$repo" = /var/lib/pgha ] && [ ! -d "$repo" ]; then install -d -o postgres -g postgres -m 750 "$repo"; fi
fi

work="$(mktemp -d /tmp/pgha-quickstart-XXXXXX)"
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres "$work"
cleanup() {
  "${as_server[@]}" "$pg_bin/pg_ctl" stop -D "$work/data" -m immediate >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== initdb a throwaway cluster in $work/data"
"${as_server[@]}" "$pg_bin/initdb" -D "$work/data" -U postgres --auth=trust --data-checksums >/dev/null
cat >>"$work/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$work'
archive_mode = on
archive_command = '"$node_bin" "$here/bin/pgha" wal-push --repo "$repo" --cluster $cluster %p'
CONF
"${as_server[@]}" "$pg_bin/pg_ctl" start -w -D "$work/data" -l "$work/server.log" >/dev/null
psql=("${as_server[@]}" "$pg_bin/psql" -h "$work" -U postgres -d postgres -At -v ON_ERROR_STOP=1)

echo "== write some data and switch WAL"
"${psql[@]}" -c "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 200000) g" >/dev/null
segment="$("${psql[@]}" -c "SELECT pg_walfile_name(pg_switch_wal())")"
for _ in $(seq 1 100); do
  done_wal="$("${psql[@]}" -c "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")"
  [[ "$done_wal" < "$segment" ]] || break
  sleep 0.2
done
"${psql[@]}" -c "SELECT 'archived: ' || archived_count || ', failed: ' || failed_count || ', last: ' || last_archived_wal FROM pg_stat_archiver"

echo "== fetch $segment back with pgha wal-fetch and compare"
"${pgha[@]}" wal-fetch --repo "$repo" --cluster "$cluster" "$segment" "$work/fetched"
cmp "$work/fetched" "$work/data/pg_wal/$segment"
echo "identical: $segment ($(stat -c %s "$work/fetched") bytes)"
echo "== repository $repo, cluster $cluster:"
find "$repo/v1/clusters/$cluster" -type f | sort | sed "s|^$repo/||" | head -20
echo "quickstart OK"
