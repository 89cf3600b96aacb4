package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
)

func TestMain(m *testing.M) {
	// Device passwords are hashed with bcrypt, which under the race
	// detector takes seconds at the default cost.
	auth.HashCost = bcrypt.MinCost
	os.Exit(testenv.Main(m))
}

// runsBesideOthers marks a test that asserts no timing beyond generous
// deadlines and stops no service that others share: it waits on processes
// of its own (a ClickHouse server started for it, an iocd or an import it
// kills, a history being written) or works on a database of its own. Go
// runs such tests two at a time once every other test has finished, so a
// test that times a browser or a shared service never meets them. Run one
// after another, they took most of make test's 15 minutes on 2 cores.
func runsBesideOthers(t *testing.T) {
	t.Helper()
	t.Parallel()
}

// clusterTurns keeps the tests that kill the servers of the package's
// shared cluster apart from those that only use it.
var clusterTurns sync.RWMutex

// usesCluster runs a test beside others on the shared cluster, which no
// test kills meanwhile.
func usesCluster(t *testing.T) *testenv.Cluster {
	t.Helper()
	runsBesideOthers(t)
	clusterTurns.RLock()
	t.Cleanup(clusterTurns.RUnlock)
	return testenv.StartCluster(t)
}

// killsCluster runs a test beside others on the shared cluster, alone on
// it: it may kill its servers.
func killsCluster(t *testing.T) *testenv.Cluster {
	t.Helper()
	runsBesideOthers(t)
	clusterTurns.Lock()
	t.Cleanup(clusterTurns.Unlock)
	return testenv.StartCluster(t)
}

const (
	adminToken = "test-admin-token-0123456789"
	jwtSecret  = "test-jwt-secret"
)

var hcm = func() *time.Location {
	l, err := time.LoadLocation("Asia/Ho_Chi_Minh")
	if err != nil {
		panic(err)
	}
	return l
}()

// testConfig is a node on the shared ClickHouse with a database of its own.
func testConfig(t testing.TB) serveConfig {
	t.Helper()
	cfg, err := parseServeConfig(nil)
	if err == nil {
		t.Fatal("a config without tokens must be refused")
	}
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.ClickHouse.Addr = testenv.ClickHouseAddr(t)
	cfg.ClickHouse.Database = testenv.Database(t)
	cfg.AdminToken, cfg.JWTSecret = adminToken, jwtSecret
	cfg.BatchAge = 20 * time.Millisecond
	cfg.StartupTimeout = 20 * time.Second
	cfg.ShutdownTimeout = 10 * time.Second
	cfg.RedisPrefix = "ioc-test-" + cfg.ClickHouse.Database + ":"
	return cfg
}

type node struct {
	t      testing.TB
	base   string
	cancel context.CancelFunc
	done   chan error
}

// startNode runs a node as iocd serve would, until the test ends or stop.
func startNode(t testing.TB, cfg serveConfig) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	n := &node{t: t, cancel: cancel, done: make(chan error, 1)}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { n.done <- run(ctx, cfg, logger, func(a net.Addr) { addr <- a }) }()
	select {
	case a := <-addr:
		n.base = "http://" + a.String()
	case err := <-n.done:
		t.Fatalf("node did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("node did not start within 30s")
	}
	t.Cleanup(func() { n.stop() })
	// Ready once live figures are published: a screen that subscribed
	// earlier would get its figures twice, computed then published. A
	// node writing the simulated history is ready once it is written,
	// which takes minutes on a busy machine under -race.
	if cfg.Simulate > 0 && cfg.SimulateHistoryDays > 0 {
		n.waitReadyWithin(5 * time.Minute)
	} else {
		n.waitReady()
	}
	return n
}

