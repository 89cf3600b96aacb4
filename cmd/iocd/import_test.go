package main

// End-to-end tests of iocd import: the real binary as a process, on files
// of good and bad records, killed with SIGKILL mid-way and run again, fed
// through standard input, and refused where it must be. After each, what
// is stored is compared with what the files hold: every good record once,
// every bad one listed once in the rejects file, the summary's figures,
// and every rollup equal to the stored records (iocd verify).

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/ingest/backfill"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/testenv"
)

// importRecord is one record of an import's files and what the import
// must make of it.
type importRecord struct {
	file string // as given on the command line
	line int64  // where it starts in its file
	nth  int64  // its number in its file (CSV: after the header row)
	csv  bool
	raw  string // its text as it stands, without the final line break
	id   string // a good record's event id
	// bad is a problem a bad record is rejected with (a part of it); the
	// record must be listed once in the rejects file. Empty: good.
	bad string
	// repeat: a good record sent again unchanged, counted as already stored.
	repeat bool
}

// importFile builds the text of one input file, numbering its lines.
type importFile struct {
	name string
	csv  bool
	buf  bytes.Buffer
	line int64 // lines written
	nth  int64 // records written
	recs []importRecord
}

func (f *importFile) add(raw, id, bad string) {
	f.nth++
	f.recs = append(f.recs, importRecord{file: f.name, line: f.line + 1, nth: f.nth, csv: f.csv, raw: raw, id: id, bad: bad})
	f.buf.WriteString(raw + "\n")
	f.line += 1 + int64(strings.Count(raw, "\n"))
}

// blank adds a line that holds no record.
func (f *importFile) blank() {
	f.buf.WriteString("\n")
	f.line++
}

// importData is the records of an import's files, in the order read.
type importData struct{ recs []importRecord }

func (d importData) good() (ids []string) {
	for _, r := range d.recs {
		if r.bad == "" && !r.repeat {
			ids = append(ids, r.id)
		}
	}
	return ids
}

func (d importData) count(match func(importRecord) bool) int {
	n := 0
	for _, r := range d.recs {
		if match(r) {
			n++
		}
	}
	return n
}

func (d importData) rejected() []importRecord {
	var out []importRecord
	for _, r := range d.recs {
		if r.bad != "" {
			out = append(out, r)
		}
	}
	return out
}

