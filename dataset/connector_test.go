package dataset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/devservices"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
)

// clock is the injected time of a test: it moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// vn2025 is the built-in hierarchy, whose communes of province 79 the
// rows name.
func vn2025(t *testing.T) *geo.Hierarchy {
	t.Helper()
	reg, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, ok := reg.Hierarchy("vn-2025")
	if !ok {
		t.Fatal("no hierarchy vn-2025")
	}
	return h
}

// enrolmentWith is the enrolment dataset, given per commune and year
// with Vietnamese columns, pulled by connector (JSON).
func enrolmentWith(connector string) string {
	return `{"id": "enrolment", "name_vi": "Tuyển sinh", "name_en": "School enrolment", "grain": "year", "level": "commune",
  "columns": {"unit": "Mã xã", "period": "Năm học"},
  "measures": [
    {"id": "pupils", "name_vi": "Học sinh", "name_en": "Pupils", "unit": "pupils", "column": "Số học sinh", "rollup": "sum", "over_time": "last"},
    {"id": "teachers", "name_vi": "Giáo viên", "name_en": "Teachers", "unit": "teachers", "column": "Số giáo viên", "rollup": "sum", "over_time": "last"}
  ],
  "connector": ` + connector + `}`
}

// connectorEnv is a node's datasets, with the definition given in force,
// and its connectors, on a fresh ClickHouse database and the clock.
type connectorEnv struct {
	ds    *Datasets
	c     *Connectors
	h     *geo.Hierarchy
	clock *clock
	env   map[string]string
}

