#!/usr/bin/env bash
# Starts throwaway ClickHouse, Redis and Mosquitto servers on free ports,
# runs every test with -race against them, and stops them. It says which
# phase it is in, and while a long one runs it says so once a minute; it
# ends with go test's lines per package and exits non-zero if any failed.
# TEST_PKGS (default ./...) and TEST_RUN (go test -run) narrow it, as
# make screenshots does.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
work=$(mktemp -d -t ioc-test-XXXXXX)
services="" # the dev-services tool, once it has started the servers
bg=""       # the command running in the background, if any

stop_services() {
  if [ -n "$services" ]; then
    echo "==> Stopping ClickHouse, Redis and Mosquitto"
    "$services" down --dir "$work/services" >/dev/null 2>&1 || true
    services=""
  fi
}
cleanup() {
  if [ -n "$bg" ] && kill -0 "$bg" 2>/dev/null; then
    kill "$bg" 2>/dev/null || true
  fi
  stop_services
  rm -rf "$work"
}
trap cleanup EXIT

# elapsed prints the seconds since $1 as 1m05s.
elapsed() {
  local s=$((SECONDS - $1))
  printf '%dm%02ds' $((s / 60)) $((s % 60))
}

# background runs a command in the background and waits for it, saying once
# a minute that WHAT is still going; it returns the command's status.
background() {
  local what=$1 from=$SECONDS next=60 status=0
  shift
  "$@" &
  bg=$!
  while kill -0 "$bg" 2>/dev/null; do
    sleep 1
    if [ $((SECONDS - from)) -ge "$next" ]; then
      echo "    ... $what ($(elapsed "$from"))"
      next=$((next + 60))
    fi
  done
  wait "$bg" || status=$?
  bg=""
  return "$status"
}

if [ -z "${IOC_TEST_CLICKHOUSE_ADDR:-}" ] || [ -z "${IOC_TEST_REDIS_ADDR:-}" ] || [ -z "${IOC_TEST_MQTT_URL:-}" ]; then
  echo "==> Building the dev-services tool (cmd/iocdev)"
  go build -o "$work/iocdev" ./cmd/iocdev
  echo "==> Starting ClickHouse, Redis and Mosquitto on free ports"
  services="$work/iocdev"
  background "starting the servers" bash -c '"$1" up --dir "$2" --prefix IOC_TEST_ >"$3"' bash "$services" "$work/services" "$work/env"
  eval "$(cat "$work/env")"
  export IOC_TEST_CLICKHOUSE_ADDR IOC_TEST_REDIS_ADDR IOC_TEST_MQTT_URL
  echo "    ClickHouse $IOC_TEST_CLICKHOUSE_ADDR, Redis $IOC_TEST_REDIS_ADDR, Mosquitto $IOC_TEST_MQTT_URL"
else
  echo "==> Using the servers of IOC_TEST_*: ClickHouse $IOC_TEST_CLICKHOUSE_ADDR, Redis $IOC_TEST_REDIS_ADDR, Mosquitto $IOC_TEST_MQTT_URL"
fi

pkgs=${TEST_PKGS:-./...}
run=()
if [ -n "${TEST_RUN:-}" ]; then
  run=(-run "$TEST_RUN")
fi

echo "==> go vet $pkgs"
background "vetting" go vet $pkgs

# Compiling every package and test binary with the race detector is the
# slow part of a first run; doing it apart lets the screen say so, and the
# tests then start from Go's build cache.
echo "==> Compiling the tests with -race (several minutes on a first run; later runs reuse Go's build cache)"
compiled=$SECONDS
if background "compiling" bash -c 'go test -race -count=1 -run "^$" $2 >"$1" 2>&1' bash "$work/compile.log" "$pkgs"; then
  echo "    compiled in $(elapsed "$compiled")"
else
  echo "    some packages do not compile; their errors come with the test results below"
fi

echo "==> Running the tests (go test -race ${run[*]} $pkgs, at most 40 minutes a package)"
status=0
background "tests running" bash -c 'set -o pipefail; log=$1; shift; go test -race -count=1 -timeout 40m "$@" 2>&1 | tee "$log"' bash "$work/test.log" "${run[@]}" $pkgs || status=$?

# Stop the servers now, so that go test's lines per package end the output.
stop_services
echo "==> Done in $(elapsed "$started"); go test per package:"
grep -E '^(ok|FAIL|\?|--- FAIL:)[[:space:]]|^FAIL$' "$work/test.log" 2>/dev/null || true
exit "$status"