func dossierLine(id, dossier, area, status string, day, hour int, due bool) string {
	m := map[string]any{"event_id": id, "dossier_id": dossier, "procedure_code": "1.004227", "sector": "land",
		"area_code": area, "channel": "online", "status": status,
		"occurred_at": fmt.Sprintf("2025-10-%02dT%02d:00:00+07:00", day, hour)}
	if due {
		m["due_at"] = fmt.Sprintf("2025-10-%02dT17:00:00+07:00", day+2)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// importAreas are the communes, of province 79, of the imports' dossiers.
var importAreas = [2]string{"26740", "26743"}

// dossierFiles writes dossiers.ndjson (100 records and a blank line) and
// dossiers.csv.gz (40 records, one of them on two lines) into dir, filed
// in areas in turn. Records
// 1–20 of the NDJSON file are good; bad ones follow, each of a kind the
// ingest API refuses, and among the good a resolution derived from its
// dossier's receipt and a record repeated unchanged.
func dossierFiles(t *testing.T, dir string, areas [2]string) (importData, []string) {
	t.Helper()
	nd := &importFile{name: "dossiers.ndjson"}
	for i := 1; i <= 100; i++ {
		id, day := fmt.Sprintf("n-%03d", i), 1+i%20
		switch i {
		case 25:
			nd.add(strings.Replace(dossierLine(id, "ND-025", "26740", "received", day, 9, true), `"received"`, `"resolvedd"`, 1),
				"", `status "resolvedd" is not one of`)
		case 26:
			nd.add(`{"event_id":"n-026","dossier_id":"ND-026",`, "", "malformed JSON")
		case 47:
			nd.add(`{"event_id":"n-047","area_code":"26740","channel":"online","status":"received","occurred_at":"2025-10-05T09:00:00"}`,
				"", "dossier_id is required")
		case 60: // record 10 again, unchanged
			nd.add(nd.recs[9].raw, nd.recs[9].id, "")
			nd.recs[len(nd.recs)-1].repeat = true
		case 71:
			nd.add(dossierLine(id, "ND-071", "99999", "received", day, 9, true), "", `"99999"`)
		case 98: // n-003 again with other content
			nd.add(strings.Replace(nd.recs[2].raw, `"land"`, `"health"`, 1), "", "was stored with different content")
		default:
			if i%4 == 0 { // the dossier of the record before is resolved
				nd.add(dossierLine(id, fmt.Sprintf("ND-%03d", i-1), areas[(i-1)%2], "resolved", 1+(i-1)%20, 15, true), id, "")
			} else {
				nd.add(dossierLine(id, fmt.Sprintf("ND-%03d", i), areas[i%2], "received", day, 9, true), id, "")
			}
		}
		if i == 50 {
			nd.blank()
		}
	}

	cs := &importFile{name: "dossiers.csv.gz", csv: true}
	cs.buf.WriteString("event_id,dossier_id,procedure_code,sector,area_code,channel,status,occurred_at,due_at,digitized,paid_online,fee_required\n")
	cs.line = 1
	for j := 1; j <= 40; j++ {
		id := fmt.Sprintf("c-%03d", j)
		at, due := fmt.Sprintf("2025-10-%02dT10:00:00+07:00", 1+j%20), fmt.Sprintf("2025-10-%02dT17:00:00+07:00", 3+j%20)
		row := func(sector, status, digitized string) string {
			return strings.Join([]string{id, "CD-" + id[2:], "1.004227", sector, areas[j%2], "in_person", status, at, due, digitized, "false", "true"}, ",")
		}
		switch j {
		case 5:
			cs.add(row("land", "received", "maybe"), "", "digitized must be true or false")
		case 12:
			cs.add(id+",CD-012,1.004227", "", "the record has 3 cells and the header 12 columns")
		case 20: // a quoted cell over two lines, and a status misspelt
			cs.add(row("\"land\nhousing\"", "lost", "true"), "", `status "lost" is not one of`)
		case 33:
			cs.add(row(`la"nd`, "received", "true"), "", `a " in a cell that is not quoted`)
		default:
			cs.add(row(`"land, housing"`, "received", "true"), id, "")
		}
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(cs.buf.Bytes())
	zw.Close()
	if err := os.WriteFile(filepath.Join(dir, nd.name), nd.buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, cs.name), gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return importData{recs: append(nd.recs, cs.recs...)}, []string{nd.name, cs.name}
}

// importEnv is the environment of an import into a database of its own,
// with the short timeouts of a test.
func importEnv(t *testing.T) map[string]string {
	t.Helper()
	env := processEnv(t)
	env["IOC_INGEST_FLUSH_TIMEOUT"] = "5s"
	env["IOC_LEASE_TTL"] = "2s"
	return env
}

// importProc is a run of iocd import as a child process.
type importProc struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdin          io.WriteCloser // with pipeStdin
	stdout, stderr lockedBuffer
	done           chan struct{}
}

// lockedBuffer is a buffer written by a process and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startImport runs `bin import args…` in dir (bin empty: the test build
// of iocd). With pipeStdin the test writes its standard input
// (p.stdin); otherwise it reads nothing.
func startImport(t *testing.T, bin, dir string, env map[string]string, pipeStdin bool, args ...string) *importProc {
	t.Helper()
	if bin == "" {
		bin = iocdBinary(t)
	}
	p := &importProc{t: t, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"import"}, args...)...)
	p.cmd.Dir, p.cmd.Env = dir, childEnv(env)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	// A test binary that dies must not leave an import behind.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if pipeStdin {
		w, err := p.cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		p.stdin = w
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("iocd import reported a data race:\n%s", p.stderr.String())
		}
	})
	return p
}