func newConnectorEnv(t *testing.T, def string) *connectorEnv {
	t.Helper()
	h := vn2025(t)
	e := &connectorEnv{h: h, clock: &clock{t: time.Date(2025, 6, 15, 8, 0, 0, 0, time.UTC)}, env: map[string]string{}}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ds, err := New(Config{Values: ValuesConfig{Now: e.clock.Now}}, testenv.Store(t), storedDefs{{Kind: Kind, ID: "enrolment", Version: 1, Body: []byte(def)}}, h, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := ds.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := ds.Get("enrolment"); !ok {
		t.Fatalf("the definition is not in force (Parse refused it?): %v", func() error { _, err := Parse([]byte(def), h); return err }())
	}
	e.ds = ds
	e.c = e.node(t, lease.NewLocal(), 0)
	return e
}

// node is the connectors of another node of the same store: leases
// shared, the same clock, its own metrics.
func (e *connectorEnv) node(t *testing.T, leases Leases, tick time.Duration) *Connectors {
	t.Helper()
	c, err := NewConnectors(ConnectorsConfig{Lease: "test.dataset_connectors", Tick: tick, Timeout: 20 * time.Second, Location: time.UTC,
		Now: e.clock.Now, Getenv: func(k string) string { return e.env[k] }}, e.ds, e.h, leases, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *connectorEnv) runDue(t *testing.T) {
	t.Helper()
	if err := e.c.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// current is the values that count, as "unit year": {measure: value}.
func (e *connectorEnv) current(t *testing.T) map[string]map[string]float64 {
	t.Helper()
	d, _ := e.ds.Get("enrolment")
	values, err := e.ds.Current(context.Background(), d, nil, civil(1970, 1, 1), civil(2100, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, v := range values {
		k := fmt.Sprintf("%s %d", v.Unit, v.Period.Year())
		if out[k] == nil {
			out[k] = map[string]float64{}
		}
		out[k][v.Measure] = v.Value
	}
	return out
}

func (e *connectorEnv) uploads(t *testing.T) []Upload {
	t.Helper()
	ups, err := e.ds.Uploads(context.Background(), "enrolment", 100)
	if err != nil {
		t.Fatal(err)
	}
	return ups
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// pgExec runs statements on the department's database.
func pgExec(t *testing.T, dsn string, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// tuyenSinhQuery reads the department's table with Vietnamese names, a
// cast, a literal holding a colon and the two parameters.
const tuyenSinhQuery = `-- the years read: :from is in a comment, and stays there
SELECT ma_xa AS "Mã xã", nam_bat_dau AS "Năm học", hs::bigint AS "Số học sinh", gv AS "Số giáo viên"
FROM tuyen_sinh
WHERE nam_bat_dau >= :from AND nam_bat_dau < :to AND ghi_chu <> 'nháp:bỏ'
ORDER BY stt;`

// TestAPostgresConnectorStoresTheRightRowsAndRefusesTheBadOnes: a dataset
// pulled by a query of a PostgreSQL table (Vietnamese column names by AS,
// a DATE period, a NULL, a numeric) stores the rows of the two years read
// and refuses, each with its row and column, a unit that is not in the
// hierarchy and a date that starts no year; the run is one upload by the
// connector. Run again after the table changed, it replaces the corrected
// value, and the history keeps both.
func TestAPostgresConnectorStoresTheRightRowsAndRefusesTheBadOnes(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresDatabase(t)
	pgExec(t, dsn, `CREATE TABLE tuyen_sinh (stt int, ma_xa text, nam_bat_dau date, hs integer, gv numeric(8,1), ghi_chu text NOT NULL DEFAULT '')`)
	h := vn2025(t)
	communes := h.Select("commune", "79")
	a, b, c := communes[0].Code, communes[1].Code, communes[2].Code
	pgExec(t, dsn, `INSERT INTO tuyen_sinh VALUES
		(1, $1, '2025-01-01', 1200, 60, ''),
		(2, $2, '2025-01-01', 900, NULL, ''),
		(3, '99999', '2025-01-01', 10, 1, ''),
		(4, $1, '2024-01-01', 1000, 50.5, ''),
		(5, $3, '2025-03-01', 700, 20, ''),
		(6, $3, '2023-01-01', 650, 19, ''),
		(7, $3, '2025-01-01', 1, 1, 'nháp:bỏ')`, a, b, c)
	conn, _ := json.Marshal(Connector{Kind: ConnectorPostgres, DSN: dsn, PasswordEnv: "IOC_PG_EDU_PASSWORD", Query: tuyenSinhQuery})
	e := newConnectorEnv(t, enrolmentWith(string(conn)))
	e.env["IOC_PG_EDU_PASSWORD"] = "not asked: the test server trusts loopback"
	first := e.clock.Now()

	e.runDue(t)
	got := e.current(t)
	want := map[string]map[string]float64{
		a + " 2025": {"pupils": 1200, "teachers": 60},
		b + " 2025": {"pupils": 900},
		a + " 2024": {"pupils": 1000, "teachers": 50.5},
	}
	if asJSON(got) != asJSON(want) {
		t.Errorf("values stored:\n%s\nwant (2023 is not read, a NULL is no value, refused rows are left out):\n%s", asJSON(got), asJSON(want))
	}
	ups := e.uploads(t)
	if len(ups) != 1 {
		t.Fatalf("%d uploads recorded, want the run's one: %s", len(ups), asJSON(ups))
	}
	up := ups[0]
	if up.Source != "connector:postgres" || up.By != "connector" || up.Rows != 3 || up.Refused != 2 || up.Error != "" || !up.At.Equal(first) {
		t.Errorf("the run's upload: %s; want 3 rows stored and 2 refused, by the connector at %s", asJSON(up), first)
	}
	problems := map[string]string{}
	for _, p := range up.Problems {
		problems[fmt.Sprintf("%d %s", p.Line, p.Path)] = p.Error
	}
	if len(problems) != 2 || !strings.Contains(problems["3 Mã xã"], `"99999" is not in the hierarchy`) ||
		!strings.Contains(problems["5 Năm học"], "2025-03-01 is not the first day of a year") {
		t.Errorf("problems %s; want row 3's unit and row 5's period", asJSON(up.Problems))
	}
	st := e.c.Runs("enrolment")
	if st.LastRun == nil || !st.LastRun.Equal(first) || st.LastSuccess == nil || st.Rows != 3 || st.Refused != 2 || st.Error != "" ||
		st.Failures != 0 || st.Kind != ConnectorPostgres || st.Every != "1h0m0s" || st.NextRun == nil || !st.NextRun.Equal(first.Add(time.Hour)) {
		t.Errorf("Runs: %s", asJSON(st))
	}
	if n := testutil.ToFloat64(e.c.m.rows.WithLabelValues("enrolment", "stored")); n != 3 {
		t.Errorf("ioc_dataset_connector_rows_total{outcome=stored} = %v, want 3", n)
	}
	if n := testutil.ToFloat64(e.c.m.lastSuccess.WithLabelValues("enrolment")); n != float64(first.Unix()) {
		t.Errorf("ioc_dataset_connector_last_success_timestamp_seconds = %v, want %d", n, first.Unix())
	}

	// Not due within the hour: nothing runs.
	e.clock.Add(59 * time.Minute)
	e.runDue(t)
	if n := len(e.uploads(t)); n != 1 {
		t.Fatalf("%d uploads after a run not due, want 1", n)
	}

	// The department corrects a figure; the next run replaces it.
	pgExec(t, dsn, `UPDATE tuyen_sinh SET hs = 1250 WHERE ma_xa = $1 AND nam_bat_dau = '2025-01-01'`, a)
	e.clock.Add(time.Minute)
	e.runDue(t)
	if got := e.current(t)[a+" 2025"]; got["pupils"] != 1250 || got["teachers"] != 60 {
		t.Errorf("after the correction, %s 2025 = %v, want pupils 1250 and teachers 60", a, got)
	}
	history, err := e.ds.History(ctx, "enrolment", a, civil(2025, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != 2 || history[0].Values["pupils"] != 1200 || history[1].Values["pupils"] != 1250 || !history[1].Current ||
		history[1].Source != "connector:postgres" || history[1].By != "connector" {
		t.Errorf("history %s; want 1200 then 1250 (current), both by the connector", asJSON(history))
	}
	if n := testutil.ToFloat64(e.c.m.runs.WithLabelValues("enrolment", "ok")); n != 2 {
		t.Errorf("ioc_dataset_connector_runs_total{result=ok} = %v, want 2", n)
	}
	// The pulled values are the province's live figures (what snapshots,
	// live topics and map layers carry): its latest year, 2025, by hand:
	// pupils 1250 + 900, teachers 60 (b gave none).
	x, err := Live{Datasets: e.ds}.Extra(ctx, h, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]any{}
	for i, id := range x.IDs {
		if vs := x.Values["79"]; i < len(vs) && vs[i] != nil {
			live[id] = *vs[i]
		}
	}
	if want := `{"enrolment.pupils":2150,"enrolment.teachers":60}`; asJSON(live) != want {
		t.Errorf("the province's live figures: %s, want %s", asJSON(live), want)
	}
}

// TestAConnectorThatCannotConnectRecordsAFailedRun: a DSN whose port is
// closed fails the run whole: nothing is stored, the run is recorded with
// its error, Failing lists the dataset, failures count up, and another
// node reads the same from the store.
func TestAConnectorThatCannotConnectRecordsAFailedRun(t *testing.T) {
	port, err := devservices.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	conn, _ := json.Marshal(Connector{Kind: ConnectorPostgres, Every: "10m", DSN: fmt.Sprintf("postgres://ioc@127.0.0.1:%d/so_gd?sslmode=disable", port),
		Query: "SELECT 1 AS x"})
	e := newConnectorEnv(t, enrolmentWith(string(conn)))
	first := e.clock.Now()
	e.runDue(t)
	e.clock.Add(10 * time.Minute)
	e.runDue(t)

	if got := e.current(t); len(got) != 0 {
		t.Errorf("a failed run stored %s", asJSON(got))
	}
	ups := e.uploads(t)
	if len(ups) != 2 || ups[0].Source != "connector:postgres" || ups[0].Rows != 0 || !strings.Contains(ups[0].Error, "connect to the database") {
		t.Fatalf("uploads %s; want two failed runs recorded with why", asJSON(ups))
	}
	failing := e.c.Failing()
	st, ok := failing["enrolment"]
	if len(failing) != 1 || !ok || st.Failures != 2 || st.FailingSince == nil || !st.FailingSince.Equal(first) || st.LastSuccess != nil ||
		!strings.Contains(st.Error, "connect to the database") {
		t.Errorf("Failing: %s; want enrolment, failing twice since %s", asJSON(failing), first)
	}
	if got := e.c.Failures()["enrolment"]; got != st.Error {
		t.Errorf("Failures: %q, want the last run's error", got)
	}
	if n := testutil.ToFloat64(e.c.m.runs.WithLabelValues("enrolment", "failed")); n != 2 {
		t.Errorf("ioc_dataset_connector_runs_total{result=failed} = %v, want 2", n)
	}

	// Another node learns it from the store.
	other := e.node(t, lease.NewLocal(), 0)
	other.refresh(context.Background())
	ost := other.Runs("enrolment")
	if ost.Failures != 2 || ost.Error != ups[0].Error || ost.LastRun == nil || !ost.LastRun.Equal(first.Add(10*time.Minute)) ||
		ost.FailingSince == nil || !ost.FailingSince.Equal(first) || len(other.Failing()) != 1 {
		t.Errorf("another node reads %s", asJSON(ost))
	}
}

// TestAnHTTPConnectorReadsCSVAndRecordsAFailedAnswer: a CSV served over
// HTTP, asked for with the token of the node's environment and the
// periods read in the URL, is stored row by row as an upload; an answer
// of 500 fails the run whole and leaves the values as they were.
func TestAnHTTPConnectorReadsCSVAndRecordsAFailedAnswer(t *testing.T) {
	h := vn2025(t)
	communes := h.Select("commune", "79")
	a, b := communes[0].Code, communes[1].Code
	var mu sync.Mutex
	status := http.StatusOK
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, r.URL.RequestURI()+" "+r.Header.Get("Authorization"))
		if status != http.StatusOK {
			http.Error(w, "cơ sở dữ liệu bảo trì", status)
			return
		}
		w.Header().Set("Content-Type", "text/csv")
		fmt.Fprintf(w, "\ufeffMã xã,Năm học,Số học sinh,Số giáo viên\n%s,2025,1200,60\n%s,2025,\"1.234,5\",5\n%s,2024,800,40\n", a, b, b)
	}))
	defer srv.Close()
	conn, _ := json.Marshal(Connector{Kind: ConnectorHTTP, URL: srv.URL + "/tuyen-sinh.csv?tu={from}&den={to}", Format: FormatCSV, TokenEnv: "IOC_SOGD_TOKEN"})
	e := newConnectorEnv(t, enrolmentWith(string(conn)))
	e.env["IOC_SOGD_TOKEN"] = "bí-mật"

	requests := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), asked...)
	}
	e.runDue(t)
	if got := requests(); len(got) != 1 || got[0] != "/tuyen-sinh.csv?tu=2024&den=2025 Bearer bí-mật" {
		t.Errorf("asked %q; want the years 2024 to 2025, with the token", got)
	}
	want := map[string]map[string]float64{a + " 2025": {"pupils": 1200, "teachers": 60}, b + " 2024": {"pupils": 800, "teachers": 40}}
	if got := e.current(t); asJSON(got) != asJSON(want) {
		t.Errorf("values %s, want %s", asJSON(got), asJSON(want))
	}
	ups := e.uploads(t)
	if len(ups) != 1 || ups[0].Source != "connector:http" || ups[0].Rows != 2 || ups[0].Refused != 1 || len(ups[0].Problems) != 1 ||
		ups[0].Problems[0].Line != 3 || ups[0].Problems[0].Path != "Số học sinh" {
		t.Errorf("uploads %s; want 2 rows stored and line 3 refused for its decimal comma", asJSON(ups))
	}

	mu.Lock()
	status = http.StatusInternalServerError
	mu.Unlock()
	e.clock.Add(time.Hour)
	e.runDue(t)
	ups = e.uploads(t)
	if len(ups) != 2 || ups[0].Rows != 0 || !strings.Contains(ups[0].Error, "answered 500 Internal Server Error: cơ sở dữ liệu bảo trì") ||
		strings.Contains(ups[0].Error, "tu=") {
		t.Errorf("the failed run: %s; want the status and the answer's text, without the URL's query", asJSON(ups[0]))
	}
	if got := e.current(t); asJSON(got) != asJSON(want) {
		t.Errorf("after a failed run, values %s; want them as they were", asJSON(got))
	}
	if st := e.c.Runs("enrolment"); st.Failures != 1 || st.LastSuccess == nil || st.LastSuccess.Equal(e.clock.Now()) {
		t.Errorf("Runs: %s", asJSON(st))
	}

	// A missing token fails the run before anything is asked.
	delete(e.env, "IOC_SOGD_TOKEN")
	e.clock.Add(time.Hour)
	n := len(requests())
	e.runDue(t)
	if st := e.c.Runs("enrolment"); !strings.Contains(st.Error, "IOC_SOGD_TOKEN") || len(requests()) != n {
		t.Errorf("without the token: %s, %d requests more", st.Error, len(requests())-n)
	}
}

// TestAnHTTPAnswerTooLargeFailsTheRun: an answer past the bound is not
// read on, and the run fails saying so.
func TestAnHTTPAnswerTooLargeFailsTheRun(t *testing.T) {
	h := vn2025(t)
	a := h.Select("commune", "79")[0].Code
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Rows long enough that the bytes run out before MaxRows does.
		fmt.Fprintf(w, "Mã xã,Năm học,Số học sinh,Ghi chú\n")
		line := []byte(a + ",2025,1," + strings.Repeat("x", 300) + "\n")
		for written := 0; written <= MaxConnectorBody; written += len(line) {
			if _, err := w.Write(line); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	conn, _ := json.Marshal(Connector{Kind: ConnectorHTTP, URL: srv.URL, Format: FormatCSV})
	e := newConnectorEnv(t, enrolmentWith(string(conn)))
	e.runDue(t)
	if st := e.c.Runs("enrolment"); !strings.Contains(st.Error, "more than 64 MiB") {
		t.Errorf("Runs: %s; want the answer refused as too large", asJSON(st))
	}
	if got := e.current(t); len(got) != 0 {
		t.Errorf("stored %d units' years", len(got))
	}
}

// TestOnlyTheLeaseHolderRuns: two nodes' connectors campaign for one
// lease; one runs the connector, once, and the other learns of the run
// from the store.
func TestOnlyTheLeaseHolderRuns(t *testing.T) {
	h := vn2025(t)
	a := h.Select("commune", "79")[0].Code
	var mu sync.Mutex
	asked := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked++
		mu.Unlock()
		fmt.Fprintf(w, "[{\"Mã xã\": %q, \"Năm học\": 2025, \"Số học sinh\": 5}]", a)
	}))
	defer srv.Close()
	conn, _ := json.Marshal(Connector{Kind: ConnectorHTTP, URL: srv.URL, Format: FormatJSON})
	e := newConnectorEnv(t, enrolmentWith(string(conn)))
	leases := lease.NewLocal()
	nodes := []*Connectors{e.node(t, leases, 5*time.Millisecond), e.node(t, leases, 5*time.Millisecond)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			if err := n.Run(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		var states []string
		for _, n := range nodes {
			st := n.Runs("enrolment")
			if st.LastSuccess == nil {
				return false, "a node knows no run: " + asJSON(st)
			}
			states = append(states, asJSON(st))
		}
		return true, strings.Join(states, "; ")
	})
	cancel()
	wg.Wait()
	mu.Lock()
	n := asked
	mu.Unlock()
	if ups := e.uploads(t); len(ups) != 1 || n != 1 {
		t.Errorf("%d runs recorded and %d requests; want one of each: only the holder runs, and the connector is not due again", len(ups), n)
	}
	if got := e.current(t); got[a+" 2025"]["pupils"] != 5 {
		t.Errorf("values %s", asJSON(got))
	}
}

