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

// benchNode is the iocd node of the ingest benchmark: a real process with
// Redis, live figures and every background task, as deployed.
type benchNode struct {
	cmd   *exec.Cmd
	base  string
	debug string   // where it serves profiles
	env   []string // also what `iocd import` runs with
	done  chan error
}

func startBenchNode(ctx context.Context, o ingestOptions, chAddr, redisAddr string) (*benchNode, error) {
	port, err := devservices.FreePort()
	if err != nil {
		return nil, err
	}
	debugPort, err := devservices.FreePort()
	if err != nil {
		return nil, err
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IOC_") {
			env = append(env, kv)
		}
	}
	env = append(env, "IOC_CLICKHOUSE_ADDR="+chAddr, "IOC_CLICKHOUSE_DATABASE="+benchDB, "IOC_REDIS_ADDR="+redisAddr,
		"IOC_ADMIN_TOKEN="+benchAdminToken, "IOC_JWT_SECRET=iocbench-jwt-secret-0123456789abcdef",
		fmt.Sprintf("IOC_HTTP_ADDR=127.0.0.1:%d", port), "IOC_ACCESS_LOG=off", "IOC_LOG_LEVEL=warn",
		fmt.Sprintf("IOC_DEBUG_ADDR=127.0.0.1:%d", debugPort))
	log, err := os.Create(filepath.Join(o.dir, "iocd.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.iocd, "serve")
	cmd.Env, cmd.Stdout, cmd.Stderr = env, log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start iocd: %w", err)
	}
	n := &benchNode{cmd: cmd, base: fmt.Sprintf("http://127.0.0.1:%d", port), debug: fmt.Sprintf("http://127.0.0.1:%d", debugPort),
		env: env, done: make(chan error, 1)}
	go func() { n.done <- cmd.Wait(); log.Close() }()
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-n.done:
			return nil, fmt.Errorf("iocd exited before it was ready (%v); see %s", err, log.Name())
		default:
		}
		if resp, err := http.Get(n.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return n, nil
			}
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, fmt.Errorf("iocd not ready after a minute; see %s", log.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

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
