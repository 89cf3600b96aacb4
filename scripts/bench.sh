#!/usr/bin/env bash
# Measures dossier ingest from HTTP to ClickHouse against a direct
# clickhouse-go batch insert of the same rows, in the same run, on throwaway
# ClickHouse and Redis servers; then point lookups among the vn-2025
# communes with the spatial index against the naive scan of every ring, on
# one core; then the analyst API (series, ranking, scoreboard) against the
# same questions asked in SQL of the raw dossier events, on BENCH_EVENTS
# (default 100 million) events kept in BENCH_DIR (default var/bench) so that
# a rerun skips the load. Prints the rates, timings and their ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d -t ioc-bench-XXXXXX)
go build -o "$dir/iocdev" ./cmd/iocdev
bench_dir=${BENCH_DIR:-${VAR:-var}/bench}
trap '"$dir/iocdev" down --dir "$bench_dir" >/dev/null 2>&1 || true; "$dir/iocdev" down --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
eval "$("$dir/iocdev" up --dir "$dir" --prefix IOC_TEST_)"
export IOC_TEST_CLICKHOUSE_ADDR IOC_TEST_REDIS_ADDR
out=$(go test -run '^$' -bench 'BenchmarkIngest' -benchtime "${BENCHTIME:-300x}" -count "${COUNT:-3}" ./cmd/iocd)
echo "$out"
echo "$out" | awk '
  /BenchmarkIngest\/direct/ { for (i = 1; i < NF; i++) if ($(i+1) == "events/s") { d += $i; nd++ } }
  /BenchmarkIngest\/http/   { for (i = 1; i < NF; i++) if ($(i+1) == "events/s") { h += $i; nh++ } }
  END {
    if (nd == 0 || nh == 0) { print "benchmark output missing"; exit 1 }
    printf "\ndirect clickhouse-go insert: %8.0f events/s (mean of %d)\n", d/nd, nd
    printf "HTTP ingest to ClickHouse:   %8.0f events/s (mean of %d)\n", h/nh, nh
    printf "ratio HTTP / direct:         %8.2f\n", (h/nh)/(d/nd)
  }'
# The naive scan takes milliseconds a lookup, so it gets a count, not a time.
geo=$(go test -run '^$' -bench 'BenchmarkLocate/index' -benchtime "${GEO_BENCHTIME:-2s}" -count "${COUNT:-3}" -cpu 1 ./geo
  go test -run '^$' -bench 'BenchmarkLocate/naive' -benchtime "${GEO_NAIVE_BENCHTIME:-300x}" -count "${COUNT:-3}" -cpu 1 ./geo)
echo
echo "$geo"
echo "$geo" | awk '
  /BenchmarkLocate\/index/ { for (i = 1; i < NF; i++) if ($(i+1) == "lookups/s") { x += $i; nx++ } }
  /BenchmarkLocate\/naive/ { for (i = 1; i < NF; i++) if ($(i+1) == "lookups/s") { n += $i; nn++ } }
  END {
    if (nx == 0 || nn == 0) { print "benchmark output missing"; exit 1 }
    printf "\nnaive scan of every ring:    %8.0f lookups/s (mean of %d)\n", n/nn, nn
    printf "spatial index:               %8.0f lookups/s (mean of %d)\n", x/nx, nx
    printf "ratio index / naive:         %8.0f\n", (x/nx)/(n/nn)
  }'
# Analytics: its own ClickHouse, whose data under $bench_dir outlives the run;
# the throwaway servers are stopped first so as not to share the cores.
"$dir/iocdev" down --dir "$dir" >/dev/null 2>&1 || true
go build -o "$dir/iocd" ./cmd/iocd
go build -o "$dir/iocbench" ./cmd/iocbench
mkdir -p "$bench_dir"
eval "$("$dir/iocdev" up --dir "$bench_dir" --prefix IOC_BENCH_)"
echo
"$dir/iocbench" -addr "$IOC_BENCH_CLICKHOUSE_ADDR" -events "${BENCH_EVENTS:-100000000}" -iocd "$dir/iocd"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go env GOVERSION), ClickHouse $(clickhouse-client --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -1 || echo '?')"
