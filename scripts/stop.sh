#!/usr/bin/env bash
# Stops iocd (SIGTERM: it flushes pending batches and closes websockets),
# then ClickHouse and Redis, unless --keep-services.
set -euo pipefail
cd "$(dirname "$0")/.."
VAR=${VAR:-var}
if [ -f "$VAR/iocd.pid" ]; then
  pid=$(cat "$VAR/iocd.pid")
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    echo "stopped iocd (pid $pid)"
  fi
  rm -f "$VAR/iocd.pid"
fi
if [ "${1:-}" != --keep-services ] && [ -x bin/iocdev ]; then
  bin/iocdev down --dir "$VAR"
fi
