package main

// The fault suite: real iocd processes and real servers, load with unique
// event ids from a careful client that retries until acknowledged (and
// sends some bodies again once acknowledged, as at-least-once clients do), a fault
// at the worst moment, and then exact counts: acknowledged ids == distinct
// stored ids == every KPI window, series step and rollup table, with no
// duplicate. A negative control (iocd built without the duplicate check)
// shows that the checks fail when the write path is wrong.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/devservices"
	"github.com/openioc/ioc/internal/testenv"
)

// faultAreas are communes of province 79 the load files dossiers in.
var faultAreas = []string{"25747", "25750", "26740", "26743"}

// provinceOf names the province of each commune a load files dossiers in.
var provinceOf = map[string]string{"25747": "79", "25750": "79", "26740": "79", "26743": "79", "00004": "01", "00008": "01"}

// ackedEvent is an event the server acknowledged.
type ackedEvent struct {
	status   string
	at       time.Time
	province string
}

// attempt is one request of the load and what it met.
type attempt struct {
	target string
	at     time.Time
	took   time.Duration
	code   int    // 0: no answer
	err    string // why there was no answer
	dial   bool   // the request was never sent: the node was not listening
}

// dossierLoad is a careful client: each worker posts NDJSON bodies of new
// dossiers (each received, half of them resolved on time), and retries a
// body until it is acknowledged: on 503 after Retry-After (capped at 2 s),
// on a node that does not answer at once on the next node; every tenth body
// it sends once more after its acknowledgement.
type dossierLoad struct {
	t       *testing.T
	targets []string
	areas   []string // communes the dossiers are filed in, in turn
	prefix  string
	client  *http.Client
	// patience is how long a body is sent again before the load gives
	// up on it and fails the test.
	patience time.Duration

	mu       sync.Mutex
	targetMu sync.Mutex
	acked    map[string]ackedEvent
	attempts []attempt
	next     int

	stop chan struct{}
	wg   sync.WaitGroup
}

func startLoad(t *testing.T, workers int, targets ...string) *dossierLoad {
	return startLoadIn(t, faultAreas, 2*time.Minute, workers, targets...)
}

// startLoadIn is startLoad filing dossiers in areas (of provinceOf) and
// giving up on a body after patience.
func startLoadIn(t *testing.T, areas []string, patience time.Duration, workers int, targets ...string) *dossierLoad {
	l := &dossierLoad{t: t, targets: targets, areas: areas, patience: patience, prefix: fmt.Sprintf("f%d", time.Now().UnixNano()%1e9),
		// A fresh connection per request: a request is either refused
		// before it is sent or answered, never caught on an idle
		// keep-alive connection the server is closing.
		client: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		acked:  map[string]ackedEvent{}, stop: make(chan struct{})}
	for w := range workers {
		l.wg.Add(1)
		go l.work(w)
	}
	t.Cleanup(l.halt)
	return l
}

// body builds the n-th body: 10 dossiers, each received, the even ones
// also resolved an hour before their deadline.
func (l *dossierLoad) body(n int) ([]byte, []string, []ackedEvent) {
	now := time.Now().Truncate(time.Second)
	var b bytes.Buffer
	var ids []string
	var evs []ackedEvent
	for k := range 10 {
		dossier := fmt.Sprintf("%s-%d-%d", l.prefix, n, k)
		area := l.areas[(n+k)%len(l.areas)]
		received := now.Add(-2 * time.Minute)
		add := func(status string, at time.Time) {
			e := map[string]any{"event_id": dossier + "-" + status, "dossier_id": dossier, "procedure_code": "1.004227",
				"sector": "land", "area_code": area, "channel": "online", "status": status,
				"occurred_at": at.In(hcm).Format(time.RFC3339), "received_at": received.In(hcm).Format(time.RFC3339),
				"due_at": now.Add(48 * time.Hour).In(hcm).Format(time.RFC3339)}
			line, _ := json.Marshal(e)
			b.Write(line)
			b.WriteByte('\n')
			ids = append(ids, dossier+"-"+status)
			evs = append(evs, ackedEvent{status: status, at: at, province: provinceOf[area]})
		}
		add("received", received)
		if k%2 == 0 {
			add("resolved", now.Add(-time.Minute))
		}
	}
	return b.Bytes(), ids, evs
}

