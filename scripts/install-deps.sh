#!/usr/bin/env bash
# Installs what the project needs and the machine lacks: ClickHouse, Redis
# and Mosquitto with its command-line clients (and, for the tests, Chromium
# and GDAL's command-line tools) from the distribution's packages, and the
# Go modules. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

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
have redis-server || missing+=(redis-server)
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

if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing from the distribution's packages: ${missing[*]}"
  sudo=""
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
  $sudo apt-get update -qq
  if ! $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    echo "apt-get could not install ${missing[*]}." >&2
    echo "ClickHouse is packaged by Debian (bookworm) and Ubuntu (jammy); elsewhere add ClickHouse's own apt repository." >&2
    exit 1
  fi
fi

go mod download