// stop shuts the node down as SIGTERM does and waits for it.
func (n *node) stop() {
	n.t.Helper()
	if n.cancel == nil {
		return
	}
	n.cancel()
	n.cancel = nil
	select {
	case err := <-n.done:
		if err != nil {
			n.t.Errorf("node stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		n.t.Error("node did not stop within 30s")
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type ingestReply struct {
	Accepted   int `json:"accepted"`
	Rejected   int `json:"rejected"`
	Duplicates int `json:"duplicates"`
	Errors     []struct {
		Index int    `json:"index"`
		Error string `json:"error"`
	} `json:"errors"`
	Error string `json:"error"`
}

func (n *node) do(method, path, token, contentType string, body []byte) *http.Response {
	n.t.Helper()
	req, err := http.NewRequest(method, n.base+path, bytes.NewReader(body))
	if err != nil {
		n.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// ingest posts events as NDJSON with the admin token.
func (n *node) ingest(events ...map[string]any) (int, ingestReply) {
	n.t.Helper()
	code, r, _ := n.ingestOnce(events)
	return code, r
}

// ingestOnce posts events once and also returns the answer's Retry-After.
func (n *node) ingestOnce(events []map[string]any) (int, ingestReply, time.Duration) {
	n.t.Helper()
	var b bytes.Buffer
	for _, e := range events {
		line, _ := json.Marshal(e)
		b.Write(line)
		b.WriteByte('\n')
	}
	resp := n.do("POST", "/api/v1/ingest/dossiers", adminToken, "application/x-ndjson", b.Bytes())
	defer resp.Body.Close()
	var r ingestReply
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &r); err != nil {
		n.t.Fatalf("ingest answered %d with %q", resp.StatusCode, raw)
	}
	retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return resp.StatusCode, r, time.Duration(retry) * time.Second
}

// ingestAcknowledged posts events as a careful integrator does: a 503
// acknowledges nothing, so it sends the same body again after the answer's
// Retry-After (at most 1 s), for up to patience. It returns the first
// answer that is not a 503, or the last 503.
func (n *node) ingestAcknowledged(patience time.Duration, events ...map[string]any) (int, ingestReply) {
	n.t.Helper()
	deadline := time.Now().Add(patience)
	for {
		code, r, retry := n.ingestOnce(events)
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return code, r
		}
		n.t.Logf("ingest answered 503 (%s); sending it again", r.Error)
		select {
		case <-time.After(min(max(retry, 50*time.Millisecond), time.Second)):
		case <-n.t.Context().Done():
			return code, r
		}
	}
}

// get decodes a JSON answer into v and returns the status code.
func (n *node) get(path, token string, v any) int {
	n.t.Helper()
	resp := n.do("GET", path, token, "", nil)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(raw, v); err != nil {
			n.t.Fatalf("GET %s answered %d with %q", path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}

type snapshot struct {
	Area      string         `json:"area"`
	Hierarchy string         `json:"hierarchy"`
	Level     string         `json:"level"`
	Name      string         `json:"name"`
	Window    string         `json:"window"`
	AsOf      string         `json:"as_of"`
	KPIs      map[string]any `json:"kpis"`
}

func (n *node) kpis(area, window string) snapshot {
	n.t.Helper()
	var s snapshot
	if code := n.get("/api/v1/areas/"+area+"/kpis?window="+window, adminToken, &s); code != 200 {
		n.t.Fatalf("kpis of %s: status %d", area, code)
	}
	return s
}

// event is a valid dossier event in commune area, stamped ago before now.
func event(id, dossier, area, status, channel string, ago time.Duration) map[string]any {
	now := time.Now().Truncate(time.Second)
	return map[string]any{
		"event_id": id, "dossier_id": dossier, "procedure_code": "1.004227", "sector": "land",
		"area_code": area, "channel": channel, "status": status,
		"occurred_at": now.Add(-ago).In(hcm).Format(time.RFC3339),
		"received_at": now.Add(-ago - time.Hour).In(hcm).Format(time.RFC3339),
		"due_at":      now.Add(48 * time.Hour).In(hcm).Format(time.RFC3339),
	}
}

func issueToken(t testing.TB, role auth.Role, areas ...string) string {
	t.Helper()
	if role == auth.Ingest && len(areas) == 0 {
		areas = []string{auth.AllAreas}
	}
	tok, err := auth.Issue([]byte(jwtSecret), auth.Principal{Subject: "test", Role: role, Areas: areas}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type wsMessage struct {
	Type    string          `json:"type"`
	Topic   string          `json:"topic"`
	Version string          `json:"version"`
	Base    string          `json:"base"`
	Data    json.RawMessage `json:"data"`
	Error   string          `json:"error"`
}

func (m wsMessage) snapshot(t testing.TB) snapshot {
	t.Helper()
	var s snapshot
	if err := json.Unmarshal(m.Data, &s); err != nil {
		t.Fatalf("message data %q: %v", m.Data, err)
	}
	return s
}

type wsClient struct {
	t    testing.TB
	conn *websocket.Conn
}

// live opens the websocket with the token in the query, as a browser does.
func (n *node) live(tok string) *wsClient {
	n.t.Helper()
	url := "ws" + strings.TrimPrefix(n.base, "http") + "/api/v1/live?access_token=" + tok
	c, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		n.t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	n.t.Cleanup(func() { c.Close() })
	return &wsClient{t: n.t, conn: c}
}

func (c *wsClient) send(op, topic string) {
	c.t.Helper()
	if err := c.conn.WriteJSON(map[string]string{"op": op, "topic": topic}); err != nil {
		c.t.Fatal(err)
	}
}

// next reads the next message, failing the test after d.
func (c *wsClient) next(d time.Duration) wsMessage {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	var m wsMessage
	_, raw, err := c.conn.ReadMessage()
	if err != nil {
		c.t.Fatalf("read websocket: %v", err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		c.t.Fatalf("websocket message %q: %v", raw, err)
	}
	return m
}

// until reads messages until match accepts one, failing after d.
func (c *wsClient) until(d time.Duration, match func(wsMessage) bool) wsMessage {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			c.t.Fatalf("no matching websocket message within %s", d)
		}
		if m := c.next(left); match(m) {
			return m
		}
	}
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

// holdWriterLease takes, for the test, the lease a node's writer of table
// in database takes before storing, so that whatever the node or an import
// writes waits. It lives a minute between renewals, not the nodes' 3 s: a
// test process paused for seconds on a busy machine would otherwise lose
// it and let the writer through, and the test would blame the writer.
// Release lets the writer go; the test ends with it released.
func holdWriterLease(t testing.TB, redisAddr, prefix, database, table string) *lease.Lease {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	l, err := lease.NewRedis(rdb, lease.RedisConfig{Prefix: prefix, TTL: time.Minute}).Acquire(context.Background(), database+"."+table)
	if err != nil {
		rdb.Close()
		t.Fatalf("hold the writer's lease of %s: %v", table, err)
	}
	t.Cleanup(func() {
		l.Release()
		rdb.Close()
	})
	return l
}

// releaseHeld releases a lease holdWriterLease took, failing the test if
// it had been lost meanwhile: what the test saw while it believed it held
// the lease proves nothing then.
func releaseHeld(t testing.TB, l *lease.Lease) {
	t.Helper()
	if !l.Held() {
		t.Fatalf("the test's own hold on the lease %s lapsed: the machine paused it for over a minute", l.Name())
	}
	l.Release()
}
