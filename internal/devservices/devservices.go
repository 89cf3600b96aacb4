// Package devservices launches local ClickHouse (alone, or a cluster of
// shards and replicas with ZooKeeper), Redis (alone, or as a master,
// replicas and sentinels), Mosquitto (MQTT), PostgreSQL (a department's
// database, for the datasets' connectors) and HAProxy servers on loopback
// for development (make run) and tests: each with its own data directory,
// ports and logs, so several can run side by side.
//
// Concurrency: a Server is safe for concurrent use; Stop may be called more
// than once.
package devservices

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server is a running service process.
type Server struct {
	Name string // "clickhouse", "zookeeper", "redis", "sentinel", "mosquitto", "postgres" or "haproxy"
	Addr string // host:port clients connect to
	Dir  string // data directory
	PID  int

	cmd      *exec.Cmd // nil when the process was not started by us (see Attach)
	waitOnce sync.Once
	waitErr  error
	done     chan struct{}
}

// Options say how to start a server.
type Options struct {
	// Dir holds data, configuration and logs; it is created if missing.
	Dir string
	// Port is the client port; 0 picks a free one.
	Port int
	// Detach starts the server in its own session so that it outlives the
	// caller (make run). Otherwise it is killed when the caller dies.
	Detach bool
	// ReplicaOf, for Redis, is the host:port of the master it copies;
	// empty starts a master.
	ReplicaOf string
	// Cluster, for ClickHouse, places the server in a cluster (see
	// StartClickHouseCluster); nil starts a server of its own.
	Cluster *ClusterMember
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// LookPath finds a server binary in PATH or in the system directories that
// are often missing from a user's PATH (Debian puts clickhouse-server in /usr/sbin).
func LookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found: install it (Debian/Ubuntu: apt-get install %s), or run scripts/install-deps.sh", name, name)
}

// StartClickHouse starts clickhouse-server with a configuration written
// into opts.Dir and waits until it answers.
func StartClickHouse(ctx context.Context, opts Options) (*Server, error) {
	bin, dir, port, err := prepare("clickhouse-server", opts)
	if err != nil {
		return nil, err
	}
	httpPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"data", "tmp", "user_files", "format_schemas", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("create clickhouse directory: %w", err)
		}
	}
	cfg := filepath.Join(dir, "config.xml")
	if err := os.WriteFile(cfg, []byte(clickhouseConfig(dir, port, httpPort, opts.Cluster)), 0o644); err != nil {
		return nil, fmt.Errorf("write clickhouse config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(clickhouseUsers), 0o644); err != nil {
		return nil, fmt.Errorf("write clickhouse users: %w", err)
	}
	s, err := start(opts, "clickhouse", fmt.Sprintf("127.0.0.1:%d", port), dir, bin, "--config-file="+cfg)
	if err != nil {
		return nil, err
	}
	ping := func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ping", httpPort))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("ping answered %s", resp.Status)
		}
		// The HTTP port answers a moment before the native one is usable.
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err != nil {
			return err
		}
		c.Close()
		if opts.Cluster != nil {
			return clusterMemberReady(httpPort)
		}
		return nil
	}
	if err := s.waitReady(ctx, ping, filepath.Join(dir, "log", "err.log")); err != nil {
		return nil, err
	}
	return s, nil
}

// StartRedis starts redis-server without persistence (the project keeps
// nothing in Redis that must survive it) and waits until it answers PING.
func StartRedis(ctx context.Context, opts Options) (*Server, error) {
	bin, dir, port, err := prepare("redis-server", opts)
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--save", "", "--appendonly", "no", "--logfile", filepath.Join(dir, "redis.log")}
	if opts.ReplicaOf != "" {
		host, p, err := net.SplitHostPort(opts.ReplicaOf)
		if err != nil {
			return nil, fmt.Errorf("redis replica of %q: %w", opts.ReplicaOf, err)
		}
		args = append(args, "--replicaof", host, p)
	}
	s, err := start(opts, "redis", addr, dir, bin, args...)
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, func() error { return redisPing(addr) }, filepath.Join(dir, "redis.log")); err != nil {
		return nil, err
	}
	return s, nil
}

// SentinelTimings are how quickly a sentinel acts: a master that does not
// answer for DownAfter is down, and a failover is retried after
// FailoverTimeout. Zero values are Redis's defaults (30 s and 3 min);
// tests and make run use a second or so.
type SentinelTimings struct {
	DownAfter, FailoverTimeout time.Duration
}

