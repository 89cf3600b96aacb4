package backfill

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// Progress shows an import's progress on a writer (stderr). On a terminal
// it rewrites one line in place a few times a second; elsewhere (a log, a
// pipe) it writes a line every interval. Log lines written through it go
// above the terminal's line rather than through it.
//
// Concurrency: Run owns the periodic writing; Write and Done may be called
// from any goroutine.
type Progress struct {
	w        io.Writer
	terminal bool
	every    time.Duration
	stats    func() Stats
	now      func() time.Time

	mu    sync.Mutex
	shown string // the line on the terminal now
}

// NewProgress shows stats on w every interval (a terminal: four times a
// second); now is the clock (nil: time.Now).
func NewProgress(w io.Writer, terminal bool, interval time.Duration, stats func() Stats, now func() time.Time) *Progress {
	if terminal {
		interval = 250 * time.Millisecond
	}
	if interval <= 0 {
		interval = 10 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	return &Progress{w: w, terminal: terminal, every: interval, stats: stats, now: now}
}

// Run shows the progress until ctx ends, then clears the terminal's line.
func (p *Progress) Run(ctx context.Context) {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.clear()
			return
		case <-t.C:
			p.show()
		}
	}
}

func (p *Progress) show() {
	s := p.stats()
	if s.Started.IsZero() {
		return // not reading yet
	}
	line := Line(s, p.now())
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.terminal {
		fmt.Fprint(p.w, "\r"+line+"\x1b[K")
		p.shown = line
		return
	}
	fmt.Fprintln(p.w, line)
}

func (p *Progress) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown != "" {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = ""
	}
}

// Write writes a log line above the progress line.
func (p *Progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown == "" {
		return p.w.Write(b)
	}
	fmt.Fprint(p.w, "\r\x1b[K")
	n, err := p.w.Write(b)
	fmt.Fprint(p.w, p.shown+"\x1b[K")
	return n, err
}

// Line is the progress line of s at now: the bytes done (their records
// acknowledged) of the total and the percentage, records per second and the time left (both over this
// run), and the counts so far.
// With standard input the total is not known: the line says how much is
// done, with neither percentage nor ETA.
func Line(s Stats, now time.Time) string {
	elapsed := now.Sub(s.Started)
	rate, eta := "–", "unknown"
	if elapsed > 0 {
		rate = count(int64(float64(s.RunRecords) / elapsed.Seconds()))
		if done := s.BytesDone - s.StartBytes; done > 0 && s.BytesTotal >= 0 {
			left := time.Duration(float64(s.BytesTotal-s.BytesDone) / float64(done) * float64(elapsed))
			eta = left.Round(time.Second).String()
		}
	}
	counts := fmt.Sprintf("stored %s, duplicates %s, rejected %s", count(s.Stored), count(s.Duplicates), count(s.Rejected))
	if s.BytesTotal < 0 {
		return fmt.Sprintf("%s: %s done (of a stream), %s records/s; %s", s.Kind, bytesText(s.BytesDone), rate, counts)
	}
	pct := 100.0
	if s.BytesTotal > 0 {
		pct = 100 * float64(s.BytesDone) / float64(s.BytesTotal)
	}
	return fmt.Sprintf("%s: %.1f%% (%s of %s), %s records/s, ETA %s; %s",
		s.Kind, pct, bytesText(s.BytesDone), bytesText(s.BytesTotal), rate, eta, counts)
}

// String is the summary of an import, one line.
func (s Summary) String() string {
	files := "files"
	if s.Files == 1 {
		files = "file"
	}
	out := fmt.Sprintf("%s: %s records of %d %s read: %s stored, %s already stored, %s rejected",
		s.Kind, count(s.Records), s.Files, files, count(s.Stored), count(s.Duplicates), count(s.Rejected))
	if s.Elapsed > 0 {
		out += fmt.Sprintf("; %s records in %s this run (%s records/s)", count(s.RunRecords), s.Elapsed.Round(time.Second),
			count(int64(float64(s.RunRecords)/s.Elapsed.Seconds())))
	}
	return out
}

// count writes n with thousands separators.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, u := float64(n), "KMGTPE"
	i := -1
	for v >= unit && i < len(u)-1 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, u[i])
}
