package backfill

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// body is n NDJSON lines, each naming its number.
func body(n int, tag string) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "{\"event_id\":\"%s-%d\"}\n", tag, i)
	}
	return b.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// readAfter reads records up to the nth, then returns where the reader is
// (what a checkpoint notes).
func readAfter(t *testing.T, s *source, n int) (offset, line int64, crc uint32) {
	t.Helper()
	r := &ndjsonReader{l: s.lines}
	for range n {
		if _, err := r.next(); err != nil {
			t.Fatal(err)
		}
	}
	return s.lines.offset, s.lines.line, s.lines.crc
}

func nextRecord(t *testing.T, s *source) string {
	t.Helper()
	rec, err := (&ndjsonReader{l: s.lines}).next()
	if err != nil {
		t.Fatal(err)
	}
	return string(rec.raw)
}

// A resumed import goes on at the record after the acknowledged ones,
// whether the file is plain (a seek), gzip (decompressed and dropped) or
// standard input (read, summed and dropped), compressed or not.
func TestSkipToGoesOnAfterTheImportedRecords(t *testing.T) {
	plain := body(5000, "p") // larger than the read buffer
	dir := t.TempDir()
	files := map[string][]byte{"a.ndjson": plain, "a.ndjson.gz": gzipped(t, plain)}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		in, err := inspect(path, "")
		if err != nil {
			t.Fatal(err)
		}
		var read atomic.Int64
		first, err := in.open(&read, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		off, line, _ := readAfter(t, first, 3210)
		first.close()
		again, err := in.open(&read, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if err := again.skipTo(off, line, 0); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := nextRecord(t, again); got != `{"event_id":"p-3211"}` || again.lines.line != 3211 {
			t.Errorf("%s: after the skip read %s on line %d, want p-3211 on line 3211", name, got, again.lines.line)
		}
		again.close()
	}

	for _, stream := range [][]byte{plain, gzipped(t, plain)} {
		var read atomic.Int64
		_, first, err := openStdin(bytes.NewReader(stream), &read, "", 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		off, line, crc := readAfter(t, first, 3210)
		// The same records, compressed or not, go on after the prefix.
		for _, again := range [][]byte{plain, gzipped(t, plain)} {
			_, s, err := openStdin(bytes.NewReader(again), &read, "", 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.skipTo(off, line, crc); err != nil {
				t.Fatal(err)
			}
			if got := nextRecord(t, s); got != `{"event_id":"p-3211"}` || s.lines.line != 3211 {
				t.Errorf("standard input: after the skip read %s on line %d, want p-3211 on line 3211", got, s.lines.line)
			}
		}
		// Another stream of the same length is refused, saying how to go on.
		other := bytes.Replace(plain, []byte(`"p-17"`), []byte(`"q-17"`), 1)
		_, s, err := openStdin(bytes.NewReader(other), &read, "", 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.skipTo(off, line, crc); err == nil || !strings.Contains(err.Error(), "not the stream the interrupted import read") ||
			!strings.Contains(err.Error(), "--restart") {
			t.Errorf("another stream: got %v, want a refusal naming --restart", err)
		}
		// So is a stream that ends before the prefix does.
		_, s, err = openStdin(bytes.NewReader(plain[:off/2]), &read, "", 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.skipTo(off, line, crc); err == nil || !strings.Contains(err.Error(), "standard input ended after") {
			t.Errorf("a shorter stream: got %v, want a refusal saying it ended", err)
		}
	}
}

// Standard input needs a state file, and is read as NDJSON unless told
// otherwise; each refusal says what to give.
func TestStdinRefusals(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	for _, c := range []struct {
		name  string
		cfg   Config
		stdin string
		want  string
	}{
		{"no state", Config{Kind: "dossiers", Files: []string{"-"}}, "{}\n", "needs --state FILE"},
		{"twice", Config{Kind: "dossiers", Files: []string{"-", "-"}, State: filepath.Join(dir, "s1")}, "{}\n", "given twice: give it once"},
		{"CSV without --format", Config{Kind: "dossiers", Files: []string{"-"}, State: filepath.Join(dir, "s2")}, "event_id,status\n", "give --format csv"},
		{"CSV header of no field", Config{Kind: "dossiers", Files: []string{"-"}, Format: FormatCSV, State: filepath.Join(dir, "s3")}, "a,b\n", "standard input: no column"},
	} {
		_, err := Open(Config{Kind: c.cfg.Kind, Files: c.cfg.Files, State: c.cfg.State, Format: c.cfg.Format, Stdin: strings.NewReader(c.stdin)}, logger)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	// A CSV stream with --format csv is taken, its header read.
	b, err := Open(Config{Kind: "dossiers", Files: []string{"-"}, Format: FormatCSV, State: filepath.Join(dir, "s4"),
		Stdin: strings.NewReader("event_id,status\ne1,received\n")}, logger)
	if err != nil {
		t.Fatal(err)
	}
	if b.Stats().BytesTotal != -1 {
		t.Errorf("standard input's size is known as %d", b.Stats().BytesTotal)
	}
	if rec, err := newCSVReader(b.stdin.lines).next(); err != nil || strings.Join(rec.cells, ",") != "e1,received" {
		t.Errorf("after Open the stream goes on at the first record; got %+v %v", rec, err)
	}
}

// The progress of a stream says how much is done, without a percentage
// or an ETA it cannot know.
func TestLineOfAStream(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := Stats{Kind: "dossiers", BytesDone: 3 << 20, BytesTotal: -1, RunRecords: 1000, Stored: 990, Rejected: 10, Started: start}
	got := Line(s, start.Add(10*time.Second))
	want := "dossiers: 3.0 MiB done (of a stream), 100 records/s; stored 990, duplicates 0, rejected 10"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	s.BytesTotal = 6 << 20
	if got := Line(s, start.Add(10*time.Second)); !strings.Contains(got, "50.0% (3.0 MiB of 6.0 MiB)") || !strings.Contains(got, "ETA 10s") {
		t.Errorf("a file's line: %q", got)
	}
}