// StartSentinel starts a Redis Sentinel (redis-server in sentinel mode)
// that watches the master at masterAddr under the name master, with
// quorum sentinels needed to agree that it is down, and waits until it
// answers PING. Its configuration file is its own: a sentinel rewrites it
// as it learns of replicas, other sentinels and failovers, and one started
// again in the same directory keeps what it learned.
func StartSentinel(ctx context.Context, opts Options, master, masterAddr string, quorum int, t SentinelTimings) (*Server, error) {
	bin, dir, port, err := prepare("redis-server", opts)
	if err != nil {
		return nil, err
	}
	host, mport, err := net.SplitHostPort(masterAddr)
	if err != nil {
		return nil, fmt.Errorf("sentinel's master %q: %w", masterAddr, err)
	}
	conf := filepath.Join(dir, "sentinel.conf")
	var b strings.Builder
	fmt.Fprintf(&b, "bind 127.0.0.1\nport %d\ndir %s\nlogfile %s\n", port, dir, filepath.Join(dir, "sentinel.log"))
	fmt.Fprintf(&b, "sentinel monitor %s %s %s %d\n", master, host, mport, quorum)
	if t.DownAfter > 0 {
		fmt.Fprintf(&b, "sentinel down-after-milliseconds %s %d\n", master, t.DownAfter.Milliseconds())
	}
	if t.FailoverTimeout > 0 {
		fmt.Fprintf(&b, "sentinel failover-timeout %s %d\n", master, t.FailoverTimeout.Milliseconds())
	}
	if _, err := os.Stat(conf); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
			return nil, fmt.Errorf("write sentinel configuration: %w", err)
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s, err := start(opts, "sentinel", addr, dir, bin, conf, "--sentinel")
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, func() error { return redisPing(addr) }, filepath.Join(dir, "sentinel.log")); err != nil {
		return nil, err
	}
	return s, nil
}

// StartMosquitto starts the Mosquitto MQTT broker with persistence, so that
// sessions and unacknowledged QoS 1 messages survive a restart (the
// subscriber's redelivery tests rely on it), and waits until a CONNECT is
// answered. Clients connect to MQTTURL(s).
func StartMosquitto(ctx context.Context, opts Options) (*Server, error) {
	bin, dir, port, err := prepare("mosquitto", opts)
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(cfg, []byte(mosquittoConfig(dir, port)), 0o644); err != nil {
		return nil, fmt.Errorf("write mosquitto config: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s, err := start(opts, "mosquitto", addr, dir, bin, "-c", cfg)
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, func() error { return mqttPing(addr) }, filepath.Join(dir, "mosquitto.log")); err != nil {
		return nil, err
	}
	return s, nil
}

// MQTTURL is the URL MQTT clients connect to for a Mosquitto server.
func MQTTURL(s *Server) string { return "tcp://" + s.Addr }

func mosquittoConfig(dir string, port int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listener %d 127.0.0.1\n", port)
	b.WriteString("allow_anonymous true\n")
	b.WriteString("persistence true\n")
	fmt.Fprintf(&b, "persistence_location %s/\n", dir)
	// Saving every second bounds what a crash (Kill) loses; a clean stop
	// saves everything.
	b.WriteString("autosave_interval 1\n")
	// Room for a subscriber that is down for a while, and enough unacknowledged
	// messages in flight for its concurrent handlers.
	b.WriteString("max_inflight_messages 1000\n")
	b.WriteString("max_queued_messages 100000\n")
	fmt.Fprintf(&b, "log_dest file %s/mosquitto.log\n", dir)
	if os.Geteuid() == 0 {
		// Otherwise Mosquitto drops to the "mosquitto" user, which cannot
		// write to a directory made by root.
		b.WriteString("user root\n")
	}
	return b.String()
}

// mqttPing sends an MQTT 3.1.1 CONNECT and expects an accepting CONNACK.
func mqttPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	id := "iocdev-probe-" + strconv.Itoa(os.Getpid())
	vh := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 10} // protocol, level 4, clean session, keep-alive 10 s
	payload := append([]byte{byte(len(id) >> 8), byte(len(id))}, id...)
	pkt := append([]byte{0x10, byte(len(vh) + len(payload))}, vh...)
	pkt = append(pkt, payload...)
	if _, err := c.Write(pkt); err != nil {
		return err
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil {
		return fmt.Errorf("read CONNACK: %w", err)
	}
	if ack[0] != 0x20 || ack[1] != 2 || ack[3] != 0 {
		return fmt.Errorf("CONNECT answered % x, want a CONNACK accepting it", ack)
	}
	_, _ = c.Write([]byte{0xe0, 0}) // DISCONNECT, so the broker logs a clean goodbye
	return nil
}

