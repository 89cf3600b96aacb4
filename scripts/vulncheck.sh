#!/usr/bin/env bash
# Reports the known vulnerabilities the code can reach, in the standard
# library of the toolchain go.mod names and in the modules it requires,
# with govulncheck; exits 3 when it finds one.
#
# The vulnerability database is the Go project's own, taken as the module
# golang.org/x/vulndb through the Go module proxy (VULNDB_VERSION, default
# latest) and laid out as govulncheck reads it by the database's own
# indexer, once per version, under $VAR/vulndb. CI passes a pinned version
# so that its verdict does not change under it; run it with the latest
# before a release and after upgrading modules.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
govulncheck=golang.org/x/vuln/cmd/govulncheck@v1.9.0
want=${VULNDB_VERSION:-latest}
cache=$root/${VAR:-var}/vulndb
started=$SECONDS

# Outside the module, so that nothing is added to go.mod or go.sum.
tmp=$(mktemp -d -t ioc-vulndb-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
info=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "golang.org/x/vulndb@$want")
field() { printf '%s\n' "$info" | sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}$/\1/p"; }
version=$(field Version)
src=$(field Dir)
if [ -z "$version" ] || [ ! -d "$src/data/osv" ]; then
  echo "could not fetch golang.org/x/vulndb@$want through the Go module proxy:" >&2
  printf '%s\n' "$info" >&2
  exit 1
fi
db=$cache/$version
if [ ! -f "$db/index/db.json" ]; then
  echo "==> Indexing the vulnerability database golang.org/x/vulndb@$version (once per version)"
  rm -rf "$db.tmp"
  mkdir -p "$cache"
  (cd "$tmp" && GOFLAGS=-mod=mod go run "golang.org/x/vulndb/cmd/indexdb@$version" -vulns "$src/data/osv" -out "$db.tmp")
  mv "$db.tmp" "$db"
fi
echo "==> govulncheck ./... with $(go env GOVERSION), database golang.org/x/vulndb@$version"
status=0
go run "$govulncheck" -db "file://$db" ./... || status=$?
echo "    vulncheck took $((SECONDS - started))s"
exit "$status"
