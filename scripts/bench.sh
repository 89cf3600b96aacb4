#!/usr/bin/env bash
# make bench, in five parts, each on servers of its own (scripts/bench.sh
# live, which make bench-live runs, does part 4 alone; scripts/bench.sh
# wall, which make bench-wall runs, part 5):
#  1. ingest: five ways of storing the same records (clickhouse-client
#     JSONEachRow, a plain clickhouse-go insert, the project's writer, HTTP
#     ingest of a running node, `iocd import`) for dossier events, camera
#     events and sensor readings, in interleaved rounds, with events/s,
#     ClickHouse CPU per 100,000 events and the ratios to the plain insert
#     (cmd/iocbench ingest; BENCH_INGEST_EVENTS, BENCH_ROUNDS);
#  2. point lookups among the vn-2025 communes, spatial index against the
#     naive scan of every ring, on one core;
#  3. the backfill of BENCH_EVENTS (default 100 million) dossier events
#     piped into `iocd import dossiers -`, timed, then the analyst API
#     (series, ranking, scoreboard) against the same questions asked in SQL
#     of the raw dossier events; the data stays in BENCH_DIR (default
#     var/bench) so that a rerun skips the load (BENCH_VIA=direct loads
#     without iocd import);
#  4. the live websocket hub: BENCH_LIVE_CLIENTS (default 10,000) clients
#     on one topic of a real iocd, then of a minimal server on the
#     centrifuge library, publishing at BENCH_LIVE_RATE messages a second
#     (default 10) for BENCH_LIVE_DURATION (default 30s), BENCH_LIVE_ROUNDS
#     rounds (default 1): time until every client holds its snapshot,
#     deliveries per CPU-second of each server, latency, memory per
#     connection, messages lost or duplicated (cmd/iocbench live);
#     BENCH_LIVE_PORTS (e.g. 47000-47999) keeps its servers' ports in a
#     range, on a machine shared with other servers;
#  5. the control-room wall: a real iocd with the simulator feeding province
#     79 at BENCH_WALL_RATE events a second (default 200, ten times make
#     run's) and the default wall provisioned, BENCH_WALL_SCREENS kiosk pages
#     (default 6, screens s1…s6 of wall-79), each in a headless Chromium
#     process of its own at 1920×1080, measured for BENCH_WALL_DURATION
#     (default 10m) after iocd wrote BENCH_WALL_HISTORY_DAYS of history
#     (default 7, to keep the run short): update-to-paint latency from the
#     bus publication to the rendered frame, the pages' JS heap and DOM
#     nodes after forced collections at the start, every minute and at the
#     end, CPU per screen (each browser's process tree) and iocd's, and the
#     rotations and takeovers the screens went through (cmd/iocbench wall).
#     Chromium is heavy on two cores: run it on a quiet machine.
#  6. the cluster (scripts/bench.sh cluster, which make bench CLUSTER=1 and
#     make bench-cluster run, alone): the project's writer storing the same
#     dossier events, of two provinces on different shards, into one
#     ClickHouse server, a cluster of two shards of one replica and one of
#     two shards of two replicas (ZooKeeper), in interleaved rounds; then
#     every target checked exact and asked the same analyst questions of
#     its rollups, whose answers must be equal (cmd/iocbench cluster;
#     BENCH_CLUSTER_EVENTS, BENCH_ROUNDS).
# Every part prints the machine it ran on; the ratios, measured in the same
# run, are the figures to compare. A part that fails or misses a target
# does not stop the next; the script then exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
only=${1:-}
if [ -n "$only" ] && [ "$only" != live ] && [ "$only" != wall ] && [ "$only" != cluster ]; then
  echo "usage: $0 [live|wall|cluster]" >&2
  exit 2
fi
dir=$(mktemp -d -t ioc-bench-XXXXXX)
bench_dir=${BENCH_DIR:-${VAR:-var}/bench}
trap '"$dir/iocdev" down --dir "$dir/live" >/dev/null 2>&1 || true; "$dir/iocdev" down --dir "$dir/wall" >/dev/null 2>&1 || true; "$dir/iocdev" down --dir "$bench_dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
status=0
echo "==> Building iocd, iocbench and iocdev"
go build -o "$dir/iocdev" ./cmd/iocdev
go build -o "$dir/iocd" ./cmd/iocd
go build -o "$dir/iocbench" ./cmd/iocbench
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
echo "machine: ${cpu:-unknown CPU}, $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go env GOVERSION), ClickHouse $(clickhouse-client --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -1 || echo '?')"