// TestConnectorDefinitionsAreChecked: each wrong field of a connector is
// named by its path.
func TestConnectorDefinitionsAreChecked(t *testing.T) {
	h := vn2025(t)
	for _, c := range []struct {
		connector string
		path      string
		says      string
	}{
		{`{"kind": "ftp"}`, "connector.kind", "not a kind of connector"},
		{`{"kind": "http", "url": "https://x", "format": "csv", "every": "30s"}`, "connector.every", "out of range"},
		{`{"kind": "http", "url": "https://x", "format": "csv", "every": "745h"}`, "connector.every", "out of range"},
		{`{"kind": "http", "url": "https://x", "format": "csv", "every": "1d"}`, "connector.every", "not a duration"},
		{`{"kind": "http", "url": "https://x", "format": "csv", "periods": 121}`, "connector.periods", "out of range"},
		{`{"kind": "http", "url": "ftp://x", "format": "csv"}`, "connector.url", "not an http or https URL"},
		{`{"kind": "http", "url": "https://u:p@x", "format": "csv"}`, "connector.url", "holds credentials"},
		{`{"kind": "http", "url": "https://x", "format": "xml"}`, "connector.format", "not a format"},
		{`{"kind": "http", "url": "https://x", "format": "csv", "token_env": "IOC-X"}`, "connector.token_env", "not the name of an environment variable"},
		{`{"kind": "http", "url": "https://x", "format": "csv", "query": "SELECT 1"}`, "connector.query", "field of a postgres connector"},
		{`{"kind": "postgres", "query": "SELECT 1"}`, "connector.dsn", "give the database"},
		{`{"kind": "postgres", "dsn": "postgres://u:secret@db/x", "query": "SELECT 1"}`, "connector.dsn", "holds a password"},
		{`{"kind": "postgres", "dsn": "postgres://u@db/x?password=secret", "query": "SELECT 1"}`, "connector.dsn", "holds a password"},
		{`{"kind": "postgres", "dsn": "mysql://u@db/x", "query": "SELECT 1"}`, "connector.dsn", "not a PostgreSQL URL"},
		{`{"kind": "postgres", "dsn": "postgres://u@db/x"}`, "connector.query", "give the query"},
		{`{"kind": "postgres", "dsn": "postgres://u@db/x", "query": "DELETE FROM t"}`, "connector.query", `at character 1: the query starts with "DELETE"`},
		{`{"kind": "postgres", "dsn": "postgres://u@db/x", "query": "SELECT 1; DROP TABLE t"}`, "connector.query", "at character 11: a second statement"},
		{`{"kind": "postgres", "dsn": "postgres://u@db/x", "query": "SELECT * FROM t WHERE d >= :tu"}`, "connector.query", "at character 28: :tu is not a parameter"},
		{`{"kind": "postgres", "dsn": "postgres://u@db/x", "query": "SELECT 1", "url": "https://x"}`, "connector.url", "field of a http connector"},
	} {
		_, err := Parse([]byte(enrolmentWith(c.connector)), h)
		var inv *InvalidError
		if !errors.As(err, &inv) {
			t.Errorf("%s: Parse accepts it", c.connector)
			continue
		}
		found := false
		for _, p := range inv.Problems {
			found = found || p.Path == c.path && strings.Contains(p.Error, c.says)
		}
		if !found {
			t.Errorf("%s: %v; want %s: …%s…", c.connector, err, c.path, c.says)
		}
	}
	d, err := Parse([]byte(enrolmentWith(`{"kind": "postgres", "dsn": "postgres://u@db/x", "periods": 3, "query": "SELECT 1"}`)), h)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Connector.every(); got != time.Hour {
		t.Errorf("every %s, want the default 1h", got)
	}
	first, last := d.Connector.window(Quarter, time.Date(2025, 2, 10, 0, 0, 0, 0, time.UTC))
	if first != civil(2024, 7, 1) || last != civil(2025, 1, 1) {
		t.Errorf("3 quarters read at 2025-02-10: %s to %s, want 2024-Q3 to 2025-Q1", first, last)
	}
}

