package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// peakRSS reads a process's peak resident memory (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// hostileReply is an answer to a hostile body: the status and the body,
// which is an ingest response or an error.
type hostileReply struct {
	status int
	raw    string
	resp   struct {
		Error         string `json:"error"`
		Accepted      int    `json:"accepted"`
		Rejected      int    `json:"rejected"`
		ErrorsOmitted int    `json:"errors_omitted"`
		Errors        []struct {
			Index    int      `json:"index"`
			Error    string   `json:"error"`
			Problems []string `json:"problems"`
		} `json:"errors"`
	}
}

func postHostile(t *testing.T, base, path, contentType, encoding string, body []byte) hostileReply {
	req, err := http.NewRequest("POST", base+path, bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return hostileReply{}
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		t.Errorf("POST %s: %v", path, err)
		return hostileReply{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := hostileReply{status: resp.StatusCode, raw: string(raw)}
	if err := json.Unmarshal(raw, &r.resp); err != nil {
		t.Errorf("POST %s answered %d with %.300q, not JSON", path, resp.StatusCode, raw)
	}
	return r
}

// TestHostileBodiesKeepMemoryBounded sends, ten at a time, a gzip-of-gzip
// bomb (1,144 bytes that inflate to 419 MiB of zeros) and an NDJSON body of
// a million {} lines (3 MB), to a real iocd process, and checks that each
// gets its refusal and that the process's peak resident memory grows by
// less than 768 MiB. Before the body limit applied to the inflated size, and before
// records were bounded and decoded as a stream, the process took gigabytes
// and was killed.
func TestHostileBodiesKeepMemoryBounded(t *testing.T) {
	p := startProcess(t, "hostile", processEnv(t))
	bomb, err := os.ReadFile("testdata/gzip-gzip-bomb")
	if err != nil {
		t.Fatal(err)
	}
	million := bytes.Repeat([]byte("{}\n"), 1_000_000)
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	before := peakRSS(t, pid)

	var wg sync.WaitGroup
	for range 10 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			r := postHostile(t, p.base, "/api/v1/ingest/dossiers", "application/x-ndjson", "gzip, gzip", bomb)
			if r.status != 413 || !strings.Contains(r.resp.Error, "larger than 16777216 bytes once decoded") || !strings.Contains(r.resp.Error, "IOC_HTTP_BODY_LIMIT") {
				t.Errorf("bomb: got %d %.300s, want 413 naming IOC_HTTP_BODY_LIMIT", r.status, r.raw)
			}
		}()
		go func() {
			defer wg.Done()
			r := postHostile(t, p.base, "/api/v1/ingest/dossiers", "application/x-ndjson", "", million)
			if r.status != 413 || !strings.Contains(r.resp.Error, "more than 50000 records (the IOC_INGEST_MAX_RECORDS limit)") {
				t.Errorf("a million {} lines: got %d %.300s, want 413 naming IOC_INGEST_MAX_RECORDS", r.status, r.raw)
			}
		}()
	}
	wg.Wait()
	peak := peakRSS(t, pid)
	t.Logf("peak resident memory: %d MiB before, %d MiB after", before>>20, peak>>20)
	// What the requests cost, not what the node holds anyway (the spatial
	// index it builds at start, several times larger under -race).
	if grew := peak - before; grew >= 768<<20 {
		t.Errorf("peak resident memory grew by %d MiB (from %d to %d MiB), want under 768 MiB", grew>>20, before>>20, peak>>20)
	}

	// Under the limits, the same records are each refused, with every
	// problem, and only the first 1000 are listed.
	r := postHostile(t, p.base, "/api/v1/ingest/dossiers", "application/x-ndjson", "", million[:3*40_000])
	if r.status != 202 || r.resp.Accepted != 0 || r.resp.Rejected != 40_000 || len(r.resp.Errors) != 1000 || r.resp.ErrorsOmitted != 39_000 {
		t.Fatalf("40,000 {} lines: got %d accepted %d rejected %d, %d errors listed, %d omitted; want 202, 0, 40000, 1000, 39000",
			r.status, r.resp.Accepted, r.resp.Rejected, len(r.resp.Errors), r.resp.ErrorsOmitted)
	}
	if e := r.resp.Errors[999]; e.Index != 999 || len(e.Problems) != 6 || e.Error != strings.Join(e.Problems, "; ") {
		t.Errorf("the last listed error: got %+v, want index 999 with the 6 required fields missing", e)
	}
	// A compressed body that is not JSON is a 400; a coding iocd does not
	// undo a 415.
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte("hello"))
	w.Close()
	if r := postHostile(t, p.base, "/api/v1/ingest/dossiers", "application/json", "gzip", gz.Bytes()); r.status != 400 || !strings.Contains(r.resp.Error, `want a JSON array or NDJSON objects, got "hello"`) {
		t.Errorf("gzip of hello: got %d %.300s, want 400", r.status, r.raw)
	}
	if r := postHostile(t, p.base, "/api/v1/ingest/dossiers", "application/json", "zstd", []byte("x")); r.status != 415 || !strings.Contains(r.resp.Error, "gzip, deflate or br") {
		t.Errorf("zstd: got %d %.300s, want 415 naming the codings undone", r.status, r.raw)
	}
}
