#!/usr/bin/env bash
# make bench, in three parts, each on servers of its own:
#  1. ingest: five ways of storing the same records (clickhouse-client
#     JSONEachRow, a plain clickhouse-go insert, the project's writer, HTTP
#     ingest of a running node, `iocd import`) for dossier events, camera
#     events and sensor readings, in interleaved rounds, with events/s,
#     ClickHouse CPU per 100,000 events and the ratios to the plain insert
#     (cmd/iocbench ingest; BENCH_INGEST_EVENTS, BENCH_ROUNDS);
#  2. point lookups among the vn-2025 communes, spatial index against the
#     naive scan of every ring, on one core;
#  3. the analyst API (series, ranking, scoreboard) against the same
#     questions asked in SQL of the raw dossier events, on BENCH_EVENTS
#     (default 100 million) events kept in BENCH_DIR (default var/bench) so
#     that a rerun skips the load.
# Every part prints the machine it ran on; the ratios, measured in the same
# run, are the figures to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d -t ioc-bench-XXXXXX)
bench_dir=${BENCH_DIR:-${VAR:-var}/bench}
trap '"$dir/iocdev" down --dir "$bench_dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
echo "==> Building iocd, iocbench and iocdev"
go build -o "$dir/iocdev" ./cmd/iocdev
go build -o "$dir/iocd" ./cmd/iocd
go build -o "$dir/iocbench" ./cmd/iocbench
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
echo "machine: ${cpu:-unknown CPU}, $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go env GOVERSION), ClickHouse $(clickhouse-client --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -1 || echo '?')"

echo
echo "==> 1. Ingest: the same records stored five ways, ${BENCH_ROUNDS:-3} rounds"
"$dir/iocbench" ingest -iocd "$dir/iocd" -events "${BENCH_INGEST_EVENTS:-300000}" -rounds "${BENCH_ROUNDS:-3}" \
  -body "${BENCH_BODY:-5000}" -dir "$dir/ingest"

echo
echo "==> 2. Point lookups among the vn-2025 communes, one core"
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
    printf "\n| path | ns/lookup | lookups/s, one core |\n| --- | ---: | ---: |\n"
    printf "| naive scan of every ring | %.0f | %.0f |\n", 1e9/(n/nn), n/nn
    printf "| spatial index | %.1f | %.0f |\n", 1e9/(x/nx), x/nx
    printf "\nratio index / naive: %.0f (means of %d and %d runs); target: at least 1,000,000 lookups/s per core: %s\n",
      (x/nx)/(n/nn), nx, nn, (x/nx >= 1e6 ? "met" : "NOT MET")
  }'
echo
echo "==> 3. The analyst API against the raw events"
# Its own ClickHouse, whose data under $bench_dir outlives the run.
mkdir -p "$bench_dir"
eval "$("$dir/iocdev" up --dir "$bench_dir" --prefix IOC_BENCH_)"
echo
"$dir/iocbench" -addr "$IOC_BENCH_CLICKHOUSE_ADDR" -events "${BENCH_EVENTS:-100000000}" -iocd "$dir/iocd"
