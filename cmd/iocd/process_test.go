package main

// Real iocd processes for the fault scenarios: a node that is killed with
// SIGKILL must really lose its memory, its sockets and its leases, which an
// in-process node (startNode) cannot play. The binary is built once per test
// binary, with the race detector when the tests have it, and every process
// is started with an IOC_* environment of its own.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openioc/ioc/internal/devservices"
	"github.com/openioc/ioc/internal/testenv"
)

// build is one build of cmd/iocd, made once for the whole test binary.
type build struct {
	once sync.Once
	path string
	err  error
}

var (
	usualBuild   build // iocd as released
	controlBuild build // iocd without the duplicate check (build tag faultcontrol)
)

// iocdBinary builds cmd/iocd once for the whole test binary, into a
// directory removed when the tests end, and returns its path.
func iocdBinary(t testing.TB) string {
	t.Helper()
	return usualBuild.binary(t)
}

// controlBinary builds iocd without the duplicate check, once: the fault
// suite's negative control.
func controlBinary(t testing.TB) string {
	t.Helper()
	return controlBuild.binary(t, "faultcontrol")
}

// binary builds cmd/iocd with tags, once, with -race when this test binary
// has it: the processes then check for races too, and the build reuses the
// packages go test already compiled instead of compiling all of them again.
func (b *build) binary(t testing.TB, tags ...string) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := testenv.TempDir("iocd-bin-")
		if err != nil {
			b.err = err
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		b.path = filepath.Join(dir, "iocd")
		args := []string{"build", "-o", b.path}
		if raceEnabled() {
			args = append(args, "-race")
		}
		if len(tags) > 0 {
			args = append(args, "-tags", strings.Join(tags, ","))
		}
		cmd := exec.Command(goBin, append(args, "github.com/openioc/ioc/cmd/iocd")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	})
	if b.err != nil {
		t.Fatalf("build iocd: %v", b.err)
	}
	return b.path
}

// raceEnabled says whether this test binary runs under the race detector,
// so that the processes it starts check for races too.
func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// processEnv is the environment of a node on the shared test ClickHouse
// with a database of its own, as testConfig is for in-process nodes.
// Nodes that must share state get the same IOC_CLICKHOUSE_DATABASE and
// IOC_REDIS_*; IOC_HTTP_ADDR is set by startProcess unless given.
func processEnv(t testing.TB) map[string]string {
	t.Helper()
	db := testenv.Database(t)
	return map[string]string{
		"IOC_CLICKHOUSE_ADDR":     testenv.ClickHouseAddr(t),
		"IOC_CLICKHOUSE_DATABASE": db,
		"IOC_REDIS_PREFIX":        "ioc-test-" + db + ":",
		"IOC_ADMIN_TOKEN":         adminToken,
		"IOC_JWT_SECRET":          jwtSecret,
		"IOC_INGEST_BATCH_AGE":    "20ms",
		"IOC_STARTUP_TIMEOUT":     "30s",
		"IOC_SHUTDOWN_TIMEOUT":    "10s",
		"IOC_LOG_LEVEL":           "info",
	}
}

// process is an iocd node running as a child process.
type process struct {
	t    testing.TB
	name string
	env  map[string]string
	bin  string // the binary; empty: iocdBinary
	base string // http://127.0.0.1:port
	log  string // stdout and stderr of every run of the node

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current run has exited
	err  error         // its exit status, once done
}

// startProcess builds iocd if needed, starts it with env (plus
// IOC_HTTP_ADDR on a free port unless env has one) and waits until
// /readyz answers 200. The node is stopped with SIGTERM when the test ends;
// if the test failed, its log is written to the test's output.
func startProcess(t testing.TB, name string, env map[string]string) *process {
	t.Helper()
	return startBinary(t, "", name, env)
}

// startBinary is startProcess with another build of iocd (bin), e.g. the
// fault suite's negative control; empty bin is the usual one.
func startBinary(t testing.TB, bin, name string, env map[string]string) *process {
	t.Helper()
	env = maps.Clone(env)
	if env["IOC_HTTP_ADDR"] == "" {
		port, err := devservices.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		env["IOC_HTTP_ADDR"] = fmt.Sprintf("127.0.0.1:%d", port)
	}
	p := &process{t: t, name: name, env: env, bin: bin, base: "http://" + env["IOC_HTTP_ADDR"],
		log: filepath.Join(t.TempDir(), name+".log")}
	t.Cleanup(p.cleanup)
	p.start()
	return p
}

// start runs the binary again with the same environment and port, and
// waits for it to be ready: a restart after stop or kill.
func (p *process) start() {
	p.t.Helper()
	bin := p.bin
	if bin == "" {
		bin = iocdBinary(p.t)
	}
	out, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	defer out.Close()
	fmt.Fprintf(out, "=== %s: start %s\n", time.Now().Format(time.RFC3339Nano), p.name)
	cmd := exec.Command(bin, "serve")
	cmd.Env = childEnv(p.env)
	cmd.Stdout, cmd.Stderr = out, out
	// A test binary that dies must not leave nodes behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.err = cmd, done, nil
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	p.waitReady(60 * time.Second)
}

