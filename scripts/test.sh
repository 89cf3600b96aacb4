#!/usr/bin/env bash
# Starts throwaway ClickHouse, Redis and Mosquitto servers on free ports,
# runs every test with -race against them, and stops them. Ends with go test's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${IOC_TEST_CLICKHOUSE_ADDR:-}" ] || [ -z "${IOC_TEST_REDIS_ADDR:-}" ] || [ -z "${IOC_TEST_MQTT_URL:-}" ]; then
  dir=$(mktemp -d -t ioc-test-XXXXXX)
  go build -o "$dir/iocdev" ./cmd/iocdev
  trap '"$dir/iocdev" down --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
  eval "$("$dir/iocdev" up --dir "$dir" --prefix IOC_TEST_)"
  export IOC_TEST_CLICKHOUSE_ADDR IOC_TEST_REDIS_ADDR IOC_TEST_MQTT_URL
fi
go vet ./...
go test -race -count=1 -timeout 20m ./... 2>&1