func (l *dossierLoad) work(w int) {
	defer l.wg.Done()
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		l.mu.Lock()
		n := l.next
		l.next++
		l.mu.Unlock()
		body, ids, evs := l.body(n)
		target := w % len(l.targets)
		if !l.deliver(n, body, &target) {
			return
		}
		l.mu.Lock()
		for i, id := range ids {
			l.acked[id] = evs[i]
		}
		l.mu.Unlock()
		// Every tenth body is sent again once acknowledged, as a client
		// delivering at least once does when it loses an answer: each of
		// its events must still count once.
		if n%10 == 0 && !l.deliver(n, body, &target) {
			return
		}
	}
}

// deliver sends body n until it is acknowledged, moving to the next target
// when one cannot be reached; false means it gave up after l.patience or
// the load was halted.
func (l *dossierLoad) deliver(n int, body []byte, target *int) bool {
	for deadline := time.Now().Add(l.patience); ; {
		if time.Now().After(deadline) {
			l.t.Errorf("body %d not acknowledged within %s", n, l.patience)
			return false
		}
		a, wait := l.post(l.targetURL(*target), body)
		if a.code == http.StatusAccepted {
			return true
		}
		if a.code == 0 {
			*target = (*target + 1) % len(l.targets)
		}
		// The client's back-off before it retries; halting the load
		// ends it at once.
		select {
		case <-l.stop:
			return false
		case <-time.After(wait):
		}
	}
}

func (l *dossierLoad) targetURL(i int) string {
	l.targetMu.Lock()
	defer l.targetMu.Unlock()
	return l.targets[i]
}

// post sends one body and records the attempt; it returns how long to wait
// before trying again.
func (l *dossierLoad) post(target string, body []byte) (attempt, time.Duration) {
	a := attempt{target: target, at: time.Now()}
	req, _ := http.NewRequest("POST", target+"/api/v1/ingest/dossiers", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := l.client.Do(req)
	a.took = time.Since(a.at)
	wait := 50 * time.Millisecond
	if err != nil {
		a.err = err.Error()
		var op *net.OpError
		a.dial = errors.As(err, &op) && op.Op == "dial"
	} else {
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		a.code = resp.StatusCode
		switch resp.StatusCode {
		case http.StatusAccepted:
			var r ingestReply
			if err := json.Unmarshal(raw, &r); err != nil || r.Rejected != 0 {
				l.t.Errorf("a body of valid events answered %s", raw)
			}
		case http.StatusServiceUnavailable:
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
				wait = min(time.Duration(s)*time.Second, 2*time.Second)
			}
		default:
			l.t.Errorf("ingest answered %d %s", resp.StatusCode, raw)
		}
	}
	l.mu.Lock()
	l.attempts = append(l.attempts, a)
	l.mu.Unlock()
	return a, wait
}