// childEnv is this process's environment without any IOC_ setting of the
// machine running the tests, plus env.
func childEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IOC_") {
			out = append(out, kv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// waitReady polls /readyz until it answers 200, failing the test if the
// node exits first or d passes without the node logging anything new: a
// start on a slow machine (a cluster's migrations, applied ON CLUSTER, can
// take a minute) is waited for while it makes progress, a stuck one is
// not. It waits 10 minutes at the most.
func (p *process) waitReady(d time.Duration) {
	p.t.Helper()
	deadline, limit := time.Now().Add(d), time.Now().Add(10*time.Minute)
	logged := p.progress()
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for {
		resp, err := client.Get(p.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.exited():
			p.t.Fatalf("%s exited during start-up (%v); its log:\n%s", p.name, p.exitErr(), p.tail(60))
		case <-time.After(100 * time.Millisecond):
		}
		if n := p.progress(); n != logged && time.Now().Before(limit) {
			logged, deadline = n, time.Now().Add(d)
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s not ready, and logged nothing new for %v (last: %s); its log:\n%s", p.name, d, last, p.tail(60))
		}
	}
}

// progress counts the lines the node has logged of its own work so far:
// not the requests, which waitReady's polling makes, nor its readiness.
func (p *process) progress() int {
	b, _ := os.ReadFile(p.log)
	n := 0
	for line := range strings.Lines(string(b)) {
		if !strings.Contains(line, " msg=request ") && !strings.Contains(line, "ready") {
			n++
		}
	}
	return n
}

func (p *process) exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

func (p *process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// running says whether the current run has not exited.
func (p *process) running() bool {
	select {
	case <-p.exited():
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits for a clean exit, as a supervisor's stop
// does; it fails the test if the node exits with an error or takes longer
// than d.
func (p *process) stop(d time.Duration) {
	p.t.Helper()
	if err := p.signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM %s: %v", p.name, err)
	}
	select {
	case <-p.exited():
	case <-time.After(d):
		p.kill()
		p.t.Fatalf("%s did not stop within %v of SIGTERM; its log:\n%s", p.name, d, p.tail(60))
	}
	if err := p.exitErr(); err != nil {
		p.t.Fatalf("%s stopped with %v; its log:\n%s", p.name, err, p.tail(60))
	}
}

// kill ends the node at once with SIGKILL, as a crash or the OOM killer
// does, and waits until it is gone.
func (p *process) kill() {
	p.t.Helper()
	_ = p.signal(syscall.SIGKILL)
	select {
	case <-p.exited():
	case <-time.After(30 * time.Second):
		p.t.Fatalf("%s still running 30s after SIGKILL", p.name)
	}
}

func (p *process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil || !p.running() {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// cleanup stops a node still running, and reports races and, for a failed
// test, the node's log.
func (p *process) cleanup() {
	if p.running() {
		_ = p.signal(syscall.SIGTERM)
		select {
		case <-p.exited():
		case <-time.After(30 * time.Second):
			_ = p.signal(syscall.SIGKILL)
			<-p.exited()
		}
	}
	log, _ := os.ReadFile(p.log)
	if strings.Contains(string(log), "WARNING: DATA RACE") {
		p.t.Errorf("%s reported a data race; its log:\n%s", p.name, log)
		return
	}
	if p.t.Failed() {
		p.t.Logf("log of %s:\n%s", p.name, p.tail(400))
	}
}

// tail returns the last n lines of the node's log.
func (p *process) tail(n int) string {
	f, err := os.Open(p.log)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 2*n {
			lines = slices.Clone(lines[len(lines)-n:])
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logContains says whether the node has logged s so far.
func (p *process) logContains(s string) bool {
	b, _ := os.ReadFile(p.log)
	return strings.Contains(string(b), s)
}

// node lets the helpers of node_test.go (ingest, get, kpis, live) talk to
// the process; its stop does nothing: use the process's stop or kill.
func (p *process) node() *node {
	return &node{t: p.t, base: p.base}
}

// ready says whether /readyz answers 200 now.
func (p *process) ready(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, "GET", p.base+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestProcessStartsStopsAndKills checks the machinery itself: a node
// started as a process answers, stops cleanly on SIGTERM, comes back on
// the same port, and dies at once on SIGKILL.
func TestProcessStartsStopsAndKills(t *testing.T) {
	p := startProcess(t, "solo", processEnv(t))
	n := p.node()
	if code, r := n.ingest(event("p1", "d1", "26740", "received", "online", time.Minute)); code != 202 || r.Accepted != 1 {
		t.Fatalf("ingest: got %d %+v, want 202 with 1 accepted", code, r)
	}
	p.stop(30 * time.Second)
	if !p.logContains("stopped") {
		t.Errorf("log after SIGTERM has no %q line:\n%s", "stopped", p.tail(20))
	}
	p.start()
	if s := n.kpis("26740", "24h"); num(s.KPIs["dossiers_received"]) != 1 {
		t.Errorf("after restart: got %v received, want 1", s.KPIs["dossiers_received"])
	}
	p.kill()
	if p.running() {
		t.Fatal("still running after SIGKILL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if p.ready(ctx) {
		t.Fatal("a killed node still answers /readyz")
	}
}
