package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// server is iocd started as a subprocess on the bench database.
type server struct {
	bin    string // the iocd binary
	cmd    *exec.Cmd
	base   string
	token  string
	log    string
	client *http.Client
	done   chan struct{}
}

func randomToken() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// buildIOCD returns iocd, or when it is empty an iocd built from the tree
// into workDir.
func buildIOCD(ctx context.Context, iocd, workDir string) (string, error) {
	if iocd != "" {
		return iocd, nil
	}
	iocd = filepath.Join(workDir, "iocd")
	build := exec.CommandContext(ctx, "go", "build", "-o", iocd, "./cmd/iocd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/iocd (run iocbench from the repository, or pass -iocd): %w", err)
	}
	return iocd, nil
}

// startServer starts iocd on the bench database and waits until it is
// ready.
func startServer(ctx context.Context, iocd, workDir, chAddr, db string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &server{bin: iocd, base: "http://" + addr, token: randomToken(), log: filepath.Join(workDir, "iocd.log"),
		client: &http.Client{Timeout: 2 * time.Minute}, done: make(chan struct{})}
	logf, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IOC_") {
			env = append(env, kv)
		}
	}
	env = append(env, "IOC_CLICKHOUSE_ADDR="+chAddr, "IOC_CLICKHOUSE_DATABASE="+db, "IOC_ADMIN_TOKEN="+s.token,
		"IOC_HTTP_ADDR="+addr, "IOC_SIMULATE=0", "IOC_LOG_LEVEL=warn")
	s.cmd = exec.Command(iocd, "serve")
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start iocd: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		select {
		case <-s.done:
			return nil, fmt.Errorf("iocd exited during start-up; see %s:\n%s", s.log, tail(s.log))
		default:
		}
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("iocd not ready after 3 minutes; see %s:\n%s", s.log, tail(s.log))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// get fetches path with the admin token; the time covers the whole body.
func (s *server) get(path string) (int, []byte, time.Duration, error) {
	req, err := http.NewRequest(http.MethodGet, s.base+path, nil)
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	t0 := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, body, time.Since(t0), err
}

// figure is a value with its parts as the API reports them.
type figure struct {
	Value       *float64 `json:"value"`
	Numerator   *float64 `json:"numerator"`
	Denominator *float64 `json:"denominator"`
}

func (f figure) ratio() ratio {
	r := ratio{}
	if f.Numerator != nil {
		r.num = int64(*f.Numerator)
	}
	if f.Denominator != nil {
		r.den = int64(*f.Denominator)
	}
	return r
}

func decode(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	return d.Decode(v)
}

// seriesAnswer reads a series: figures by local day, and problems with its
// shape (a point per day of the range, in order).
func seriesAnswer(body []byte) (answer, []string, error) {
	var resp struct {
		Points []struct {
			T string `json:"t"`
			figure
		} `json:"points"`
	}
	if err := decode(body, &resp); err != nil {
		return nil, nil, err
	}
	out := answer{}
	var problems []string
	want := localDay("2025-11-01")
	for i, p := range resp.Points {
		t, err := time.Parse(time.RFC3339, p.T)
		if err != nil {
			return nil, nil, fmt.Errorf("point %d: %w", i, err)
		}
		if !t.Equal(want) {
			problems = append(problems, fmt.Sprintf("point %d is at %s, want %s", i, p.T, want.Format(time.RFC3339)))
		}
		want = want.AddDate(0, 0, 1)
		if r := p.ratio(); r != (ratio{}) {
			out[t.In(zone).Format("2006-01-02")] = r
		}
		if problem := valueProblem(p.figure); problem != "" {
			problems = append(problems, "point "+p.T+": "+problem)
		}
	}
	if len(resp.Points) != 365 {
		problems = append(problems, fmt.Sprintf("%d points, want 365 (2025-11-01..2026-10-31)", len(resp.Points)))
	}
	return out, problems, nil
}