// TestNamedParametersBecomePositional: :from and :to become $1 and $2 as
// DATEs, numbered in that order and only if named; literals, quoted
// names, comments and casts stay as written; any other name, a $1 and a
// second statement are refused with their position.
func TestNamedParametersBecomePositional(t *testing.T) {
	for _, c := range []struct{ in, out, names string }{
		{"SELECT * FROM t WHERE d >= :from AND d < :to", "SELECT * FROM t WHERE d >= $1::date AND d < $2::date", "from to"},
		{"select * from t where d < :to and d >= :from", "select * from t where d < $2::date and d >= $1::date", "from to"},
		{"SELECT * FROM t WHERE d < :to", "SELECT * FROM t WHERE d < $1::date", "to"},
		{"SELECT 'a:b', x::date, E'\\':x', \"c:d\" FROM t WHERE y = :from::date",
			"SELECT 'a:b', x::date, E'\\':x', \"c:d\" FROM t WHERE y = $1::date::date", "from"},
		{"  /* :to */ WITH y AS (SELECT $q$:to$q$ AS s) SELECT s -- :from\nFROM y;  ",
			"  /* :to */ WITH y AS (SELECT $q$:to$q$ AS s) SELECT s -- :from\nFROM y", ""},
		{"SELECT arr[1:2], 'it''s :to' FROM t", "SELECT arr[1:2], 'it''s :to' FROM t", ""},
		{"SELECT n AS \"Năm\" FROM t WHERE d >= :from", "SELECT n AS \"Năm\" FROM t WHERE d >= $1::date", "from"},
	} {
		out, names, err := bindQuery(c.in)
		if err != nil || out != c.out || strings.Join(names, " ") != c.names {
			t.Errorf("bindQuery(%q) = %q, %q, %v; want %q, %q", c.in, out, names, err, c.out, c.names)
		}
	}
	for _, c := range []struct{ in, err string }{
		{"SELECT * FROM t WHERE d >= :other", "at character 28: :other is not a parameter"},
		{"SELECT 'Năm' AS x WHERE :năm = 1", "at character 25: :năm is not a parameter"},
		{"SELECT * FROM t WHERE d >= $1", "at character 28: $1 is a positional parameter"},
		{"SELECT 1; SELECT 2", "at character 11: a second statement"},
		{"UPDATE t SET x = 1", "at character 1: the query starts with \"UPDATE\""},
		{"-- only a comment", "at character 1: the query is empty"},
		{"SELECT 'open", "at character 8: the string opened here is not closed"},
		{"SELECT /* open", "at character 8: the comment opened here is not closed"},
		{"SELECT $x$ open", "at character 8: the string quoted by $x$ is not closed"},
	} {
		_, _, err := bindQuery(c.in)
		var qe *QueryError
		if !errors.As(err, &qe) || !strings.HasPrefix(err.Error(), c.err) {
			t.Errorf("bindQuery(%q): %v; want %s…", c.in, err, c.err)
		}
	}
}

