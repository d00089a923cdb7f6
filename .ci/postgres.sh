# A throwaway PostgreSQL server for the store tests. Source this file, then call
# `postgres_start` (exports PHOENIX_TEST_POSTGRES_URL) and, on exit, `postgres_stop`.
#
# The server listens on 127.0.0.1 only, on a free port, with its data directory and unix
# socket in a fresh temporary directory. When the server binaries are missing, the Debian
# package `postgresql` is installed. initdb refuses to run as root, so as root the server runs
# as the unprivileged `postgres` user.
#
# PHOENIX_POSTGRES_DURABLE=1 keeps fsync on (for benchmarks); by default the throwaway server
# skips fsync, as its data is thrown away anyway.

postgres_dir=""
postgres_bin=""
postgres_as=()

# Runs a server program as the server's user, from its directory (the caller's working
# directory may be closed to that user).
postgres_run() {
  (cd "$postgres_dir" && "${postgres_as[@]}" "$@")
}

# The directory of the newest installed server binaries, if any.
postgres_find_bin() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      printf '%s\n' "$dir"
      return 0
    fi
  done
  return 1
}

postgres_install() {
  printf 'PostgreSQL server binaries not found; installing the Debian package postgresql\n'
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
}

# A TCP port on 127.0.0.1 that nothing listens on.
postgres_free_port() {
  local port tries
  for tries in $(seq 1 50); do
    port=$(( 20000 + RANDOM % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      printf '%s\n' "$port"
      return 0
    fi
  done
  return 1
}

postgres_start() {
  postgres_bin=$(postgres_find_bin) || { postgres_install && postgres_bin=$(postgres_find_bin); } || {
    printf 'cannot find or install the PostgreSQL server binaries\n' >&2
    return 1
  }
  postgres_dir=$(mktemp -d "${TMPDIR:-/tmp}/phoenix-postgres.XXXXXX")
  chmod 755 "$postgres_dir"
  postgres_as=()
  if [ "$(id -u)" = 0 ]; then
    id -u postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    chown postgres: "$postgres_dir"
    postgres_as=(runuser -u postgres --)
  fi

  local fsync=off
  [ "${PHOENIX_POSTGRES_DURABLE:-0}" = 1 ] && fsync=on
  postgres_run "$postgres_bin/initdb" --pgdata="$postgres_dir/data" --username=phoenix \
    --auth=trust --encoding=UTF8 --locale=C --no-sync >"$postgres_dir/initdb.log" 2>&1 || {
    cat "$postgres_dir/initdb.log" >&2
    return 1
  }

  local port attempt
  for attempt in 1 2 3; do
    port=$(postgres_free_port) || return 1
    if postgres_run "$postgres_bin/pg_ctl" --pgdata="$postgres_dir/data" \
      --log="$postgres_dir/server.log" --wait --timeout=60 \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$postgres_dir -c max_connections=200 -c fsync=$fsync" \
      start >/dev/null; then
      break
    fi
    port=""
  done
  if [ -z "$port" ]; then
    cat "$postgres_dir/server.log" >&2
    return 1
  fi
  "$postgres_bin/createdb" --host=127.0.0.1 --port="$port" --username=phoenix phoenix_test
  export PHOENIX_TEST_POSTGRES_URL="postgres://phoenix@127.0.0.1:$port/phoenix_test"
  printf 'PostgreSQL %s on 127.0.0.1:%s (data in %s)\n' \
    "$("$postgres_bin/postgres" --version | awk '{print $3}')" "$port" "$postgres_dir"
}

# Stops the server and removes its directory; does nothing when none was started.
postgres_stop() {
  if [ -n "$postgres_dir" ] && [ -d "$postgres_dir" ]; then
    if [ -f "$postgres_dir/data/postmaster.pid" ]; then
      postgres_run "$postgres_bin/pg_ctl" --pgdata="$postgres_dir/data" --mode=immediate \
        --wait stop >/dev/null 2>&1 || true
    fi
    rm -rf "$postgres_dir"
  fi
  postgres_dir=""
  unset PHOENIX_TEST_POSTGRES_URL
}
