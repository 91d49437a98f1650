# Sourced by .ci/run (and usable by hand: `. .ci/postgres.sh`): a throwaway PostgreSQL server on
# loopback for the shared-lab-database tests, from Debian's postgresql package. Exports
# RIG_TEST_PG_URL and stops the server when the sourcing shell exits. Any failure is fatal: CI must
# not pass by silently skipping the PostgreSQL tests. A given RIG_TEST_PG_URL is used as it is.

rig_pg_start() {
  if [ -n "${RIG_TEST_PG_URL:-}" ]; then
    echo "PostgreSQL: using the given RIG_TEST_PG_URL" >&2
    return 0
  fi
  local root=0
  [ "$(id -u)" = "0" ] && root=1
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    if [ "$root" != "1" ] || ! command -v apt-get >/dev/null 2>&1; then
      echo "PostgreSQL server binaries are missing and cannot be installed here (needs root and apt-get);" \
           "install Debian's postgresql or set RIG_TEST_PG_URL" >&2
      return 1
    fi
    echo "PostgreSQL: installing Debian's postgresql" >&2
    timeout 600 apt-get update -qq || return 1
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq postgresql >/dev/null || return 1
  fi
  RIG_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  RIG_PG_DIR=$(mktemp -d /tmp/rig-pg.XXXXXX) || return 1
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') \
    || return 1
  if [ "$root" = "1" ]; then
    chown postgres "$RIG_PG_DIR" || return 1
    RIG_PG_AS=(runuser -u postgres --)
  else
    RIG_PG_AS=()
  fi
  "${RIG_PG_AS[@]}" "$RIG_PG_BIN/initdb" -D "$RIG_PG_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null || return 1
  "${RIG_PG_AS[@]}" "$RIG_PG_BIN/pg_ctl" -D "$RIG_PG_DIR/data" -l "$RIG_PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $RIG_PG_DIR -c fsync=off" start >/dev/null \
    || { cat "$RIG_PG_DIR/server.log" >&2; return 1; }
  trap rig_pg_stop EXIT
  "${RIG_PG_AS[@]}" "$RIG_PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres rig_test || return 1
  export RIG_TEST_PG_URL="postgresql+psycopg://postgres@127.0.0.1:$port/rig_test"
  echo "PostgreSQL: $("$RIG_PG_BIN/postgres" --version) on 127.0.0.1:$port (RIG_TEST_PG_URL)" >&2
}

rig_pg_stop() {
  if [ -n "${RIG_PG_DIR:-}" ] && [ -d "$RIG_PG_DIR" ]; then
    "${RIG_PG_AS[@]}" "$RIG_PG_BIN/pg_ctl" -D "$RIG_PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$RIG_PG_DIR"
  fi
}