// count is how many events are acknowledged so far.
func (l *dossierLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// refusedSince counts the requests answered 503 since t.
func (l *dossierLoad) refusedSince(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.attempts {
		if a.code == http.StatusServiceUnavailable && !a.at.Before(t) {
			n++
		}
	}
	return n
}

// waitAcked waits until n more events than now are acknowledged.
func (l *dossierLoad) waitAcked(n int, d time.Duration) {
	l.t.Helper()
	want := l.count() + n
	eventually(l.t, d, func() (bool, string) {
		return l.count() >= want, fmt.Sprintf("%d events acknowledged, want %d", l.count(), want)
	})
}

// halt stops taking new bodies and waits until every body in flight is
// acknowledged.
func (l *dossierLoad) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// faultDB reads a node's database directly.
type faultDB struct {
	t     *testing.T
	addr  string
	store *chstore.Store
}

func openFaultDB(t *testing.T, addr, db string) faultDB {
	t.Helper()
	return openFaultStore(t, chstore.Config{Addr: addr, Database: db})
}

// openFaultStore is openFaultDB with the store's whole configuration: on a
// cluster, its servers and name.
func openFaultStore(t *testing.T, cfg chstore.Config) faultDB {
	t.Helper()
	addr := cfg.Addr
	s, err := chstore.Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return faultDB{t: t, addr: addr, store: s}
}

// copies counts stored dossier events beyond the first of each id.
func (f faultDB) copies() uint64 {
	var n uint64
	_ = f.store.Conn().QueryRow(context.Background(), "SELECT count() - uniqExact(hierarchy, dossier_id, event_id) FROM "+
		f.store.Database()+".dossier_history").Scan(&n)
	return n
}

// waitFinished waits until every batch in the journal is finished.
func (f faultDB) waitFinished(d time.Duration) {
	f.t.Helper()
	eventually(f.t, d, func() (bool, string) {
		// Each is named with its writer's node and when it began, for the
		// node's log.
		var left []struct {
			Kind  string    `ch:"kind"`
			Batch uint64    `ch:"batch_id"`
			Nodes []string  `ch:"nodes"`
			Begun time.Time `ch:"begun"`
		}
		err := f.store.Conn().Select(context.Background(), &left, "SELECT kind, batch_id, groupUniqArray(node) AS nodes, min(created_at) AS begun FROM "+
			f.store.Database()+".ingest_journal GROUP BY kind, batch_id HAVING max(state) = 1 ORDER BY begun")
		var names []string
		for _, b := range left {
			names = append(names, fmt.Sprintf("%s batch %d of %v begun %s", b.Kind, b.Batch, b.Nodes, b.Begun.UTC().Format(time.RFC3339)))
		}
		return err == nil && len(left) == 0, fmt.Sprintf("%d unfinished batches (%v): %s", len(left), err, strings.Join(names, "; "))
	})
}

// exactness compares what the load had acknowledged with what is stored,
// every live window, the series by hour and day, and every rollup; it
// returns what differs, and the figures for the report.
func exactness(t *testing.T, n *node, db faultDB, l *dossierLoad) (problems []string, stats string) {
	t.Helper()
	ctx := context.Background()
	l.mu.Lock()
	acked := maps2(l.acked)
	l.mu.Unlock()

	rows, err := db.store.Conn().Query(ctx, "SELECT event_id, count() FROM "+db.store.Database()+
		".dossier_history WHERE hierarchy = 'vn-2025' AND startsWith(dossier_id, ?) GROUP BY event_id", l.prefix+"-")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]uint64{}
	var copies uint64
	for rows.Next() {
		var id string
		var c uint64
		if err := rows.Scan(&id, &c); err != nil {
			t.Fatal(err)
		}
		stored[id] = c
		copies += c - 1
	}
	rows.Close()
	if copies > 0 {
		problems = append(problems, fmt.Sprintf("%d events stored more than once", copies))
	}
	missing := 0
	for id := range acked {
		if _, ok := stored[id]; !ok {
			missing++
		}
	}
	if missing > 0 {
		problems = append(problems, fmt.Sprintf("%d acknowledged events not stored", missing))
	}
	if extra := len(stored) - (len(acked) - missing); extra != 0 {
		// Stored without an acknowledgement: the client stopped retrying a
		// body that was in fact stored. The load never does.
		problems = append(problems, fmt.Sprintf("%d stored events never acknowledged", extra))
	}

	provinces := map[string]bool{}
	for _, e := range acked {
		provinces[e.province] = true
	}
	var received int
	for _, e := range acked {
		if e.status == "received" {
			received++
		}
	}
	for _, p := range slices.Sorted(maps.Keys(provinces)) {
		problems = append(problems, provinceExactness(n, p, acked)...)
	}
	// Every rollup against the stored records.
	var out bytes.Buffer
	if err := verify([]string{"--clickhouse-addr", db.addr, "--clickhouse-database", db.store.Database(), "--clickhouse-cluster", db.store.Cluster(),
		"--confirm", "0"}, &out); err != nil {
		problems = append(problems, fmt.Sprintf("iocd verify: %v\n%s", err, out.String()))
	}
	return problems, fmt.Sprintf("%d events acknowledged, %d stored (%d copies), %d dossiers received in every window", len(acked), len(stored), copies, received)
}

