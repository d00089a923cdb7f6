# A throwaway PostgreSQL server for the store tests. Source this file, then call
# `postgres_start` (exports PHOENIX_TEST_POSTGRES_URL, and PHOENIX_REQUIRE_POSTGRES=1 so that
# the PostgreSQL tests fail instead of being skipped should the URL get lost) and, on exit,
# `postgres_stop`.
#
# The server listens on 127.0.0.1 only, on a free port, with its data directory and unix
# socket in a fresh temporary directory. When the server binaries are missing, the Debian
# package `postgresql` is installed, with services kept from starting during the install;
# any cluster the package creates (Debian's `main`, on port 5432) is then stopped and set to
# start manually only, so that only the throwaway server runs. initdb refuses to run as root,
# so as root the server runs as the unprivileged `postgres` user.
#
# PHOENIX_POSTGRES_DURABLE=1 keeps fsync on (for benchmarks); by default the throwaway server
# skips fsync, as its data is thrown away anyway.

postgres_dir=""
postgres_bin=""
postgres_as=()
# PHOENIX_REQUIRE_POSTGRES as it was before postgres_start, restored by postgres_stop.
postgres_saved_require=""
postgres_started=0

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
  # Keep the package's services from starting: invoke-rc.d asks policy-rc.d, and 101 means
  # "not allowed". An existing policy is left alone (it decides), ours is removed afterwards.
  local policy=/usr/sbin/policy-rc.d own_policy=0 status=0
  if [ ! -e "$policy" ] &&
    printf '#!/bin/sh\n# Written by .ci/postgres.sh for the duration of an install.\nexit 101\n' \
      >"$policy" 2>/dev/null; then
    own_policy=1
    chmod 755 "$policy"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null ||
    status=$?
  if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi
  postgres_quiet_package_clusters
  return "$status"
}

# Stops every cluster the Debian package manages (the install creates `main` on port 5432
# and may have started it) and sets it to start manually only, not at boot. Only called right
# after this script installed the package, so these clusters are the install's own.
postgres_quiet_package_clusters() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 0
  local version cluster _rest start_conf
  while read -r version cluster _rest; do
    [ -n "$version" ] && [ -n "$cluster" ] || continue
    pg_ctlcluster "$version" "$cluster" stop >/dev/null 2>&1 || true
    # The same file and rule as postgresql-common: the first auto/manual/disabled line.
    start_conf="${PG_CLUSTER_CONF_ROOT:-/etc/postgresql}/$version/$cluster/start.conf"
    if [ -f "$start_conf" ]; then
      sed -i -E 's/^[[:space:]]*(auto|manual|disabled)\b/manual/' "$start_conf"
    fi
    printf 'stopped the package cluster %s/%s; it now starts only by hand\n' "$version" "$cluster"
  done < <(pg_lsclusters --no-header 2>/dev/null)
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
  # Settings go into the config file rather than onto pg_ctl's command line, which passes
  # through a shell: the socket directory is quoted there, so a TMPDIR with spaces works.
  local socket_dir=${postgres_dir//\'/\'\'}
  {
    printf '\n# Written by .ci/postgres.sh for a throwaway test server.\n'
    printf "listen_addresses = '127.0.0.1'\n"
    printf "unix_socket_directories = '%s'\n" "$socket_dir"
    printf 'max_connections = 200\n'
    printf 'fsync = %s\n' "$fsync"
  } >>"$postgres_dir/data/postgresql.conf"

  local port attempt
  for attempt in 1 2 3; do
    port=$(postgres_free_port) || return 1
    if postgres_run "$postgres_bin/pg_ctl" --pgdata="$postgres_dir/data" \
      --log="$postgres_dir/server.log" --wait --timeout=60 \
      -o "-c port=$port" \
      start >/dev/null; then
      break
    fi
    port=""
  done
  if [ -z "$port" ]; then
    cat "$postgres_dir/server.log" >&2
    return 1
  fi
  "$postgres_bin/createdb" --host=127.0.0.1 --port="$port" --username=phoenix phoenix_test || return 1
  export PHOENIX_TEST_POSTGRES_URL="postgres://phoenix@127.0.0.1:$port/phoenix_test"
  # From here on a missing URL is a failure, not a skip.
  if [ "$postgres_started" = 0 ]; then
    postgres_saved_require=${PHOENIX_REQUIRE_POSTGRES-__unset__}
  fi
  postgres_started=1
  export PHOENIX_REQUIRE_POSTGRES=1
  printf 'PostgreSQL %s on 127.0.0.1:%s (data in %s)\n' \
    "$("$postgres_bin/postgres" --version | awk '{print $3}')" "$port" "$postgres_dir"
}

# Whether the server of our data directory still runs: the pid in postmaster.pid is alive and
# is a postgres process (a stale file's pid may belong to something else by now).
postgres_running_pid() {
  local pid_file="$postgres_dir/data/postmaster.pid" pid
  [ -f "$pid_file" ] || return 1
  pid=$(head -n 1 "$pid_file" 2>/dev/null)
  case "$pid" in '' | *[!0-9]*) return 1 ;; esac
  kill -0 "$pid" 2>/dev/null || [ -d "/proc/$pid" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ] || return 1
  printf '%s\n' "$pid"
}

# Stops the server and removes its directory; does nothing when none was started. The
# directory is removed only once the server is known to be gone: `pg_ctl stop`, then SIGKILL
# to the postmaster named in postmaster.pid; if even that fails, the directory is kept, its
# path printed, and the status is 1.
postgres_stop() {
  local status=0 pid tries
  if [ -n "$postgres_dir" ] && [ -d "$postgres_dir" ]; then
    if [ -f "$postgres_dir/data/postmaster.pid" ]; then
      postgres_run "$postgres_bin/pg_ctl" --pgdata="$postgres_dir/data" --mode=immediate \
        --wait --timeout=30 stop >/dev/null 2>&1 || true
    fi
    if pid=$(postgres_running_pid); then
      printf 'pg_ctl could not stop the PostgreSQL server (pid %s); killing it\n' "$pid" >&2
      kill -KILL "$pid" 2>/dev/null || true
      for tries in $(seq 1 50); do
        postgres_running_pid >/dev/null || break
        sleep 0.1
      done
    fi
    if postgres_running_pid >/dev/null; then
      printf 'the PostgreSQL server in %s is still running; its directory is kept\n' \
        "$postgres_dir" >&2
      status=1
    else
      rm -rf "$postgres_dir"
    fi
  fi
  if [ "$status" = 0 ]; then
    postgres_dir=""
  fi
  unset PHOENIX_TEST_POSTGRES_URL
  if [ "$postgres_started" = 1 ]; then
    if [ "$postgres_saved_require" = __unset__ ]; then
      unset PHOENIX_REQUIRE_POSTGRES
    else
      export PHOENIX_REQUIRE_POSTGRES="$postgres_saved_require"
    fi
    postgres_started=0
  fi
  return "$status"
}