// Attach returns a handle on a server started earlier with Detach, from the
// pid file in dir. It fails if the process is gone.
func Attach(name, dir string) (*Server, error) {
	b, err := os.ReadFile(filepath.Join(dir, name+".pid"))
	if err != nil {
		return nil, fmt.Errorf("read %s pid file: %w", name, err)
	}
	var pid int
	var addr string
	if _, err := fmt.Sscanf(string(b), "%d %s", &pid, &addr); err != nil {
		return nil, fmt.Errorf("parse %s pid file: %w", name, err)
	}
	if !alive(pid) {
		return nil, fmt.Errorf("%s (pid %d) is not running", name, pid)
	}
	return &Server{Name: name, Addr: addr, Dir: dir, PID: pid}, nil
}

// Stop terminates the server and waits for it to exit (up to 30 s, then
// kills it).
func (s *Server) Stop() error {
	defer os.Remove(filepath.Join(s.Dir, s.Name+".pid"))
	sig := syscall.SIGTERM
	if s.Name == "postgres" {
		// Its fast shutdown: on SIGTERM it waits for every client to
		// leave.
		sig = syscall.SIGINT
	}
	if err := syscall.Kill(s.PID, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("stop %s: %w", s.Name, err)
	}
	if s.waitExit(30 * time.Second) {
		return nil
	}
	_ = syscall.Kill(s.PID, syscall.SIGKILL)
	s.waitExit(5 * time.Second)
	return nil
}

// Kill stops the server at once, as a crash would.
func (s *Server) Kill() {
	_ = syscall.Kill(s.PID, syscall.SIGKILL)
	s.waitExit(10 * time.Second)
	os.Remove(filepath.Join(s.Dir, s.Name+".pid"))
}

func (s *Server) waitExit(d time.Duration) bool {
	if s.cmd != nil {
		select {
		case <-s.done:
			return true
		case <-time.After(d):
			return false
		}
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !alive(s.PID) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func (s *Server) waitReady(ctx context.Context, ping func() error, logFile string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last error
	for {
		if last = ping(); last == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited during start-up: %v; last lines of %s:\n%s", s.Name, s.waitErr, logFile, tail(logFile, 15))
		case <-ctx.Done():
			s.Kill()
			return fmt.Errorf("%s did not answer on %s: %v; last lines of %s:\n%s", s.Name, s.Addr, last, logFile, tail(logFile, 15))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func start(opts Options, name, addr, dir, bin string, args ...string) (*Server, error) {
	return startCmd(opts, name, addr, dir, exec.Command(bin, args...))
}

// startCmd starts cmd, in dir unless it says where, and as whom its
// SysProcAttr says.
func startCmd(opts Options, name, addr, dir string, cmd *exec.Cmd) (*Server, error) {
	if cmd.Dir == "" {
		cmd.Dir = dir
	}
	out, err := os.OpenFile(filepath.Join(dir, name+".out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s output log: %w", name, err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if opts.Detach {
		cmd.SysProcAttr.Setsid = true
	} else {
		// A test binary that dies must not leave servers behind.
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &Server{Name: name, Addr: addr, Dir: dir, PID: cmd.Process.Pid, cmd: cmd, done: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	pid := fmt.Sprintf("%d %s\n", s.PID, addr)
	if err := os.WriteFile(filepath.Join(dir, name+".pid"), []byte(pid), 0o644); err != nil {
		s.Kill()
		return nil, fmt.Errorf("write %s pid file: %w", name, err)
	}
	return s, nil
}

// prepare finds a server's binary, creates its directory and picks its port.
func prepare(name string, opts Options) (bin, dir string, port int, err error) {
	if bin, err = LookPath(name); err != nil {
		return "", "", 0, err
	}
	if dir, err = prepareDir(opts.Dir); err != nil {
		return "", "", 0, err
	}
	if port, err = portOrFree(opts.Port); err != nil {
		return "", "", 0, err
	}
	return bin, dir, port, nil
}

func prepareDir(dir string) (string, error) {
	if dir == "" {
		return "", errors.New("a data directory is required")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", abs, err)
	}
	return abs, nil
}

// onFreePort starts a server with start on opts.Port or, when that is 0,
// on a free port, and chooses again (three times at most) when another
// process bound the chosen port first: FreePort cannot hold a port for the
// server, and tests start many servers side by side.
func onFreePort(opts Options, start func(port int) (*Server, error)) (*Server, error) {
	for try := 1; ; try++ {
		port, err := portOrFree(opts.Port)
		if err != nil {
			return nil, err
		}
		s, err := start(port)
		if err == nil || opts.Port != 0 || try == 3 || !strings.Contains(err.Error(), "Address already in use") {
			return s, err
		}
	}
}

func portOrFree(p int) (int, error) {
	if p != 0 {
		return p, nil
	}
	return FreePort()
}

func redisPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// alive reports whether pid runs; a zombie left to a parent that does not
// reap (PID 1 in some containers) counts as gone.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
