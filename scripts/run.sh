#!/usr/bin/env bash
# Starts ClickHouse, Redis and Mosquitto on loopback with data under $VAR,
# then iocd with the built-in simulator, and prints the URL and the tokens.
# CLUSTER=1: ZooKeeper and a ClickHouse cluster of two shards of two
# replicas instead of one server, two iocd nodes (the first runs the
# simulator) and HAProxy in front of them on HTTP_ADDR.
set -euo pipefail
cd "$(dirname "$0")/.."
VAR=${VAR:-var}; HTTP_ADDR=${HTTP_ADDR:-127.0.0.1:8080}
mkdir -p "$VAR/log"

MQTT_PORT=${MQTT_PORT:-11883}
CLUSTER=${CLUSTER:-}; [ "$CLUSTER" = 0 ] && CLUSTER=
eval "$(bin/iocdev up --dir "$VAR" --clickhouse-port "${CLICKHOUSE_PORT:-19000}" --redis-port "${REDIS_PORT:-16379}" --mqtt-port "$MQTT_PORT" ${CLUSTER:+--cluster})"
if [ -n "$CLUSTER" ]; then
  # The nodes write and read the cluster; its first start creates the
  # schema ON CLUSTER, which takes longer than on one server.
  export IOC_CLICKHOUSE_ADDR=$IOC_CLICKHOUSE_CLUSTER_SERVERS IOC_CLICKHOUSE_CLUSTER=ioc IOC_STARTUP_TIMEOUT=${IOC_STARTUP_TIMEOUT:-3m}
  export IOC_TRUSTED_PROXIES=127.0.0.1 IOC_MQTT_SHARED_GROUP=ioc
  host=${HTTP_ADDR%:*}; port=${HTTP_ADDR##*:}
  NODES=("$host:$((port + 1))" "$host:$((port + 2))")
else
  NODES=("$HTTP_ADDR")
fi

# Secrets are made once and kept under $VAR, so tokens survive a restart.
secret() { [ -s "$1" ] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$1"); cat "$1"; }
export IOC_ADMIN_TOKEN=$(secret "$VAR/admin-token")
export IOC_JWT_SECRET=$(secret "$VAR/jwt-secret")
export IOC_CLICKHOUSE_ADDR IOC_REDIS_ADDR IOC_MQTT_URL IOC_HTTP_ADDR="$HTTP_ADDR"
export IOC_SIMULATE=${SIMULATE:-20} IOC_SIMULATE_PACE=${PACE:-field} IOC_SIMULATE_AREA=${AREA:-79}
# Hierarchies installed with "bin/iocd import-units" live here.
export IOC_GEO_DIR=${IOC_GEO_DIR:-$VAR/geo}
# The example department datasets (population, enterprises, enrolment),
# which the simulator feeds for the province's communes.
export IOC_DATASETS_DIR=${IOC_DATASETS_DIR:-$PWD/deploy/datasets}

if [ -f "$VAR/iocd.pid" ] && kill -0 "$(cat "$VAR/iocd.pid")" 2>/dev/null; then
  echo "Restarting iocd (pid $(cat "$VAR/iocd.pid"))"
  scripts/stop.sh --keep-services
fi

# node N: starts the N-th node (counted from 1) on ${NODES[N-1]}; only the
# first runs the simulator.
node() {
  local n=$1 pidfile=$VAR/iocd.pid log=$VAR/log/iocd.log
  if [ "$n" -gt 1 ]; then pidfile=$VAR/iocd-$n.pid; log=$VAR/log/iocd-$n.log; fi
  IOC_HTTP_ADDR=${NODES[$((n - 1))]} IOC_MQTT_CLIENT_ID=iocd-$n IOC_SIMULATE=$([ "$n" = 1 ] && echo "$IOC_SIMULATE" || echo 0) \
    setsid bin/iocd >>"$log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
}

# wait_ready N: waits until the N-th node is ready.
wait_ready() {
  local n=$1 pidfile=$VAR/iocd.pid log=$VAR/log/iocd.log told=
  if [ "$n" -gt 1 ]; then pidfile=$VAR/iocd-$n.pid; log=$VAR/log/iocd-$n.log; fi
  local node_url="http://${NODES[$((n - 1))]}"
  # On an empty database iocd first writes the simulated province's history
  # (half a minute on two cores; IOC_SIMULATE_HISTORY_DAYS sets its days).
  for _ in $(seq 600); do
    if curl -fsS "$node_url/readyz" >/dev/null 2>&1; then return 0; fi
    if [ -z "$told" ] && curl -sS "$node_url/readyz" 2>/dev/null | grep -q "writing .* simulated history"; then
      echo "iocd is writing ${IOC_SIMULATE_HISTORY_DAYS:-90} days of simulated history first (progress in $log)"; told=1
    fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "iocd exited; last lines of $log:" >&2; tail -n 20 "$log" >&2; exit 1
    fi
    sleep 0.5
  done
  echo "iocd did not become ready; see $log" >&2; exit 1
}

node 1
if [ -n "$CLUSTER" ]; then
  # The second node once the first has created the schema (it listens
  # from then on), so that they do not both create it.
  for _ in $(seq 600); do
    curl -s -o /dev/null "http://${NODES[0]}/healthz" && break
    kill -0 "$(cat "$VAR/iocd.pid")" 2>/dev/null || { echo "iocd exited; last lines of $VAR/log/iocd.log:" >&2; tail -n 20 "$VAR/log/iocd.log" >&2; exit 1; }
    sleep 0.5
  done
  node 2
  eval "$(bin/iocdev balance --dir "$VAR" --port "${HTTP_ADDR##*:}" --servers "${NODES[0]},${NODES[1]}")"
fi
for n in $(seq ${#NODES[@]}); do wait_ready "$n"; done
url="http://$HTTP_ADDR"

# The example datasets' dashboard, added to the duty desk's playlist:
# stored through the import as an admin would, so that it is in the store
# like any edited wall (an unchanged file stores nothing; a changed one,
# or a playlist edited since, is stored again from the file).
if [ "${AREA:-79}" = 79 ] && [ "$IOC_DATASETS_DIR" = "$PWD/deploy/datasets" ]; then
  curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $IOC_ADMIN_TOKEN" -H 'Content-Type: application/json' \
    --data-binary @deploy/walls/departments-79.json "$url/api/v1/dashboards/import" ||
    echo "could not store deploy/walls/departments-79.json (the department data dashboard); the wall shows the others" >&2
fi

viewer=$(bin/iocd token --role viewer --area "${AREA:-79}" --ttl 720h)
# The duty desk's screen of the default walls (desk-79: whole dashboards on
# one screen; the 3×2 wall-79 spreads them over screens s1…s6), as a wall
# PC opens it: a kiosk token behind a short link, made once and kept under
# $VAR while it still opens. A database provisioned before the desk screen
# existed gets screen s1's.
kiosk=$(cat "$VAR/kiosk-desk-url" 2>/dev/null || true)
if [ -z "$kiosk" ] || [ "$(curl -s -o /dev/null -w '%{http_code}' "$kiosk")" != 302 ]; then
  kiosk=""
  for screen in desk s1; do
    kiosk=$(curl -fsS -X POST -H "Authorization: Bearer $IOC_ADMIN_TOKEN" -H 'Content-Type: application/json' \
      -d '{"subject":"make run"}' "$url/api/v1/screens/$screen/tokens" 2>/dev/null | sed -n 's/.*"url":"\([^"]*\)".*/\1/p') || true
    [ -n "$kiosk" ] && break
  done
  echo "$kiosk" >"$VAR/kiosk-desk-url"
fi
cat <<MSG

$(if [ "$IOC_SIMULATE_PACE" = demo ]; then
  echo "iocd is running with the simulator feeding province ${AREA:-79} at demo pace (${SIMULATE:-20} events/s, lifecycles in minutes)."
else
  echo "iocd is running with the simulator carrying province ${AREA:-79}'s history on at field pace"
  echo "(the history's daily volume, which SIMULATE scales; lifecycles over days and weeks; PACE=demo for many times more)."
fi)

  Open:         $url/?access_token=$viewer&area=${AREA:-79}
  Wall screen:  $kiosk  (kiosk link of the duty desk's screen: open it full-screen, e.g. chromium --kiosk --autoplay-policy=no-user-gesture-required LINK)
MSG
# Its QR code, for a wall PC or a tablet to scan, in the column of the
# values; on a terminal only, so that a log of make run stays text.
if [ -t 1 ] && [ -n "$kiosk" ]; then
  bin/iocd token qr "$kiosk" | sed 's/^/                /' || true
fi
cat <<MSG
  Admin token:  $IOC_ADMIN_TOKEN
  Try:          curl -H "Authorization: Bearer \$(cat $VAR/admin-token)" $url/api/v1/areas/${AREA:-79}/kpis
  GIS:          $url/api/v1/layers (GeoJSON, vector tiles, TileJSON); OGC API - Features at $url/ogc
                e.g. ogrinfo "OAPIF:$url/ogc?access_token=\$(cat $VAR/admin-token)"
  MQTT:         mosquitto_pub -h 127.0.0.1 -p $MQTT_PORT -q 1 -t ioc/sensors/AQ-1/readings -m '{"kind":"pm25","value":35.2,"observed_at":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","lat":10.776,"lon":106.700}'
  Logs:         $VAR/log/iocd.log$([ -n "$CLUSTER" ] && echo " and $VAR/log/iocd-2.log (nodes ${NODES[0]} and ${NODES[1]} behind HAProxy on $HTTP_ADDR; ClickHouse cluster ioc: $IOC_CLICKHOUSE_CLUSTER_SERVERS)")
  Stop:         make stop

MSG
