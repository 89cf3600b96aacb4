#!/usr/bin/env bash
# Installs what the project needs and the machine lacks: ClickHouse, Redis
# and Mosquitto with its command-line clients (and, for the tests,
# PostgreSQL, Chromium, GDAL's command-line tools, Prometheus's promtool and
# Node.js with npm)
# from the distribution's packages, the Go modules, and the pinned OpenAPI
# linter from the npm registry. Safe to run again: it installs only what is
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Another apt-get or dpkg (unattended upgrades, a colleague's install) may
# hold the package manager's locks for minutes: wait for it, at most
# IOC_APT_LOCK_WAIT seconds, rather than fail at once.
apt_locks=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock)
lock_wait=${IOC_APT_LOCK_WAIT:-600}
sudo=""

# lock_holder prints "process PID (COMMAND) holds LOCK" for a process
# holding one of the locks, or nothing.
lock_holder() {
  local f pid
  for f in "${apt_locks[@]}"; do
    [ -e "$f" ] || continue
    pid=$($sudo fuser "$f" 2>/dev/null | awk '{print $1}') || true
    if [ -n "$pid" ]; then
      echo "process $pid ($(ps -o comm= -p "$pid" 2>/dev/null || echo unknown)) holds $f"
      return
    fi
  done
}

# apt_get runs apt-get with ARGS once no other process holds the package
# locks, waiting at most lock_wait seconds in all. apt-get's own lock
# timeout covers the moment between the check and apt-get taking the locks
# (and does the waiting alone where fuser, of psmisc, is missing); a run
# that still lost the race goes again.
apt_deadline=$((SECONDS + lock_wait))
apt_get() {
  local holder said=""
  while :; do
    if command -v fuser >/dev/null 2>&1; then
      while holder=$(lock_holder) && [ -n "$holder" ]; do
        if [ -z "$said" ]; then
          echo "    waiting for the package manager, at most ${lock_wait}s: $holder"
          said=1
        fi
        if [ "$SECONDS" -ge "$apt_deadline" ]; then
          echo "Gave up after ${lock_wait}s waiting for the package manager: $holder." >&2
          echo "Let it finish (or stop it), then run make again; IOC_APT_LOCK_WAIT sets the wait in seconds." >&2
          return 1
        fi
        sleep 2
      done
    fi
    if $sudo apt-get -o DPkg::Lock::Timeout=$((apt_deadline > SECONDS ? apt_deadline - SECONDS : 0)) "$@"; then
      return 0
    fi
    holder=$(lock_holder)
    if [ -z "$holder" ] || [ "$SECONDS" -ge "$apt_deadline" ]; then
      return 1
    fi
  done
}

echo "==> Checking dependencies: Go, ClickHouse, ZooKeeper, Redis, Mosquitto, HAProxy, PostgreSQL, Chromium, GDAL, promtool, Node.js"

need_go=$(sed -n 's/^go \([0-9.]*\).*/\1/p' go.mod)
if ! command -v go >/dev/null 2>&1; then
  echo "Go $need_go or newer is required: install it from https://go.dev/dl/ and put it on PATH." >&2
  exit 1
fi
have_go=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$need_go" "$have_go" | sort -V | head -n1)" != "$need_go" ]; then
  echo "Go $need_go or newer is required (found $have_go)." >&2
  exit 1
fi

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
have clickhouse-server || missing+=(clickhouse-server)
# make bench's first path inserts with it, and operators query with it.
have clickhouse-client || missing+=(clickhouse-client)
have redis-server || missing+=(redis-server)
# Several nodes behind one balancer: the tests run the shipped HAProxy configuration.
have haproxy || missing+=(haproxy)
# A ClickHouse cluster's coordinator (iocdev up --cluster and its test):
# Debian 12's ZooKeeper 3.8, whose handshake ClickHouse 18.16 speaks.
[ -f /usr/share/java/zookeeper.jar ] || missing+=(zookeeper)
# The datasets' connectors are tested against a private PostgreSQL (Debian
# installs its initdb and postgres under /usr/lib/postgresql/<version>/bin).
# The package also starts a system cluster on 5432, which the project never uses.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || have initdb || missing+=(postgresql)
# The MQTT subscriber's tests run a private broker; operators publish with mosquitto_pub.
# Debian's package may also start a system broker on 1883, which the project never uses.
have mosquitto || missing+=(mosquitto)
have mosquitto_pub || missing+=(mosquitto-clients)
# The browser tests drive a real headless Chromium.
if [ "${IOC_SKIP_BROWSER:-}" != 1 ]; then
  have chromium || missing+=(chromium)
fi
# The GIS tests open the layers with GDAL's OGC API and vector-tile drivers.
have ogrinfo || missing+=(gdal-bin)
# The unit in deploy/ is checked with systemd-analyze verify.
have systemd-analyze || missing+=(systemd)
# The metrics test checks /metrics with promtool, of Debian's prometheus
# package (its service is not started by this script, nor needed).
have promtool || missing+=(prometheus)
# The OpenAPI document is linted with Redocly's CLI, from the npm registry.
have node || missing+=(nodejs)
have npm || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  echo "==> Installing from the distribution's packages: ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "Need root to install ${missing[*]}: run as root or install sudo." >&2
      exit 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "No apt-get: install ${missing[*]} with your package manager." >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt_get update -qq
  if ! apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    echo "apt-get could not install ${missing[*]}." >&2
    echo "ClickHouse is packaged by Debian (bookworm) and Ubuntu (jammy); elsewhere add ClickHouse's own apt repository." >&2
    exit 1
  fi
fi

echo "==> Downloading Go modules and the Go toolchain go.mod names (nothing to do when they are cached)"
go mod download

# The linter's version is pinned in tools/openapi/package-lock.json.
if [ ! -x tools/openapi/node_modules/.bin/redocly ] || [ tools/openapi/package-lock.json -nt tools/openapi/node_modules/.package-lock.json ]; then
  echo "==> Installing the OpenAPI linter (npm ci in tools/openapi)"
  (cd tools/openapi && npm ci --no-audit --no-fund --loglevel=error)
fi