// provinceExactness compares every live window and the series by hour and
// day of a province with the events of it acknowledged.
func provinceExactness(n *node, province string, acked map[string]ackedEvent) (problems []string) {
	now := time.Now()
	starts := map[string]time.Time{
		"today": time.Date(now.In(hcm).Year(), now.In(hcm).Month(), now.In(hcm).Day(), 0, 0, 0, 0, hcm),
		"24h":   now.Add(-24 * time.Hour), "7d": now.Add(-7 * 24 * time.Hour), "30d": now.Add(-30 * 24 * time.Hour),
	}
	for _, w := range []string{"today", "24h", "7d", "30d"} {
		var received, resolved int
		for _, e := range acked {
			if e.province == province && !e.at.Before(starts[w]) {
				if e.status == "received" {
					received++
				} else {
					resolved++
				}
			}
		}
		s := n.kpis(province, w)
		got := [3]float64{num(s.KPIs["dossiers_received"]), num(s.KPIs["dossiers_resolved"]), num(s.KPIs["dossiers_on_time"])}
		if got != [3]float64{float64(received), float64(resolved), float64(resolved)} {
			problems = append(problems, fmt.Sprintf("%s, window %s: received, resolved, on time %v, want %d, %d, %d", province, w, got, received, resolved, resolved))
		}
	}
	// The series, by hour and by day, over the days the load ran.
	var received int
	for _, e := range acked {
		if e.province == province && e.status == "received" {
			received++
		}
	}
	from, to := now.In(hcm).AddDate(0, 0, -1).Format("2006-01-02"), now.In(hcm).AddDate(0, 0, 1).Format("2006-01-02")
	for _, step := range []string{"hour", "day"} {
		var s struct {
			Points []struct {
				Value *float64 `json:"value"`
			} `json:"points"`
		}
		if code := n.get("/api/v1/kpis/dossiers_received/series?area="+province+"&step="+step+"&from="+from+"&to="+to, adminToken, &s); code != 200 {
			problems = append(problems, fmt.Sprintf("%s, series by %s: status %d", province, step, code))
			continue
		}
		var sum float64
		for _, p := range s.Points {
			if p.Value != nil {
				sum += *p.Value
			}
		}
		if sum != float64(received) {
			problems = append(problems, fmt.Sprintf("%s, series by %s: %v received, want %d", province, step, sum, received))
		}
	}
	return problems
}

func maps2[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// metricValue reads one series of a node's /metrics; 0 when absent.
func metricValue(t *testing.T, n *node, series string) float64 {
	t.Helper()
	resp := n.do("GET", "/metrics", adminToken, "", nil)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics answered %d: %.300s", resp.StatusCode, raw)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// partsDir is where ClickHouse keeps the parts of a table.
func partsDir(t *testing.T, ch *devservices.Server, db, table string) string {
	t.Helper()
	for _, d := range []string{filepath.Join(ch.Dir, "data", "data", db, table), filepath.Join(ch.Dir, "data", db, table)} {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
	}
	t.Fatalf("no directory of %s.%s under %s", db, table, ch.Dir)
	return ""
}

// killOnNextPart kills ClickHouse with SIGKILL the moment a new insert part
// of the table is renamed into place: the insert has landed and its answer
// is about to be sent, or being sent. The channel is closed once it is dead.
func killOnNextPart(t *testing.T, ch *devservices.Server, dir string) <-chan struct{} {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_MOVED_TO); err != nil {
		syscall.Close(fd)
		t.Fatalf("watch %s: %v", dir, err)
	}
	killed := make(chan struct{})
	go func() {
		defer syscall.Close(fd)
		buf := make([]byte, 64<<10)
		for {
			n, err := syscall.Read(fd, buf)
			if err != nil {
				return
			}
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				nameLen := int(binary.LittleEndian.Uint32(buf[off+12 : off+16]))
				name := strings.TrimRight(string(buf[off+syscall.SizeofInotifyEvent:off+syscall.SizeofInotifyEvent+nameLen]), "\x00")
				off += syscall.SizeofInotifyEvent + nameLen
				// tmp_insert_… becomes <partition>_<n>_<n>_0: a new insert's part.
				if !strings.HasPrefix(name, "tmp") && strings.HasSuffix(name, "_0") {
					ch.Kill()
					close(killed)
					return
				}
			}
		}
	}()
	return killed
}

