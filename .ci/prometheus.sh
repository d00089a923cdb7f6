# Prometheus for the operator's query tests (phoenix-operator/tests/prometheus.rs). Source
# this file, then call `prometheus_setup`: it finds the `prometheus` binary, installing the
# Debian package `prometheus` when it is missing, and exports PHOENIX_PROMETHEUS (the binary)
# and PHOENIX_REQUIRE_PROMETHEUS=1, so that the tests fail instead of being skipped should the
# binary get lost. The tests start and stop their own servers on 127.0.0.1; nothing runs here.
#
# Installing needs root: as root apt-get runs directly, otherwise through password-less sudo;
# without either this fails with the command to run. The package's own service is kept from
# starting during the install (policy-rc.d, as .ci/postgres.sh does).

# The prometheus binary, if one is installed.
prometheus_find() {
  local bin
  for bin in "$(command -v prometheus 2>/dev/null || true)" /usr/bin/prometheus; do
    if [ -n "$bin" ] && [ -x "$bin" ]; then
      printf '%s\n' "$bin"
      return 0
    fi
  done
  return 1
}

prometheus_install() {
  local as=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      as=(sudo -n)
    else
      printf 'prometheus is not installed and installing it needs root: run CI as root, allow\n' >&2
      printf 'password-less sudo, or run: apt-get install prometheus\n' >&2
      return 1
    fi
  fi
  command -v apt-get >/dev/null 2>&1 || {
    printf 'prometheus is not installed and there is no apt-get to install it with\n' >&2
    return 1
  }
  printf 'prometheus not found; installing the Debian package prometheus\n'
  local policy=/usr/sbin/policy-rc.d own_policy=0 status=0
  if [ ! -e "$policy" ] &&
    printf '#!/bin/sh\n# Written by .ci/prometheus.sh for the duration of an install.\nexit 101\n' |
    "${as[@]}" tee "$policy" >/dev/null 2>&1; then
    own_policy=1
    "${as[@]}" chmod 755 "$policy"
  fi
  "${as[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    "${as[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends prometheus >/dev/null ||
    status=$?
  if [ "$own_policy" = 1 ]; then "${as[@]}" rm -f "$policy"; fi
  return "$status"
}

prometheus_setup() {
  local bin
  bin=$(prometheus_find) || { prometheus_install && bin=$(prometheus_find); } || {
    printf 'cannot find or install the prometheus binary\n' >&2
    return 1
  }
  "$bin" --version 2>&1 | head -n 1
  export PHOENIX_PROMETHEUS="$bin"
  export PHOENIX_REQUIRE_PROMETHEUS=1
}