// TestDecodeRecordsChecksRowsAsUploads: records go through the checks of
// an upload's rows: a number of any type is a value, nil none, a date in
// the period column is the period it starts and any other date is
// refused, NaN is no number, and a column the definition does not read is
// a problem of the result.
func TestDecodeRecordsChecksRowsAsUploads(t *testing.T) {
	h := vn2025(t)
	a := h.Select("commune", "79")[0].Code
	d, err := Parse([]byte(enrolmentJSON), h)
	if err != nil {
		t.Fatal(err)
	}
	records := [][]any{
		{a, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), int32(1200), float64(60), "x"},
		{a, int64(2024), nil, float32(50), nil},
		{a, time.Date(2023, 1, 1, 12, 0, 0, 0, time.UTC), int64(1), int64(1), nil},
		{a, "2022", "NaN", 3.0, nil},
		{a, "2021", nil, nil, nil},
	}
	i := 0
	dec, err := DecodeRecords(d, []string{"unit", "period", "pupils", "teachers", "ghi_chu"}, func() ([]any, error) {
		if i == len(records) {
			return nil, io.EOF
		}
		i++
		return records[i-1], nil
	}, HierarchyUnits{H: h})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range dec.Rows {
		got = append(got, fmt.Sprintf("%d %s %d %v %v", r.Line, r.Unit, r.Period.Year(), r.Values, r.Present))
	}
	want := []string{
		fmt.Sprintf("1 %s 2025 [1200 60] [true true]", a),
		fmt.Sprintf("2 %s 2024 [0 50] [false true]", a),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var probs []string
	for _, p := range dec.Problems {
		probs = append(probs, p.String())
	}
	wantProbs := []string{
		`ghi_chu: column 5 is not in the definition and was left out: map it in measures[].column if it is a measure`,
		`line 3: period: 2023-01-01T12:00:00Z is not the first day of a year: give the period's first day (2023-01-01) or the period as YYYY, e.g. 2025`,
		`line 4: pupils: "NaN" is not a number: write digits with '.' as the decimal point and no thousands separator, e.g. 12345.6`,
		`line 5: no measure given: a row carries at least one of pupils, teachers`,
	}
	if strings.Join(probs, "\n") != strings.Join(wantProbs, "\n") || dec.Refused != 3 {
		t.Errorf("problems (%d refused):\n%s\nwant (3 refused):\n%s", dec.Refused, strings.Join(probs, "\n"), strings.Join(wantProbs, "\n"))
	}
	if _, err := DecodeRecords(d, []string{"unit", "pupils"}, nil, HierarchyUnits{H: h}); err == nil || !strings.Contains(err.Error(), "the result has no column period") {
		t.Errorf("a result without the period column: %v", err)
	}
}