// killAfterLateInsert makes an insert into dir's table land after its
// client gave up, then kills ClickHouse: it stops the server (SIGSTOP) the
// moment the insert begins writing its part, waits until the node counts
// the flush as failed (its time is up), lets the server go on so that the
// part lands with nobody to answer, and kills it once it has. Should the
// part land before the server is stopped, it kills at once, as
// killOnNextPart does. It returns when ClickHouse is dead.
func killAfterLateInsert(t *testing.T, p *process, ch *devservices.Server, dir string) {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE|syscall.IN_MOVED_TO); err != nil {
		syscall.Close(fd)
		t.Fatalf("watch %s: %v", dir, err)
	}
	failed := func() float64 {
		return metricValue(t, p.node(), `ioc_ingest_flush_errors_total{table="dossier_history"}`)
	}
	before := failed()
	frozen, landed := make(chan struct{}), make(chan struct{})
	go func() {
		defer syscall.Close(fd)
		defer close(landed)
		buf := make([]byte, 64<<10)
		stopped := false
		for {
			n, err := syscall.Read(fd, buf)
			if err != nil {
				return
			}
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				mask := binary.LittleEndian.Uint32(buf[off+4 : off+8])
				nameLen := int(binary.LittleEndian.Uint32(buf[off+12 : off+16]))
				name := strings.TrimRight(string(buf[off+syscall.SizeofInotifyEvent:off+syscall.SizeofInotifyEvent+nameLen]), "\x00")
				off += syscall.SizeofInotifyEvent + nameLen
				switch {
				case !stopped && mask&syscall.IN_CREATE != 0 && strings.HasPrefix(name, "tmp_insert"):
					_ = syscall.Kill(ch.PID, syscall.SIGSTOP)
					stopped = true
					close(frozen)
				case mask&syscall.IN_MOVED_TO != 0 && !strings.HasPrefix(name, "tmp") && strings.HasSuffix(name, "_0"):
					return
				}
			}
		}
	}()
	select {
	case <-frozen:
		eventually(t, 60*time.Second, func() (bool, string) {
			return failed() > before, "the node did not give up the insert ClickHouse holds"
		})
		_ = syscall.Kill(ch.PID, syscall.SIGCONT)
		select {
		case <-landed:
		case <-time.After(60 * time.Second):
			t.Fatal("the held insert did not land within 60s of ClickHouse going on")
		}
		t.Log("an insert into dossier_history landed after the node had given up on it")
	case <-landed:
		t.Log("an insert into dossier_history landed before ClickHouse could be stopped; killed at once")
	case <-time.After(60 * time.Second):
		t.Fatal("no insert into dossier_history within 60s")
	}
	ch.Kill()
}

// killAt are the moments a kill lands, round after round: once a batch's
// raw rows landed after the node gave up on them (killAfterLateInsert), and when one of its rollups has landed and others may not
// have (the moment that made the views of earlier releases count a retried
// batch twice).
var killAt = []string{"dossier_history", "dossier_flow_hour", "dossier_flow_month"}

// killClickHouseMidFlush runs the load against a node on ch, and kills
// ClickHouse rounds times, each the moment a part of the round's table
// lands, restarting it each time; stop, when set, ends the rounds early. It
// returns the server ClickHouse runs as at the end.
func killClickHouseMidFlush(t *testing.T, p *process, ch *devservices.Server, db string, l *dossierLoad, rounds int, stop func() bool) *devservices.Server {
	t.Helper()
	for r := range rounds {
		table := killAt[r%len(killAt)]
		dir := partsDir(t, ch, db, table)
		l.waitAcked(200, 90*time.Second)
		if table == "dossier_history" {
			// The raw rows land after the node gave up on them: the
			// answer is lost, and the rows arrive after the failure.
			killAfterLateInsert(t, p, ch, dir)
		} else {
			killed := killOnNextPart(t, ch, dir)
			select {
			case <-killed:
			case <-time.After(60 * time.Second):
				t.Fatalf("round %d: no insert into %s within 60s", r+1, table)
			}
		}
		ch = testenv.RestartClickHouse(t, ch)
		p.waitReady(60 * time.Second)
		if stop != nil && stop() {
			break
		}
	}
	return ch
}

