#!/usr/bin/env bash
# Builds the pinned collector distribution (phoenix-otelcol) into a cache outside the clone and
# prints the binary's path on stdout. Idempotent: the cache key is a hash of this module's
# sources and the Go version, so a second run with nothing changed builds nothing and prints the
# same path. Needs only Go and the Go module registry.
#
#   PHOENIX_OTELCOL=$(tools/otelcol/build.sh)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${PHOENIX_OTELCOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/phoenix/otelcol}"

command -v go >/dev/null 2>&1 || {
  printf 'go is not installed: the pinned collector is built from source with Go\n' >&2
  exit 1
}

key=$( (cd "$here" && cat go.mod go.sum ./*.go && go version) | sha256sum | cut -c1-16)
bin="$cache/$key/phoenix-otelcol"
if [ -x "$bin" ]; then
  printf '%s\n' "$bin"
  exit 0
fi

mkdir -p "$cache/$key"
printf 'building the pinned collector into %s (a few minutes the first time)\n' "$bin" >&2
tmp="$bin.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(cd "$here" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -o "$tmp" .) >&2
mv "$tmp" "$bin"
printf '%s\n' "$bin"
