# make run   installs what is missing, starts ClickHouse, Redis, Mosquitto and iocd with the simulator;
#            CLUSTER=1: ZooKeeper and a ClickHouse cluster (2 shards × 2 replicas), two iocd nodes and HAProxy
# make stop  stops what make run started
# make test  runs every test against real ClickHouse, Redis and Mosquitto, with -race
# make vulncheck reports known vulnerabilities the code can reach (govulncheck, with the
#            Go vulnerability database fetched through the Go module proxy)
# make bench measures ingest from HTTP to ClickHouse against a direct insert, point lookups
#            with the spatial index against a naive scan, and the analyst API against the same
#            questions in SQL over 100 million raw dossier events (BENCH_EVENTS; kept in $(VAR)/bench),
#            the live websocket hub against a centrifuge server with 10,000 clients, and the
#            control-room wall: 6 kiosk pages in Chromium against a node whose simulator runs at
#            ten times make run's rate, for 10 minutes
# make bench-live measures the live websocket hub alone (BENCH_LIVE_CLIENTS, BENCH_LIVE_DURATION, …)
# make bench-wall measures the control-room wall alone (BENCH_WALL_SCREENS, BENCH_WALL_DURATION, …)
# make bench CLUSTER=1 (or make bench-cluster) measures the writer on one ClickHouse server against
#            clusters of 2 shards × 1 and × 2 replicas, and checks that their figures are equal

VAR             ?= var
HTTP_ADDR       ?= 127.0.0.1:8080
CLICKHOUSE_PORT ?= 19000
REDIS_PORT      ?= 16379
MQTT_PORT       ?= 11883
SIMULATE        ?= 20
PACE            ?= field
AREA            ?= 79
CLUSTER         ?=

# Build with the toolchain go.mod names (fetched through the Go module
# proxy when the installed Go is older): it carries the standard library's
# security fixes. A GOTOOLCHAIN in the environment wins.
GOTOOLCHAIN     ?= auto
# What iocd --version says: the closest tag and the commit.
VERSION         ?= $(shell git describe --tags --always --dirty 2>/dev/null)

export VAR HTTP_ADDR CLICKHOUSE_PORT REDIS_PORT MQTT_PORT SIMULATE PACE AREA CLUSTER GOTOOLCHAIN

.PHONY: run stop test screenshots bench bench-live bench-wall bench-cluster fuzz deps build clean vulncheck

run: deps build
	@scripts/run.sh

stop:
	@scripts/stop.sh

test: deps
	@scripts/test.sh

screenshots: deps
	@scripts/screenshots.sh

bench: deps
	@scripts/bench.sh $(if $(CLUSTER),cluster)

bench-cluster: deps
	@scripts/bench.sh cluster

bench-live: deps
	@scripts/bench.sh live

bench-wall: deps
	@scripts/bench.sh wall

vulncheck:
	@scripts/vulncheck.sh

fuzz:
	go test -run '^$$' -fuzz FuzzDecodeDossiers -fuzztime 60s ./ingest
	go test -run '^$$' -fuzz FuzzDecodeFeedback -fuzztime 60s ./ingest
	go test -run '^$$' -fuzz FuzzDecodeMQTT -fuzztime 60s ./ingest
	go test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 60s ./ingest/ngsild
	go test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 60s ./ingest/cameraxml
	go test -run '^$$' -fuzz FuzzCameraAlertEvent -fuzztime 60s ./ingest
	go test -run '^$$' -fuzz FuzzDecodeFlat -fuzztime 60s ./ingest
	go test -run '^$$' -fuzz FuzzCSVColumns -fuzztime 60s ./ingest
	go test -run '^$$' -fuzz FuzzCSVReader -fuzztime 60s ./ingest/backfill
	go test -run '^$$' -fuzz FuzzNDJSONReader -fuzztime 60s ./ingest/backfill
	go test -run '^$$' -fuzz FuzzReadGeoJSON -fuzztime 60s ./geo
	go test -run '^$$' -fuzz FuzzOpen -fuzztime 60s ./internal/httpbody
	go test -run '^$$' -fuzz FuzzDecodeFrame -fuzztime 60s ./internal/bus
	go test -run '^$$' -fuzz FuzzSince -fuzztime 60s ./api/hub
	go test -run '^$$' -fuzz FuzzApplyMapDelta -fuzztime 60s ./aggregate
	go test -run '^$$' -fuzz FuzzMapDeltaOfFigures -fuzztime 60s ./aggregate
	go test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./topic

deps:
	@scripts/install-deps.sh

build:
	@mkdir -p bin
	go build -buildvcs=auto -ldflags "-X main.version=$(VERSION)" -o bin/iocd ./cmd/iocd
	go build -o bin/iocdev ./cmd/iocdev

clean: stop
	rm -rf bin $(VAR)