// clickHouseKills runs the ClickHouse scenario against a build of iocd (bin,
// empty for the usual one): up to rounds kills mid-flush, fewer when stop
// says so, then the load goes on until it is acknowledged; it returns what
// the checks found, the figures, and the batches recovery finished.
func clickHouseKills(t *testing.T, bin, name string, rounds int, stop func(faultDB) bool) (problems []string, stats string, recovered float64) {
	t.Helper()
	ch := testenv.StartClickHouse(t)
	env := processEnv(t)
	db := testenv.DatabaseOn(t, ch.Addr)
	env["IOC_CLICKHOUSE_ADDR"], env["IOC_CLICKHOUSE_DATABASE"] = ch.Addr, db
	env["IOC_INGEST_FLUSH_TIMEOUT"] = "5s"
	p := startBinary(t, bin, name, env)
	l := startLoad(t, 4, p.base)
	var check func() bool
	if stop != nil {
		check = func() bool { return stop(openFaultDB(t, ch.Addr, db)) }
	}
	ch = killClickHouseMidFlush(t, p, ch, db, l, rounds, check)
	l.waitAcked(200, 90*time.Second) // and on it goes
	l.halt()
	fdb := openFaultDB(t, ch.Addr, db)
	fdb.waitFinished(60 * time.Second)
	problems, stats = exactness(t, p.node(), fdb, l)
	return problems, stats, metricValue(t, p.node(), `ioc_ingest_recovered_batches_total{kind="dossier"}`)
}

// TestFaultClickHouseKilledMidFlush kills ClickHouse with SIGKILL three
// times mid-flush, under load from a careful client: the moment a batch's
// raw rows land, and twice the moment one of its rollups lands while others
// may not have. After each restart the load goes on. Every acknowledged
// event is stored once, and every window, series step and rollup counts
// each once. (Against the release before the exact write path, the second
// kill made every window count 1000 dossiers received for 840 sent.)
func TestFaultClickHouseKilledMidFlush(t *testing.T) {
	runsBesideOthers(t)
	problems, stats, recovered := clickHouseKills(t, "", "iocd", 3, nil)
	for _, pr := range problems {
		t.Error(pr)
	}
	if recovered == 0 {
		t.Error("no batch was left unfinished by the kills: they did not land mid-flush")
	}
	t.Logf("ClickHouse killed 3 times mid-flush: %s; %v batches finished by recovery", stats, recovered)
}

// TestFaultSuiteCatchesAWriterWithoutTheDuplicateCheck is the negative
// control: the same scenario against iocd built without the duplicate
// check must fail the checks above. The load resends every tenth body once
// acknowledged, which such a writer stores again; kills alone rarely show
// it, since the node settles a late batch before its client would resend
// it. It kills ClickHouse until an event is stored twice (up to twelve
// times: the copies of dossier_history merge away, so a round may miss
// them), and the checks must find what went wrong.
func TestFaultSuiteCatchesAWriterWithoutTheDuplicateCheck(t *testing.T) {
	runsBesideOthers(t)
	problems, stats, _ := clickHouseKills(t, controlBinary(t), "iocd-without-duplicate-check", 12,
		func(db faultDB) bool { return db.copies() > 0 })
	if len(problems) == 0 {
		t.Fatalf("without the duplicate check the suite found nothing wrong (%s): it cannot tell a broken write path", stats)
	}
	t.Logf("without the duplicate check: %s; the suite found: %s", stats, strings.Join(problems, "; "))
}