func (p *importProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// wait waits for the import to end and returns its exit status.
func (p *importProc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Fatalf("iocd import still running after %v; its stderr:\n%s", d, p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// kill ends the import with SIGKILL, as a crash or the OOM killer does.
func (p *importProc) kill() {
	p.t.Helper()
	if !p.running() {
		p.t.Fatalf("iocd import ended before it was killed; its stderr:\n%s", p.stderr.String())
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(30 * time.Second)
}

// runImport runs an import to its end.
func runImport(t *testing.T, dir string, env map[string]string, args ...string) (exit int, stdout, stderr string) {
	t.Helper()
	p := startImport(t, "", dir, env, false, args...)
	exit = p.wait(3 * time.Minute)
	return exit, p.stdout.String(), p.stderr.String()
}

// importState is what the tests read of a state file.
type importState struct {
	Rejects      string `json:"rejects"`
	RejectsBytes int64  `json:"rejects_bytes"`
	Records      int64  `json:"records"`
	Stored       int64  `json:"stored"`
	Duplicates   int64  `json:"duplicates"`
	Rejected     int64  `json:"rejected"`
	Files        []struct {
		Records int64 `json:"records"`
		Done    bool  `json:"done"`
	} `json:"files"`
	FinishedAt *time.Time `json:"finished_at"`
}

// readState reads a state file; ok is false while there is none.
func readState(t *testing.T, path string) (s importState, ok bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return s, false
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("state %s: %v\n%s", path, err, b)
	}
	return s, true
}

func readRejects(t *testing.T, path string) []backfill.Reject {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []backfill.Reject
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r backfill.Reject
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("rejects file %s: %v in %s", path, err, sc.Text())
		}
		out = append(out, r)
	}
	return out
}

// importFigures is what an import is to have made of its files.
type importFigures struct {
	kind               string
	table              string // where the records are stored
	records, rejected  int
	stored, duplicates int // as the summary counts them, over every run
}

// importProblems compares what the import left with data: the summary
// line, the rejects file (each bad record once, in order, with its place,
// problems and text), the stored rows (each good record once), and every
// rollup (iocd verify). It returns what differs.
func importProblems(t *testing.T, env map[string]string, data importData, fig importFigures, stdout, rejectsPath string) (problems []string) {
	t.Helper()
	files := map[string]bool{}
	for _, r := range data.recs {
		files[r.file] = true
	}
	plural := "files"
	if len(files) == 1 {
		plural = "file"
	}
	summary := fmt.Sprintf("%s: %d records of %d %s read: %d stored, %d already stored, %d rejected", fig.kind, fig.records,
		len(files), plural, fig.stored, fig.duplicates, fig.rejected)
	if !strings.Contains(stdout, summary) {
		problems = append(problems, fmt.Sprintf("the summary is not %q:\n%s", summary, stdout))
	}

	rejects := readRejects(t, rejectsPath)
	want := data.rejected()
	if len(rejects) != len(want) {
		problems = append(problems, fmt.Sprintf("the rejects file lists %d records, want %d: %+v", len(rejects), len(want), rejects))
	}
	for i := range min(len(rejects), len(want)) {
		g, w := rejects[i], want[i]
		var record int64
		if w.csv {
			record = w.nth
		}
		if g.File != w.file || g.Line != w.line || g.Record != record || g.Raw != w.raw ||
			!strings.Contains(strings.Join(g.Problems, "; "), w.bad) {
			problems = append(problems, fmt.Sprintf("reject %d is %+v; want %s line %d record %d with %q, text %q", i, g, w.file, w.line, record, w.bad, w.raw))
		}
	}

	db := openFaultStore(t, chstore.Config{Addr: env["IOC_CLICKHOUSE_ADDR"], Database: env["IOC_CLICKHOUSE_DATABASE"], Cluster: env["IOC_CLICKHOUSE_CLUSTER"]})
	rows, err := db.store.Conn().Query(context.Background(), "SELECT event_id, count() FROM "+db.store.Database()+"."+fig.table+" GROUP BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]uint64{}
	for rows.Next() {
		var id string
		var n uint64
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		stored[id] = n
	}
	rows.Close()
	copies, missing := 0, 0
	for _, n := range stored {
		copies += int(n) - 1
	}
	good := data.good()
	for _, id := range good {
		if stored[id] == 0 {
			missing++
		}
	}
	if copies > 0 {
		problems = append(problems, fmt.Sprintf("%d records stored more than once", copies))
	}
	if missing > 0 || len(stored) != len(good) {
		problems = append(problems, fmt.Sprintf("%d distinct records stored, want the %d good ones (%d of them missing)", len(stored), len(good), missing))
	}

	var out bytes.Buffer
	if err := verify([]string{"--clickhouse-addr", env["IOC_CLICKHOUSE_ADDR"], "--clickhouse-database", env["IOC_CLICKHOUSE_DATABASE"],
		"--clickhouse-cluster", env["IOC_CLICKHOUSE_CLUSTER"], "--confirm", "0"}, &out); err != nil {
		problems = append(problems, fmt.Sprintf("iocd verify: %v\n%s", err, out.String()))
	}
	return problems
}

func reportProblems(t *testing.T, problems []string) {
	t.Helper()
	for _, p := range problems {
		t.Error(p)
	}
}

// TestImportFilesOfGoodAndBadRecords imports an NDJSON file and a CSV.gz
// file through the binary: the good records are stored once each and
// counted by every rollup, the bad ones listed with their file, line and
// problems, and the summary says so. Run again, it says there is nothing
// left to import; with --restart it reads everything again and finds every
// good record stored already (the negative control of the duplicate check:
// without it, the second pass would store them twice and the checks fail).
func TestImportFilesOfGoodAndBadRecords(t *testing.T) {
	runsBesideOthers(t)
	dir := t.TempDir()
	data, files := dossierFiles(t, dir, importAreas)
	env := importEnv(t)
	args := append([]string{"dossiers", "--state", "import.state", "--batch-rows", "7", "--in-flight", "3"}, files...)
	exit, stdout, stderr := runImport(t, dir, env, args...)
	if exit != 0 {
		t.Fatalf("iocd import exited %d:\n%s\n%s", exit, stdout, stderr)
	}
	good, bad := len(data.good()), len(data.rejected())
	fig := importFigures{kind: "dossiers", table: "dossier_history", records: len(data.recs), rejected: bad, stored: good, duplicates: 1}
	if good != 130 || bad != 9 {
		t.Fatalf("the files hold %d good records and %d bad, want 130 and 9", good, bad)
	}
	rejects := filepath.Join(dir, "import.rejects.ndjson")
	reportProblems(t, importProblems(t, env, data, fig, stdout, rejects))
	if want := fmt.Sprintf("%d records were rejected; each is listed with its problems in %s", bad, rejects); !strings.Contains(stdout, want) {
		t.Errorf("stdout does not say %q:\n%s", want, stdout)
	}
	listed, err := os.ReadFile(rejects)
	if err != nil {
		t.Fatal(err)
	}

	exit, stdout, _ = runImport(t, dir, env, args...)
	if exit != 0 || !strings.Contains(stdout, "every record of these files was imported already") || !strings.Contains(stdout, "give --restart") {
		t.Errorf("run again: exit %d, stdout:\n%s\nwant exit 0 saying there is nothing left and how to import again", exit, stdout)
	}

	exit, stdout, stderr = runImport(t, dir, env, append([]string{"--restart"}, args...)...)
	if exit != 0 {
		t.Fatalf("iocd import --restart exited %d:\n%s\n%s", exit, stdout, stderr)
	}
	fig.stored, fig.duplicates = 0, good+1
	reportProblems(t, importProblems(t, env, data, fig, stdout, rejects))
	if again, _ := os.ReadFile(rejects); !bytes.Equal(again, listed) {
		t.Errorf("--restart listed other rejects:\n%s\nthe first import:\n%s", again, listed)
	}
}

// TestImportOntoACluster imports the files of the test above into a
// cluster of two shards, with their dossiers filed in communes of two
// provinces on different shards (clusterAreas): each record is stored once, in the shard of its province, and
// the rollups of both shards count it once. Run again with --restart, it
// finds every good record stored already, on either shard.
func TestImportOntoACluster(t *testing.T) {
	c := usesCluster(t)
	dir := t.TempDir()
	data, files := dossierFiles(t, dir, [2]string{clusterAreas[0], clusterAreas[1]})
	env := importEnv(t)
	env["IOC_CLICKHOUSE_ADDR"], env["IOC_CLICKHOUSE_CLUSTER"] = strings.Join(c.Addrs(), ","), c.Name
	env["IOC_STARTUP_TIMEOUT"] = "3m" // the schema, ON CLUSTER
	args := append([]string{"dossiers", "--state", "import.state", "--batch-rows", "7", "--in-flight", "3"}, files...)
	exit, stdout, stderr := runImport(t, dir, env, args...)
	if exit != 0 {
		t.Fatalf("iocd import exited %d:\n%s\n%s", exit, stdout, stderr)
	}
	good, rejects := len(data.good()), filepath.Join(dir, "import.rejects.ndjson")
	fig := importFigures{kind: "dossiers", table: "dossier_history", records: len(data.recs), rejected: len(data.rejected()), stored: good, duplicates: 1}
	reportProblems(t, importProblems(t, env, data, fig, stdout, rejects))

	// Both shards hold some: the files' provinces are split between them.
	for s, shard := range c.Servers {
		n, err := countOn(shard[0].Addr, "SELECT count() FROM "+env["IOC_CLICKHOUSE_DATABASE"]+"_local.dossier_history")
		if err != nil || n == 0 {
			t.Errorf("shard %d holds %d records (%v): the import did not route records to each shard", s+1, n, err)
		}
	}

	exit, stdout, stderr = runImport(t, dir, env, append([]string{"--restart"}, args...)...)
	if exit != 0 {
		t.Fatalf("iocd import --restart exited %d:\n%s\n%s", exit, stdout, stderr)
	}
	fig.stored, fig.duplicates = 0, good+1
	reportProblems(t, importProblems(t, env, data, fig, stdout, rejects))
}

// killedImport is the scenario of TestImportKilledMidwayResumesExactly,
// with bin as the binary; it returns what the final checks found.
//
// Where each SIGKILL lands is made certain, not hoped for: the test holds
// the dossier writer's lease in Redis while an import starts, so that it
// can store nothing, and meanwhile puts a FIFO (which blocks whoever
// opens it to write) where the import will write next:
//
//  1. at the rejects file: chunks 1 and 2 (records 1–20, all good) are
//     stored and saved in the state; chunk 3 is stored, and its first
//     reject blocks. Killed there, 8 of its records are stored beyond what
//     the state says.
//  2. at the state file's temporary copy: the rerun skips records 1–20,
//     finds chunk 3's records stored, lists its two rejects, and blocks
//     saving the state. Killed there, the rejects file lists two records
//     beyond what the state says.
//  3. the same command once more, to its end.
func killedImport(t *testing.T, bin string) []string {
	dir := t.TempDir()
	data, files := dossierFiles(t, dir, importAreas)
	env := importEnv(t)
	env["IOC_REDIS_ADDR"] = testenv.RedisAddr(t)
	state, rejects := filepath.Join(dir, "import.state"), filepath.Join(dir, "import.rejects")
	args := append([]string{"dossiers", "--state", state, "--rejects", rejects, "--batch-rows", "10", "--in-flight", "1"}, files...)

	db := openFaultDB(t, env["IOC_CLICKHOUSE_ADDR"], env["IOC_CLICKHOUSE_DATABASE"])
	distinct := func() (n uint64) {
		_ = db.store.Conn().QueryRow(context.Background(), "SELECT uniqExact(event_id) FROM "+db.store.Database()+".dossier_history").Scan(&n)
		return n
	}
	// gated starts the import holding the writer's lease, waits until
	// ready says the import has begun, then lets the writer go.
	gated := func(ready func() (bool, string), block string) *importProc {
		t.Helper()
		l := holdWriterLease(t, env["IOC_REDIS_ADDR"], env["IOC_REDIS_PREFIX"], env["IOC_CLICKHOUSE_DATABASE"], "dossier_history")
		p := startImport(t, bin, dir, env, false, args...)
		eventually(t, time.Minute, func() (bool, string) {
			if !p.running() {
				t.Fatalf("iocd import ended while it could not write:\n%s", p.stderr.String())
			}
			return ready()
		})
		if err := syscall.Mkfifo(block, 0o644); err != nil {
			t.Fatal(err)
		}
		releaseHeld(t, l)
		return p
	}

	// 1. Blocked at its first reject, in the third chunk.
	stored := uint64(len(slices.DeleteFunc(slices.Clone(data.recs[:30]), func(r importRecord) bool { return r.bad != "" })))
	p := gated(func() (bool, string) {
		_, ok := readState(t, state)
		return ok, "no state file yet"
	}, rejects)
	if n := distinct(); n != 0 {
		t.Fatalf("%d records stored while the test held the writer's lease: the lease did not hold the import back", n)
	}
	eventually(t, 2*time.Minute, func() (bool, string) {
		s, _ := readState(t, state)
		n := distinct()
		return s.Records == 20 && n == stored, fmt.Sprintf("state at %d records, want 20; %d records stored, want %d", s.Records, n, stored)
	})
	p.kill()
	os.Remove(rejects)

	// 2. Resumed after record 20, blocked saving the state after listing
	// chunk 3's rejects.
	before, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	p = gated(func() (bool, string) {
		now, err := os.Stat(state)
		return err == nil && !os.SameFile(before, now), "the state is not saved again yet"
	}, state+".tmp")
	eventually(t, 2*time.Minute, func() (bool, string) {
		n := len(readRejects(t, rejects))
		return n == 2, fmt.Sprintf("%d rejects listed, want 2", n)
	})
	if s, _ := readState(t, state); s.Records != 20 || s.RejectsBytes != 0 {
		t.Fatalf("the state moved on while it could not be saved: %+v", s)
	}
	p.kill()
	os.Remove(state + ".tmp")

	// 3. To the end.
	p = startImport(t, bin, dir, env, false, args...)
	if exit := p.wait(3 * time.Minute); exit != 0 {
		t.Fatalf("iocd import exited %d:\n%s\n%s", exit, p.stdout.String(), p.stderr.String())
	}
	if s, _ := readState(t, state); s.FinishedAt == nil {
		t.Errorf("the state does not say the import finished: %+v", s)
	}
	good := len(data.good())
	// Chunk 3's eight good records are found stored; record 60 repeats
	// record 10.
	fig := importFigures{kind: "dossiers", table: "dossier_history", records: len(data.recs), rejected: len(data.rejected()),
		stored: good - 8, duplicates: 8 + 1}
	return importProblems(t, env, data, fig, p.stdout.String(), rejects)
}

// TestImportKilledMidwayResumesExactly kills an import with SIGKILL twice,
// each time with records stored or rejects listed beyond what its state
// file says, and runs the same command again: every good record is stored
// once, every bad one listed once, the figures count each once.
func TestImportKilledMidwayResumesExactly(t *testing.T) {
	runsBesideOthers(t)
	reportProblems(t, killedImport(t, ""))
}

// TestImportChecksCatchAWriterWithoutTheDuplicateCheck is the negative
// control of the test above: against iocd built without the duplicate
// check, the records stored before the kills are stored again, and the
// checks must say so: in the summary's figures, and in the rollups, which
// count them again. (Their raw rows may not show it: the table's merges
// may collapse the copies.)
func TestImportChecksCatchAWriterWithoutTheDuplicateCheck(t *testing.T) {
	runsBesideOthers(t)
	problems := killedImport(t, controlBinary(t))
	summary, rollups := false, false
	for _, p := range problems {
		summary = summary || strings.HasPrefix(p, "the summary is not")
		rollups = rollups || strings.HasPrefix(p, "iocd verify: found")
	}
	if !summary || !rollups {
		t.Fatalf("without the duplicate check the checks did not find the summary (%v) and the rollups (%v) wrong; found: %q", summary, rollups, problems)
	}
	for _, p := range problems {
		t.Logf("without the duplicate check: %.200s", p)
	}
}

// TestImportFromStandardInput pipes a compressed stream into `iocd import
// dossiers -`, kills the import once the first 50 records are in its
// state (it cannot have read more: the test has not written more), and
// pipes the same records again, uncompressed this time: the import drops
// the first 50 and goes on. A different stream is refused, saying how to go
// on; progress shows on stderr meanwhile.
func TestImportFromStandardInput(t *testing.T) {
	runsBesideOthers(t)
	dir := t.TempDir()
	env := importEnv(t)
	f := &importFile{name: "-"}
	for i := 1; i <= 120; i++ {
		id := fmt.Sprintf("s-%03d", i)
		switch {
		case i == 33 || i == 77:
			f.add(dossierLine(id, "SD-"+id, "26740", "received", 1+i%20, 9, true)[:40], "", "malformed JSON")
		default:
			f.add(dossierLine(id, "SD-"+id, "26743", "received", 1+i%20, 9, true), id, "")
		}
	}
	stream := f.buf.Bytes()
	cut := bytes.Index(stream, []byte(`"s-051"`))
	cut = bytes.LastIndexByte(stream[:cut], '\n') + 1 // records 1–50
	args := []string{"dossiers", "--state", "stream.state", "--batch-rows", "10", "--in-flight", "2", "--progress-interval", "50ms", "-"}

	p := startImport(t, "", dir, env, true, args...)
	zw := gzip.NewWriter(p.stdin)
	if _, err := zw.Write(stream[:cut]); err != nil {
		t.Fatal(err)
	}
	if err := zw.Flush(); err != nil { // what is written so far can be read
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, func() (bool, string) {
		s, _ := readState(t, filepath.Join(dir, "stream.state"))
		return s.Records == 50, fmt.Sprintf("the state is at %d records, want 50", s.Records)
	})
	eventually(t, time.Minute, func() (bool, string) {
		return strings.Contains(p.stderr.String(), "done (of a stream)"), "no progress line on stderr:\n" + p.stderr.String()
	})
	p.kill()

	// Another stream is refused before anything is stored.
	other := bytes.Replace(stream, []byte(`"s-017"`), []byte(`"x-017"`), 1)
	p = startImport(t, "", dir, env, true, args...)
	p.stdin.Write(other)
	p.stdin.Close()
	if exit := p.wait(2 * time.Minute); exit != 1 || !strings.Contains(p.stderr.String(), "standard input is not the stream the interrupted import read") ||
		!strings.Contains(p.stderr.String(), "pipe the same records again") {
		t.Fatalf("another stream: exit %d, stderr:\n%s\nwant exit 1 saying to pipe the same records", exit, p.stderr.String())
	}

	p = startImport(t, "", dir, env, true, args...)
	p.stdin.Write(stream)
	p.stdin.Close()
	if exit := p.wait(3 * time.Minute); exit != 0 {
		t.Fatalf("iocd import exited %d:\n%s\n%s", exit, p.stdout.String(), p.stderr.String())
	}
	data := importData{recs: f.recs}
	fig := importFigures{kind: "dossiers", table: "dossier_history", records: 120, rejected: 2, stored: 118}
	reportProblems(t, importProblems(t, env, data, fig, p.stdout.String(), filepath.Join(dir, "stream.rejects.ndjson")))
}

// TestImportCameraEventsAndSensorReadings imports each kind's records, one
// in CSV (attrs as a JSON object in a cell), one in NDJSON: the devices are
// registered by their first report as live ingest does, and the bad
// records are listed.
func TestImportCameraEventsAndSensorReadings(t *testing.T) {
	runsBesideOthers(t)
	dir := t.TempDir()
	env := importEnv(t)

	cams := &importFile{name: "cameras.csv", csv: true}
	cams.buf.WriteString("event_id,camera_id,type,severity,lat,lon,occurred_at,attrs\n")
	cams.line = 1
	for i := 1; i <= 12; i++ {
		id, at := fmt.Sprintf("ce-%02d", i), fmt.Sprintf("2025-10-%02dT08:%02d:00+07:00", 1+i%5, i)
		switch i {
		case 4:
			cams.add(strings.Join([]string{id, "CAM-1", "meteor_strike", "warning", "10.7769", "106.7009", at, ""}, ","), "", `type "meteor_strike" is not one of`)
		case 9:
			cams.add(strings.Join([]string{id, "CAM-2", "congestion", "warning", "10.7769", "", at, ""}, ","), "", "lat and lon go together")
		default:
			cams.add(strings.Join([]string{id, fmt.Sprintf("CAM-%d", i%3), "traffic_violation", "warning", "10.7769", "106.7009", at,
				`"{""plate"":""51F-123.45""}"`}, ","), id, "")
		}
	}
	if err := os.WriteFile(filepath.Join(dir, cams.name), cams.buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	exit, stdout, stderr := runImport(t, dir, env, "camera-events", "--state", "cameras.state", cams.name)
	if exit != 0 {
		t.Fatalf("iocd import camera-events exited %d:\n%s\n%s", exit, stdout, stderr)
	}
	data := importData{recs: cams.recs}
	reportProblems(t, importProblems(t, env, data, importFigures{kind: "camera-events", table: "camera_events",
		records: 12, rejected: 2, stored: 10}, stdout, filepath.Join(dir, "cameras.rejects.ndjson")))

	sensors := &importFile{name: "readings.jsonl"}
	for i := 1; i <= 12; i++ {
		m := map[string]any{"event_id": fmt.Sprintf("sr-%02d", i), "sensor_id": fmt.Sprintf("AQ-079-%d", i%3), "kind": "pm25",
			"value": 20 + float64(i), "unit": "ug/m3", "lat": 10.78, "lon": 106.69,
			"observed_at": fmt.Sprintf("2025-10-%02dT%02d:00:00+07:00", 1+i%5, i)}
		bad := ""
		switch i {
		case 6:
			delete(m, "value")
			bad = "value is required"
		case 10:
			m["kind"] = "radon"
			bad = `kind "radon" is not one of`
		}
		b, _ := json.Marshal(m)
		id := m["event_id"].(string)
		if bad != "" {
			id = ""
		}
		sensors.add(string(b), id, bad)
	}
	if err := os.WriteFile(filepath.Join(dir, sensors.name), sensors.buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	exit, stdout, stderr = runImport(t, dir, env, "sensor-readings", "--state", "readings.state", sensors.name)
	if exit != 0 {
		t.Fatalf("iocd import sensor-readings exited %d:\n%s\n%s", exit, stdout, stderr)
	}
	data = importData{recs: sensors.recs}
	reportProblems(t, importProblems(t, env, data, importFigures{kind: "sensor-readings", table: "sensor_readings",
		records: 12, rejected: 2, stored: 10}, stdout, filepath.Join(dir, "readings.rejects.ndjson")))

	// The devices were registered by their first reports.
	db := openFaultDB(t, env["IOC_CLICKHOUSE_ADDR"], env["IOC_CLICKHOUSE_DATABASE"])
	var devices uint64
	if err := db.store.Conn().QueryRow(context.Background(), "SELECT uniqExact(id) FROM "+db.store.Database()+".devices").Scan(&devices); err != nil {
		t.Fatal(err)
	}
	if devices != 6 {
		t.Errorf("%d devices registered, want 3 cameras and 3 sensors", devices)
	}
}

// TestImportRefusals: each refusal exits 1 and says what to do.
func TestImportRefusals(t *testing.T) {
	runsBesideOthers(t)
	dir := t.TempDir()
	env := importEnv(t)
	for name, body := range map[string]string{"a.ndjson": "{}\n", "a.txt": "{}\n", "array.json": "[{}]\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"say what to import", "dossiers|camera-events|sensor-readings"}},
		{[]string{"dossier", "a.ndjson"}, []string{`unknown kind of record "dossier"`, "dossiers, camera-events or sensor-readings"}},
		{[]string{"dossiers", "--format", "xml", "a.ndjson"}, []string{`--format "xml": use ndjson or csv`}},
		{[]string{"dossiers", "a.txt"}, []string{"cannot tell the format of a.txt", "--format ndjson"}},
		{[]string{"dossiers", "array.json"}, []string{"holds a JSON array", "jq -c"}},
		{[]string{"dossiers", "-"}, []string{"needs --state FILE", "pipe the same records again"}},
		{[]string{"dossiers", "a.ndjson", "missing.ndjson"}, []string{"missing.ndjson", "no such file"}},
		{[]string{"dossiers", "a.ndjson", "--state", "s"}, []string{"--state comes after the files: give the flags before them"}},
		{[]string{"--batch-rows", "1", "dossiers", "--in-flight", "0", "a.ndjson"}, []string{"--batch-rows and --in-flight must be at least 1"}},
	} {
		exit, stdout, stderr := runImport(t, dir, env, c.args...)
		for _, w := range c.want {
			if exit != 1 || !strings.Contains(stderr, w) {
				t.Errorf("iocd import %s: exit %d, stderr:\n%s\nwant exit 1 saying %q", strings.Join(c.args, " "), exit, stderr, w)
			}
		}
		if stdout != "" {
			t.Errorf("iocd import %s printed a summary on a refusal:\n%s", strings.Join(c.args, " "), stdout)
		}
	}

	// A node writes to the database without Redis: an import without
	// Redis cannot take turns with it.
	node := startProcess(t, "node", env)
	db := openFaultDB(t, env["IOC_CLICKHOUSE_ADDR"], env["IOC_CLICKHOUSE_DATABASE"])
	eventually(t, time.Minute, func() (bool, string) {
		nodes, err := ingest.RunningNodes(context.Background(), db.store, 30*time.Second)
		return err == nil && len(nodes) > 0, fmt.Sprintf("the node is not in ingest_nodes yet (%v)", err)
	})
	exit, _, stderr := runImport(t, dir, env, "dossiers", "a.ndjson")
	for _, w := range []string{"iocd is writing to this database", "set IOC_REDIS_ADDR as the nodes have it", "or stop them first"} {
		if exit != 1 || !strings.Contains(stderr, w) {
			t.Errorf("import while a node writes without Redis: exit %d, stderr:\n%s\nwant exit 1 saying %q", exit, stderr, w)
		}
	}
	// Stopped, it no longer holds the import back.
	node.stop(30 * time.Second)
	exit, stdout, stderr := runImport(t, dir, env, "dossiers", "a.ndjson")
	if exit != 0 || !strings.Contains(stdout, "1 rejected") {
		t.Errorf("import once the node stopped: exit %d\n%s\n%s", exit, stdout, stderr)
	}
}

// /dev/null is a character device and no terminal: records piped from it
// are read, and progress written to it is not drawn in place.
func TestDevNullIsNoTerminal(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("/dev/null is taken for a terminal")
	}
}

// The usage says how to name the files, standard input included, and
// where progress, the summary and the rejects go.
func TestImportHelp(t *testing.T) {
	exit, _, stderr := runImport(t, t.TempDir(), nil, "dossiers", "-h")
	for _, want := range []string{"iocd import dossiers|camera-events|sensor-readings [flags] FILE", "A FILE of - reads standard input",
		"--state", "Progress goes to stderr, the summary to stdout", "-rejects", "-restart", "Flags come before the files"} {
		if exit != 0 || !strings.Contains(stderr, want) {
			t.Errorf("iocd import -h: exit %d, no %q in:\n%s", exit, want, stderr)
		}
	}
	out, err := exec.Command(iocdBinary(t), "-h").Output()
	if err != nil || !strings.Contains(string(out), "iocd import KIND [flags] FILE…") || !strings.Contains(string(out), "- reads stdin") {
		t.Errorf("iocd -h: %v, does not list iocd import with stdin:\n%s", err, out)
	}
}
