#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the tests and prints its URL on stdout (nothing else):
#
#   export TEST_POSTGRES_URL="$(scripts/start-test-postgres.sh)"
#
# The cluster lives in a fresh temporary directory, listens on 127.0.0.1:$PGPORT (default 55432)
# and on a unix socket in that directory, trusts local connections (it is for tests only) and runs
# fsync=off. It has one database, `referrals_test`. When run as root, the server runs as the
# `postgres` user (initdb and postgres refuse to run as root). Stop it with:
#
#   scripts/start-test-postgres.sh --stop
#
# Needs the PostgreSQL server binaries: Debian's `postgresql` package (/usr/lib/postgresql/*/bin),
# or PG_BIN pointing at them.
set -euo pipefail

PORT="${PGPORT:-55432}"
DB="${TEST_POSTGRES_DB:-referrals_test}"
STATE_FILE="${TMPDIR:-/tmp}/fhir-test-postgres-${PORT}.dir"

if [[ -z "${PG_BIN:-}" ]]; then
  PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -z "$PG_BIN" ]] && command -v pg_ctl >/dev/null; then
    PG_BIN="$(dirname "$(command -v pg_ctl)")"
  fi
fi
if [[ -z "$PG_BIN" || ! -x "$PG_BIN/pg_ctl" ]]; then
  echo "start-test-postgres: PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BIN)" >&2
  exit 1
fi

# Runs a command as the cluster's owner: ourselves, or `postgres` when we are root.
as_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u "${PG_OS_USER:-postgres}" -- "$@"
  else
    "$@"
  fi
}

if [[ "${1:-}" == "--stop" ]]; then
  if [[ -f "$STATE_FILE" ]]; then
    dir="$(cat "$STATE_FILE")"
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >&2 || true
    rm -rf "$dir" "$STATE_FILE"
  fi
  exit 0
fi

url="postgres://postgres@127.0.0.1:${PORT}/${DB}"

# Already running (e.g. started earlier in this shell session)? Reuse it.
if [[ -f "$STATE_FILE" ]] && as_owner "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
  echo "$url"
  exit 0
fi

dir="$(mktemp -d "${TMPDIR:-/tmp}/fhir-test-postgres.XXXXXX")"
chmod 755 "$dir"
if [[ "$(id -u)" == 0 ]]; then
  chown "${PG_OS_USER:-postgres}" "$dir"
fi
echo "$dir" >"$STATE_FILE"

as_owner "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
  {
    cat "$dir/initdb.log" >&2
    exit 1
  }
# Enough connections for parallel test workers, each app holding a small pool.
as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-p $PORT -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=128MB" \
  start >&2 ||
  {
    cat "$dir/server.log" >&2
    exit 1
  }
as_owner "$PG_BIN/createdb" -h "$dir" -p "$PORT" -U postgres "$DB"

echo "$url"