// TestFaultNodeKilledFiveTimesDuringIngest runs two nodes sharing Redis and
// ClickHouse under load and kills one with SIGKILL five times, bringing it
// back each time. Whatever lease the killed node held lapses within its
// time-to-live: a request to the surviving node never waits, nor meets 503s,
// for longer than that (and some slack for a loaded machine); the batches
// the killed node left unfinished are finished by the survivor; and every
// figure counts each acknowledged event once.
func TestFaultNodeKilledFiveTimesDuringIngest(t *testing.T) {
	const ttl = 2 * time.Second
	env := processEnv(t)
	env["IOC_REDIS_ADDR"] = testenv.RedisAddr(t)
	env["IOC_LEASE_TTL"] = ttl.String()
	env["IOC_INGEST_FLUSH_TIMEOUT"] = "5s"
	a := startProcess(t, "node-a", env)
	b := startProcess(t, "node-b", env)
	l := startLoad(t, 4, a.base, b.base)
	start := time.Now()
	for range 5 {
		l.waitAcked(100, 90*time.Second)
		a.kill()
		l.waitAcked(30, 90*time.Second) // the survivor carries on alone
		a.start()
	}
	l.waitAcked(100, 90*time.Second)
	l.halt()

	// The survivor, from the first kill on: the longest a request waited for
	// its answer, and the longest run of 503s.
	var longest, run503 time.Duration
	var runStart time.Time
	l.mu.Lock()
	for _, at := range l.attempts {
		if at.target != b.base || at.at.Before(start) {
			continue
		}
		if at.code == http.StatusAccepted {
			longest = max(longest, at.took)
			runStart = time.Time{}
		}
		if at.code == http.StatusServiceUnavailable {
			if runStart.IsZero() {
				runStart = at.at
			}
			run503 = max(run503, at.at.Add(at.took).Sub(runStart))
		}
	}
	l.mu.Unlock()
	if limit := ttl + 3*time.Second; longest > limit || run503 > limit {
		t.Errorf("the surviving node stalled: a request waited %v, 503s lasted %v; want at most the lease's %v and slack (%v)", longest, run503, ttl, limit)
	}
	db := openFaultDB(t, env["IOC_CLICKHOUSE_ADDR"], env["IOC_CLICKHOUSE_DATABASE"])
	db.waitFinished(60 * time.Second)
	problems, stats := exactness(t, b.node(), db, l)
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("node killed 5 times: %s; longest wait on the survivor %v, longest run of 503s %v", stats, longest.Round(time.Millisecond), run503.Round(time.Millisecond))
}

// TestFaultMQTTReadingsWhileClickHouseIsDown publishes readings with QoS 1
// while ClickHouse is killed: none is acknowledged to the broker, which
// delivers them again once ClickHouse is back; each is stored once and
// counted once in every rollup.
func TestFaultMQTTReadingsWhileClickHouseIsDown(t *testing.T) {
	runsBesideOthers(t)
	ch := testenv.StartClickHouse(t)
	broker := testenv.StartMosquitto(t)
	env := processEnv(t)
	db := testenv.DatabaseOn(t, ch.Addr)
	env["IOC_CLICKHOUSE_ADDR"], env["IOC_CLICKHOUSE_DATABASE"] = ch.Addr, db
	env["IOC_MQTT_URL"], env["IOC_MQTT_CLIENT_ID"] = devservices.MQTTURL(broker), "iocd-"+db
	env["IOC_INGEST_FLUSH_TIMEOUT"] = "5s"
	p := startProcess(t, "iocd", env)
	n := p.node()
	ch.Kill()

	const readings = 40
	now := time.Now().Truncate(time.Second)
	var lines bytes.Buffer
	want := map[string]float64{}
	for i := range readings {
		v := float64(20 + i)
		msg, _ := json.Marshal(map[string]any{"kind": "pm25", "value": v, "unit": "ug/m3", "lat": nhLat, "lon": nhLon,
			"observed_at": now.Add(time.Duration(i-readings) * time.Second).In(hcm).Format(time.RFC3339)})
		lines.Write(msg)
		lines.WriteByte('\n')
		want[fmt.Sprint(i)] = v
	}
	host, port, _ := strings.Cut(broker.Addr, ":")
	pub := exec.Command("mosquitto_pub", "-h", host, "-p", port, "-q", "1", "-t", "ioc/sensors/AQ-FAULT/readings", "-l")
	pub.Stdin = &lines
	if out, err := pub.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
	eventually(t, 30*time.Second, func() (bool, string) {
		v := metricValue(t, n, `ioc_mqtt_messages_total{outcome="store_failed",stream="sensors"}`)
		return v >= 1, fmt.Sprintf("store_failed %v while ClickHouse is down", v)
	})
	if v := metricValue(t, n, `ioc_mqtt_messages_total{outcome="stored",stream="sensors"}`); v != 0 {
		t.Fatalf("%v messages stored while ClickHouse is down", v)
	}
	ch = testenv.RestartClickHouse(t, ch)
	fdb := openFaultDB(t, ch.Addr, db)
	count := func() (rows, ids uint64) {
		_ = fdb.store.Conn().QueryRow(context.Background(), "SELECT count(), uniqExact(event_id) FROM "+db+".sensor_readings").Scan(&rows, &ids)
		return rows, ids
	}
	eventually(t, 90*time.Second, func() (bool, string) {
		_, ids := count()
		return ids == readings, fmt.Sprintf("%d of %d readings stored", ids, readings)
	})
	fdb.waitFinished(60 * time.Second)
	if rows, ids := count(); rows != readings || ids != readings {
		t.Errorf("sensor_readings holds %d rows of %d readings, want %d of %d", rows, ids, readings, readings)
	}
	var stat int64
	if err := fdb.store.Conn().QueryRow(context.Background(), "SELECT sum(readings) FROM "+db+".sensor_stat_hour WHERE hierarchy = 'vn-2025'").Scan(&stat); err != nil || stat != readings {
		t.Errorf("sensor_stat_hour counts %d readings (%v), want %d", stat, err, readings)
	}
	var out bytes.Buffer
	if err := verify([]string{"--clickhouse-addr", ch.Addr, "--clickhouse-database", db, "--confirm", "0"}, &out); err != nil {
		t.Errorf("iocd verify: %v\n%s", err, out.String())
	}
	s := n.kpis(n.communeAt(nhLat, nhLon), "24h") // the readings span 40 s, which may straddle midnight
	if got := num(s.KPIs["pm25_max"]); got != 20+readings-1 {
		t.Errorf("pm25_max %v, want %d", got, 20+readings-1)
	}
	t.Logf("%d readings published while ClickHouse was down: %d stored once, %v messages delivered again", readings, readings,
		metricValue(t, n, `ioc_mqtt_redelivered_total{stream="sensors"}`))
}

