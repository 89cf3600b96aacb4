#!/usr/bin/env bash
# Stops the iocd nodes (SIGTERM: each flushes pending batches and closes
# websockets), then HAProxy, ClickHouse (and a cluster), Redis and
# Mosquitto, unless --keep-services.
set -euo pipefail
cd "$(dirname "$0")/.."
VAR=${VAR:-var}
for pidfile in "$VAR"/iocd.pid "$VAR"/iocd-*.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    echo "stopped iocd (pid $pid)"
  fi
  rm -f "$pidfile"
done
if [ "${1:-}" != --keep-services ] && [ -x bin/iocdev ]; then
  bin/iocdev down --dir "$VAR"
fi
