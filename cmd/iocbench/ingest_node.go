package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/openioc/ioc/internal/devservices"
)

const benchAdminToken = "iocbench-admin-token-0123456789"

// benchNode is an iocd node of the benchmarks (a real process with
// Redis, live figures and every background task, as deployed), or another
// server process they start and measure.
type benchNode struct {
	cmd   *exec.Cmd
	base  string
	debug string   // where it serves profiles
	env   []string // also what `iocd import` runs with
	done  chan error
}

// nodeSpec says how to run an iocd node.
type nodeSpec struct {
	iocd, dir       string // binary; directory of its log
	chAddr, db      string // ClickHouse and its database (default benchDB)
	redisAddr       string
	port, debugPort int      // 0: free ones
	env             []string // further IOC_ settings, which win
	readyTimeout    time.Duration
}

func startBenchNode(ctx context.Context, spec nodeSpec) (*benchNode, error) {
	var err error
	if spec.port == 0 {
		if spec.port, err = devservices.FreePort(); err != nil {
			return nil, err
		}
	}
	if spec.debugPort == 0 {
		if spec.debugPort, err = devservices.FreePort(); err != nil {
			return nil, err
		}
	}
	if spec.db == "" {
		spec.db = benchDB
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IOC_") {
			env = append(env, kv)
		}
	}
	env = append(env, "IOC_CLICKHOUSE_ADDR="+spec.chAddr, "IOC_CLICKHOUSE_DATABASE="+spec.db, "IOC_REDIS_ADDR="+spec.redisAddr,
		"IOC_ADMIN_TOKEN="+benchAdminToken, "IOC_JWT_SECRET=iocbench-jwt-secret-0123456789abcdef",
		fmt.Sprintf("IOC_HTTP_ADDR=127.0.0.1:%d", spec.port), "IOC_ACCESS_LOG=off", "IOC_LOG_LEVEL=warn",
		fmt.Sprintf("IOC_DEBUG_ADDR=127.0.0.1:%d", spec.debugPort))
	env = append(env, spec.env...)
	n, err := startProcess(ctx, spec.iocd, []string{"serve"}, env, filepath.Join(spec.dir, "iocd.log"),
		fmt.Sprintf("http://127.0.0.1:%d/readyz", spec.port), "iocd", spec.readyTimeout)
	if err != nil {
		return nil, err
	}
	n.base, n.debug = fmt.Sprintf("http://127.0.0.1:%d", spec.port), fmt.Sprintf("http://127.0.0.1:%d", spec.debugPort)
	return n, nil
}

// startProcess runs bin with args and env, its output appended to logFile,
// and waits until ready answers 200 (up to timeout, default a minute). The
// process is killed if this one dies.
func startProcess(ctx context.Context, bin string, args, env []string, logFile, ready, name string, timeout time.Duration) (*benchNode, error) {
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	n := &benchNode{cmd: cmd, env: env, done: make(chan error, 1)}
	go func() { n.done <- cmd.Wait(); log.Close() }()
	if timeout <= 0 {
		timeout = time.Minute
	}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case err := <-n.done:
			return nil, fmt.Errorf("%s exited before it was ready (%v); see %s", name, err, logFile)
		case <-ctx.Done():
			n.stop()
			return nil, ctx.Err()
		default:
		}
		if resp, err := http.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return n, nil
			}
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, fmt.Errorf("%s not ready after %s; see %s", name, timeout, logFile)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pid is the process's id, whose /proc entry tells its CPU and memory.
func (n *benchNode) pid() int { return n.cmd.Process.Pid }

func (n *benchNode) stop() {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(time.Minute):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// profile writes a CPU profile of the node over the next seconds to file.
func (n *benchNode) profile(file string, seconds int) error {
	resp, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", n.debug, seconds))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// printMetrics prints the sums and counts of the node's metrics named.
func (n *benchNode) printMetrics(names ...string) {
	req, _ := http.NewRequest("GET", n.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+benchAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(raw), "\n") {
		for _, name := range names {
			if strings.HasPrefix(line, name+"_sum") || strings.HasPrefix(line, name+"_count") || strings.HasPrefix(line, name+"{") {
				fmt.Println("    " + line)
			}
		}
	}
}