if [ -z "$only" ]; then
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
echo "==> 3. Backfill with iocd import, then the analyst API against the raw events"
# Its own ClickHouse, whose data under $bench_dir outlives the run.
mkdir -p "$bench_dir"
eval "$("$dir/iocdev" up --dir "$bench_dir" --prefix IOC_BENCH_)"
echo
"$dir/iocbench" -addr "$IOC_BENCH_CLICKHOUSE_ADDR" -events "${BENCH_EVENTS:-100000000}" -via "${BENCH_VIA:-import}" -iocd "$dir/iocd" || status=1
"$dir/iocdev" down --dir "$bench_dir" >/dev/null 2>&1 || true
fi

if [ -z "$only" ] || [ "$only" = live ]; then
echo
clients=${BENCH_LIVE_CLIENTS:-10000}
echo "==> 4. Live websocket hub: iocd against a centrifuge server, $clients clients each"
# Every client socket is a file of iocbench and one of the server it
# reaches: raise the open-file limit, which the servers inherit.
want=$((clients + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
  ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
  echo "open-file limit $(ulimit -n) is below the $want that $clients clients need: raise the hard limit (ulimit -Hn as root) or set BENCH_LIVE_CLIENTS lower" >&2
fi
ports=()
up=()
if [ -n "${BENCH_LIVE_PORTS:-}" ]; then
  lo=${BENCH_LIVE_PORTS%-*}
  up=(--clickhouse-port "$lo" --redis-port $((lo + 1)) --mqtt-port $((lo + 2)))
  ports=(-ports "$((lo + 3))-${BENCH_LIVE_PORTS#*-}")
fi
eval "$("$dir/iocdev" up --dir "$dir/live" --prefix IOC_LIVE_ "${up[@]}")"
echo
"$dir/iocbench" live -iocd "$dir/iocd" -clickhouse "$IOC_LIVE_CLICKHOUSE_ADDR" -redis "$IOC_LIVE_REDIS_ADDR" -dir "$dir/live-run" "${ports[@]}" \
  -clients "$clients" -rate "${BENCH_LIVE_RATE:-10}" -duration "${BENCH_LIVE_DURATION:-30s}" -rounds "${BENCH_LIVE_ROUNDS:-1}" || status=1
"$dir/iocdev" down --dir "$dir/live" >/dev/null 2>&1 || true
fi

if [ -z "$only" ] || [ "$only" = wall ]; then
echo
screens=${BENCH_WALL_SCREENS:-6}
echo "==> 5. Control-room wall: $screens screens in Chromium, simulator at ${BENCH_WALL_RATE:-200} events/s (demo pace), ${BENCH_WALL_DURATION:-10m}"
eval "$("$dir/iocdev" up --dir "$dir/wall" --prefix IOC_WALL_)"
echo
"$dir/iocbench" wall -iocd "$dir/iocd" -clickhouse "$IOC_WALL_CLICKHOUSE_ADDR" -redis "$IOC_WALL_REDIS_ADDR" -dir "$dir/wall-run" \
  -screens "$screens" -rate "${BENCH_WALL_RATE:-200}" -duration "${BENCH_WALL_DURATION:-10m}" -history-days "${BENCH_WALL_HISTORY_DAYS:-7}" || status=1
"$dir/iocdev" down --dir "$dir/wall" >/dev/null 2>&1 || true
fi
if [ "$only" = cluster ]; then
echo
echo "==> 6. Cluster: the writer on one server, on 2 shards × 1 replica and on 2 shards × 2 replicas, ${BENCH_ROUNDS:-3} rounds"
"$dir/iocbench" cluster -events "${BENCH_CLUSTER_EVENTS:-60000}" -rounds "${BENCH_ROUNDS:-3}" -dir "$dir/cluster" || status=1
fi
exit $status