// valueProblem checks a ratio's value against its parts (4 decimals).
func valueProblem(f figure) string {
	r := f.ratio()
	switch {
	case r.den == 0 && f.Value != nil:
		return fmt.Sprintf("value %v with denominator 0, want null", *f.Value)
	case r.den != 0 && f.Value == nil:
		return "value null with a denominator"
	case r.den != 0 && abs(*f.Value-float64(r.num)/float64(r.den)) > 0.00005001:
		return fmt.Sprintf("value %v, want %d/%d", *f.Value, r.num, r.den)
	}
	return ""
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// rankingAnswer reads a ranking: figures by commune, and problems with its
// shape (every commune, best first, nulls last, ties by code).
func rankingAnswer(communes []string) func([]byte) (answer, []string, error) {
	return func(body []byte) (answer, []string, error) {
		var resp struct {
			Total int `json:"total"`
			Items []struct {
				Rank int    `json:"rank"`
				Area string `json:"area"`
				figure
			} `json:"items"`
		}
		if err := decode(body, &resp); err != nil {
			return nil, nil, err
		}
		out := answer{}
		var problems []string
		if resp.Total != len(communes) || len(resp.Items) != len(communes) {
			problems = append(problems, fmt.Sprintf("total %d, %d items; want %d communes", resp.Total, len(resp.Items), len(communes)))
		}
		for i, it := range resp.Items {
			if r := it.ratio(); r != (ratio{}) {
				out[it.Area] = r
			}
			if it.Rank != i+1 {
				problems = append(problems, fmt.Sprintf("item %d (%s) has rank %d", i, it.Area, it.Rank))
			}
			if p := valueProblem(it.figure); p != "" {
				problems = append(problems, it.Area+": "+p)
			}
			if i == 0 {
				continue
			}
			prev := resp.Items[i-1]
			switch {
			case prev.Value == nil && it.Value != nil:
				problems = append(problems, fmt.Sprintf("%s (null) ranks before %s (%v)", prev.Area, it.Area, *it.Value))
			case prev.Value != nil && it.Value != nil && *prev.Value < *it.Value:
				problems = append(problems, fmt.Sprintf("%s (%v) ranks before %s (%v)", prev.Area, *prev.Value, it.Area, *it.Value))
			case (prev.Value == nil) == (it.Value == nil) && (prev.Value == nil || *prev.Value == *it.Value) && prev.Area > it.Area:
				problems = append(problems, fmt.Sprintf("tie broken %s before %s", prev.Area, it.Area))
			}
		}
		return out, problems, nil
	}
}

// scoreboardAnswer reads a scoreboard: the figures of the indicators the
// raw query computes, keyed "province/indicator".
func scoreboardAnswer(province string) func([]byte) (answer, []string, error) {
	return func(body []byte) (answer, []string, error) {
		var resp struct {
			Area   string `json:"area"`
			Groups []struct {
				Indicators []struct {
					ID        string `json:"id"`
					Supported bool   `json:"supported"`
					figure
				} `json:"indicators"`
			} `json:"groups"`
			Rank struct {
				Position int `json:"position"`
				Of       int `json:"of"`
			} `json:"rank"`
		}
		if err := decode(body, &resp); err != nil {
			return nil, nil, err
		}
		out := answer{}
		var problems []string
		seen := map[string]bool{}
		for _, g := range resp.Groups {
			for _, ind := range g.Indicators {
				if !contains(scoreboardIndicators, ind.ID) {
					continue
				}
				seen[ind.ID] = true
				if !ind.Supported {
					problems = append(problems, ind.ID+" is not supported")
					continue
				}
				if r := ind.ratio(); r != (ratio{}) {
					out[province+"/"+ind.ID] = r
				}
				if p := valueProblem(ind.figure); p != "" {
					problems = append(problems, province+"/"+ind.ID+": "+p)
				}
			}
		}
		for _, id := range scoreboardIndicators {
			if !seen[id] {
				problems = append(problems, province+": indicator "+id+" missing")
			}
		}
		if resp.Rank.Of != 34 {
			problems = append(problems, fmt.Sprintf("%s: ranked of %d, want of 34 provinces", province, resp.Rank.Of))
		}
		return out, problems, nil
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortStrings(s []string) { sort.Strings(s) }
