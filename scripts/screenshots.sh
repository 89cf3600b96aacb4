#!/usr/bin/env bash
# make screenshots: runs the wall's Chromium tests that take the README's
# pictures (the default dashboards over the 90 days of history make run
# writes, an alarm taking a screen over, a dashboard spanning two screens,
# the editor and its screens panel, the example datasets' dashboard) on throwaway servers, as make test
# does, and copies them to docs/screenshots. Every picture in the README
# is one of these; rerun this after changing what they show.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d -t ioc-shots-XXXXXX)
trap 'rm -rf "$out"' EXIT
IOC_ARTIFACTS=$out IOC_TEST_WALL_HISTORY_DAYS=${DAYS:-90} TEST_PKGS=./cmd/iocd \
  TEST_RUN='^(TestWallWithHistory|TestWallAlarmTakeoverInBrowser|TestWallPlaylistSwitchesScreensTogether|TestWallEditor|TestWallControl|TestWallDepartmentsDashboard)$' \
  scripts/test.sh
mkdir -p docs/screenshots
echo "==> Copying the README's pictures to docs/screenshots"
for f in history-ops-79 history-dossiers-79 history-env-79 wall-t1-taken-over wall-t1-left wall-t2-right editor control-panel departments-79-1920x1080; do
  if [ ! -f "$out/wall/$f.png" ]; then
    echo "the tests saved no $f.png: see their output above" >&2
    exit 1
  fi
  cp "$out/wall/$f.png" "docs/screenshots/${f%-1920x1080}.png"
  echo "    docs/screenshots/${f%-1920x1080}.png"
done