// TestFaultSigtermDuringIngest stops a node with SIGTERM under load and
// with screens connected: every request in flight ends 202 or 503 (a
// request after the listener closed is refused before it is sent), every
// screen is told 1001 (going away), and after a restart nothing
// acknowledged is missing or counted twice.
func TestFaultSigtermDuringIngest(t *testing.T) {
	runsBesideOthers(t)
	env := processEnv(t)
	p := startProcess(t, "iocd", env)
	n := p.node()
	var screens []*websocket.Conn
	for range 3 {
		ws := n.live(adminToken)
		ws.send("subscribe", "kpi/79")
		ws.until(30*time.Second, func(m wsMessage) bool { return m.Topic == "kpi/79" })
		screens = append(screens, ws.conn)
	}
	l := startLoad(t, 4, p.base)
	l.waitAcked(200, 90*time.Second)
	stopAt := time.Now()
	p.stop(30 * time.Second)

	for i, c := range screens {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var closeErr *websocket.CloseError
		for {
			_, _, err := c.ReadMessage()
			if err == nil {
				continue
			}
			if !errors.As(err, &closeErr) || closeErr.Code != websocket.CloseGoingAway {
				t.Errorf("screen %d: connection ended with %v, want close code 1001 (going away)", i, err)
			}
			break
		}
	}
	p.start()
	l.waitAcked(100, 90*time.Second)
	l.halt()

	l.mu.Lock()
	var inFlight, refused int
	for _, a := range l.attempts {
		if a.at.Before(stopAt.Add(-time.Second)) {
			continue
		}
		switch {
		case a.code == http.StatusAccepted || a.code == http.StatusServiceUnavailable:
			inFlight++
		case a.dial:
			refused++
		default:
			t.Errorf("a request sent around the stop ended with %d %q, want 202 or 503", a.code, a.err)
		}
	}
	l.mu.Unlock()
	db := openFaultDB(t, env["IOC_CLICKHOUSE_ADDR"], env["IOC_CLICKHOUSE_DATABASE"])
	db.waitFinished(60 * time.Second)
	problems, stats := exactness(t, n, db, l)
	for _, pr := range problems {
		t.Error(pr)
	}
	t.Logf("SIGTERM under load: %d requests around the stop answered 202 or 503, %d refused before being sent; %s", inFlight, refused, stats)
}
