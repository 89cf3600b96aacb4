package backfill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openioc/ioc/ingest"
)

// Config says what to import and how. Zero fields take the defaults.
type Config struct {
	// Kind is one of ingest.ImportKinds.
	Kind string
	// Files are read in order; "-" (Stdin) is standard input, at most once.
	Files []string
	// Format is ndjson or csv for every file; empty: each file's name
	// says, and standard input is NDJSON.
	Format string
	// State is the state file; empty: named after the files, in the
	// current directory (see defaultPaths). Required with standard input,
	// which has no name to find it by.
	State string
	// Rejects is the rejects file; empty: beside the state file, or where
	// the interrupted import wrote them.
	Rejects string
	// Restart forgets an earlier import of the same files and starts over.
	Restart bool
	// ChunkRecords is the records handed to the writer at once, each chunk
	// stored as one batch; default 50,000.
	ChunkRecords int
	// InFlight bounds the chunks being stored while the next is read;
	// default 3. Memory is about (InFlight+1) chunks.
	InFlight int
	// MaxRecordBytes bounds one record's text; default 1 MiB. A longer
	// record is refused, its neighbours read on.
	MaxRecordBytes int
	// StoreTimeout bounds the storing of one chunk, its wait for the
	// chunks before it included; default 5m.
	StoreTimeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Stdin is what "-" reads; default os.Stdin.
	Stdin io.Reader
}

func (c Config) withDefaults() Config {
	if c.ChunkRecords <= 0 {
		c.ChunkRecords = 50000
	}
	if c.InFlight <= 0 {
		c.InFlight = 3
	}
	if c.MaxRecordBytes <= 0 {
		c.MaxRecordBytes = 1 << 20
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = 5 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Stdin == nil {
		c.Stdin = os.Stdin
	}
	return c
}

// ErrInterrupted ends an import stopped before its end, its state saved.
var ErrInterrupted = errors.New("interrupted; rerun the same command to resume")

// Backfill is one import of files: what they are, where an earlier run
// stopped, and the counts so far. Run it once.
type Backfill struct {
	cfg       Config
	logger    *slog.Logger
	files     []input
	columns   []*ingest.CSVColumns // per file; nil for NDJSON
	statePath string
	resumed   bool

	t tracker

	bytesTotal int64 // -1 when standard input is read: not known
	// filePos is the bytes read of the file being read (compressed, for
	// gzip), and stdinRead those of standard input; a chunk notes it as it
	// ends, and the tracker counts the bytes of the records acknowledged
	// from it.
	filePos, stdinRead atomic.Int64
	// stdin is standard input, opened by Open (which reads a CSV header)
	// and read on by Run: it cannot be opened again.
	stdin   *source
	started atomic.Int64 // this run's start, Unix nanoseconds
}

// Open checks the files (each readable, of a known format, a CSV file's
// header naming the kind's fields) and the state an earlier run left:
// refusing, with how to go on, files that changed since. It touches no
// database.
func Open(cfg Config, logger *slog.Logger) (*Backfill, error) {
	cfg = cfg.withDefaults()
	if !slices.Contains(ingest.ImportKinds, cfg.Kind) {
		return nil, fmt.Errorf("unknown kind of record %q: import %s", cfg.Kind, joinOr(ingest.ImportKinds))
	}
	if len(cfg.Files) == 0 {
		return nil, errors.New("no files to import: give one or more NDJSON or CSV files (.gz accepted)")
	}
	if cfg.Format != "" && cfg.Format != FormatNDJSON && cfg.Format != FormatCSV {
		return nil, fmt.Errorf("--format %q: use ndjson or csv (or leave it out to go by each file's name)", cfg.Format)
	}
	if slices.Contains(cfg.Files, Stdin) && cfg.State == "" {
		// The default state is named after the files; a stream has no name
		// that would find it again.
		return nil, errors.New("reading standard input (-), the import needs --state FILE to note how far it got: " +
			"give --state, and to resume, run the same command with the same --state and pipe the same records again")
	}
	b := &Backfill{cfg: cfg, logger: logger}
	seen := map[string]bool{}
	for _, path := range cfg.Files {
		var in input
		var err error
		if path == Stdin {
			if b.stdin != nil {
				return nil, errors.New("- (standard input) is given twice: give it once")
			}
			in, b.stdin, err = openStdin(cfg.Stdin, &b.stdinRead, cfg.Format, cfg.MaxRecordBytes)
		} else {
			in, err = inspect(path, cfg.Format)
		}
		if err != nil {
			return nil, err
		}
		if seen[in.abs] {
			return nil, fmt.Errorf("%s is given twice: give each file once", path)
		}
		seen[in.abs] = true
		cols, err := b.checkFile(in)
		if err != nil {
			if in.stdin {
				return nil, fmt.Errorf("standard input: %w", err)
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		b.files = append(b.files, in)
		b.columns = append(b.columns, cols)
		b.bytesTotal += in.size
	}
	if b.stdin != nil {
		b.bytesTotal = -1
	}

	statePath, rejectsPath := defaultPaths(cfg.Kind, b.files)
	if cfg.State != "" {
		statePath, rejectsPath = cfg.State, rejectsNextTo(cfg.State)
	}
	b.statePath = statePath
	st, err := loadState(statePath)
	if err != nil && !cfg.Restart {
		return nil, err
	}
	if cfg.Restart {
		st = nil
	}
	if st != nil {
		if err := st.match(cfg.Kind, statePath, b.files); err != nil {
			return nil, err
		}
		if cfg.Rejects != "" && absPath(cfg.Rejects) != st.Rejects {
			return nil, fmt.Errorf("the interrupted import listed its rejects in %s: leave --rejects out (or give that file) to resume, or run again with --restart", st.Rejects)
		}
		b.resumed = true
	} else {
		if cfg.Rejects != "" {
			rejectsPath = cfg.Rejects
		}
		// Absolute: a rerun from another directory naming the same --state
		// finds it.
		st = newState(cfg.Kind, absPath(rejectsPath), b.files, cfg.Now().UTC())
	}
	b.t = tracker{state: st, statePath: statePath, files: b.files, pending: map[int]*chunk{}}
	b.t.count()
	b.t.startBytes = b.t.bytes.Load()
	return b, nil
}

// checkFile reads the start of a file: NDJSON must not be a JSON array,
// and a CSV header must name fields of the kind.
func (b *Backfill) checkFile(in input) (*ingest.CSVColumns, error) {
	src := b.stdin // its header, once read, is gone: Run reads on after it
	if !in.stdin {
		var read atomic.Int64
		var err error
		if src, err = in.open(&read, b.cfg.MaxRecordBytes); err != nil {
			return nil, err
		}
		defer src.close()
	}
	header, err := src.check()
	if err != nil {
		return nil, err
	}
	if in.format != FormatCSV {
		return nil, nil
	}
	cols, err := ingest.NewCSVColumns(b.cfg.Kind, header)
	if err != nil {
		return nil, err
	}
	if len(cols.Ignored) > 0 {
		b.logger.Warn("columns that are no field of the records are ignored", "file", in.path, "columns", cols.Ignored)
	}
	return cols, nil
}

// StatePath is the state file; RejectsPath the rejects file.
func (b *Backfill) StatePath() string   { return b.statePath }
func (b *Backfill) RejectsPath() string { return b.t.state.Rejects }

// Resumed says whether the import goes on from an earlier run.
func (b *Backfill) Resumed() bool { return b.resumed }

// Done says whether every record of the files was imported already.
func (b *Backfill) Done() bool { return b.t.state.done() }

// Stats are an import's counts, for its progress.
type Stats struct {
	Kind string
	// BytesDone are the bytes of the files (as stored: compressed for
	// gzip) whose records are acknowledged; StartBytes were before this
	// run. BytesTotal is -1 when standard input is read.
	BytesDone, BytesTotal int64
	StartBytes            int64
	Records               int64 // read and acknowledged, in every run
	RunRecords            int64 // … in this run
	Stored, Duplicates    int64
	Rejected              int64
	Started               time.Time // this run
}

// Stats are the counts now; safe to call while Run runs.
func (b *Backfill) Stats() Stats {
	return Stats{Kind: b.cfg.Kind, BytesDone: b.t.bytes.Load(), BytesTotal: b.bytesTotal,
		StartBytes: b.t.startBytes, Records: b.t.records.Load(), RunRecords: b.t.runRecords.Load(),
		Stored: b.t.stored.Load(), Duplicates: b.t.duplicates.Load(), Rejected: b.t.rejected.Load(), Started: b.startTime()}
}

// Summary is what an import did, over every run.
type Summary struct {
	Stats
	Files   int
	Elapsed time.Duration // this run
	Resumed bool
	State   string
	Rejects string
}

// Summary is the import's summary now.
func (b *Backfill) Summary() Summary {
	s := Summary{Stats: b.Stats(), Files: len(b.files), Resumed: b.resumed, State: b.statePath, Rejects: b.RejectsPath()}
	if !s.Started.IsZero() {
		s.Elapsed = b.cfg.Now().Sub(s.Started)
	}
	return s
}

func (b *Backfill) startTime() time.Time {
	if ns := b.started.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Run imports the files through imp, from where an earlier run stopped,
// until every record is stored or refused, ctx ends (ErrInterrupted), or a
// chunk cannot be stored. One goroutine reads, decodes and validates;
// InFlight chunks are stored meanwhile, each as one batch, and their
// stores run to their end (bounded by StoreTimeout) also after ctx ends.
// The state is saved after each chunk acknowledged in order, so a rerun
// resumes there whatever stopped this one.
func (b *Backfill) Run(ctx context.Context, imp *ingest.Import) (Summary, error) {
	if imp.Kind() != b.cfg.Kind {
		return b.Summary(), fmt.Errorf("import of %s given records of %s", b.cfg.Kind, imp.Kind())
	}
	b.started.Store(b.cfg.Now().UnixNano())
	rej, err := openRejects(b.t.state.Rejects, b.t.state.RejectsBytes)
	if err != nil {
		return b.Summary(), err
	}
	b.t.rejects = rej
	// Saved at once: a rerun finds the state (and the rejects cut back)
	// even if this run stops before its first chunk.
	b.t.mu.Lock()
	err = b.t.save(b.cfg.Now())
	b.t.mu.Unlock()
	if err != nil {
		rej.close()
		return b.Summary(), err
	}

	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	slots := make(chan struct{}, b.cfg.InFlight)
	var stores sync.WaitGroup
	send := func(ch *chunk) bool {
		select {
		case slots <- struct{}{}:
		case <-readCtx.Done():
			return false // dropped: its records are read again by the rerun
		}
		stores.Go(func() {
			defer func() { <-slots }()
			// A chunk handed to the writer is stored to its end, also when
			// the import is interrupted: the rerun then finds it stored.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.StoreTimeout)
			out, err := ch.c.Store(sctx)
			cancel()
			if err == nil {
				err = b.t.acked(ch, out, b.cfg.Now())
			}
			if err != nil {
				b.t.fail(ch, err)
				stopReading()
			}
		})
		return true
	}
	readErr := b.read(readCtx, imp, send)
	stores.Wait()
	if err := rej.close(); err != nil && b.t.err == nil {
		b.t.err = err
	}

	sum := b.Summary()
	switch {
	case b.t.err != nil:
		return sum, b.t.err
	case b.t.state.done():
		return sum, nil
	case readErr != nil && ctx.Err() == nil:
		return sum, readErr
	default:
		return sum, ErrInterrupted
	}
}

// read reads every file not yet done into chunks and hands each full one
// to send, until the files end or ctx does.
func (b *Backfill) read(ctx context.Context, imp *ingest.Import, send func(*chunk) bool) error {
	seq := 0
	ch := b.newChunk(imp, seq, 0)
	for fi := range b.files {
		fs := b.t.state.Files[fi]
		if fs.Done {
			continue
		}
		var err error
		ch, seq, err = b.readFile(ctx, imp, fi, fs, ch, seq, send)
		if err != nil {
			return err
		}
	}
	if len(ch.segments) > 0 && !send(ch) {
		return ctx.Err()
	}
	return nil
}

// readFile reads one file from where its import stopped, adding its
// records to ch and sending each chunk that fills; it returns the chunk
// being filled.
func (b *Backfill) readFile(ctx context.Context, imp *ingest.Import, fi int, fs fileState, ch *chunk, seq int, send func(*chunk) bool) (*chunk, int, error) {
	in := b.files[fi]
	src := b.stdin
	if !in.stdin {
		var err error
		if src, err = in.open(&b.filePos, b.cfg.MaxRecordBytes); err != nil {
			return ch, seq, err
		}
	}
	defer src.close()
	var fr framer = &ndjsonReader{l: src.lines}
	cols := b.columns[fi]
	if in.format == FormatCSV {
		cr := newCSVReader(src.lines)
		// The header, checked by Open; standard input's was read there.
		if !in.stdin {
			if _, err := cr.next(); err != nil && err != io.EOF {
				return ch, seq, fmt.Errorf("read %s: %w", in.path, readError(err))
			}
		}
		fr = cr
	}
	if fs.Records > 0 {
		if err := src.skipTo(fs.Offset, fs.Line, fs.PrefixCRC32C); err != nil {
			return ch, seq, err
		}
	}
	n := fs.Records
	seg := ch.segment(fi, n, src.lines)
	for {
		if n&255 == 0 && ctx.Err() != nil {
			return ch, seq, ctx.Err()
		}
		rec, err := fr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return ch, seq, fmt.Errorf("read %s after line %d: %w", in.path, src.lines.line, readError(err))
		}
		n++
		ch.add(fi, n, rec, cols, in.format == FormatCSV)
		seg.records, seg.offset, seg.line, seg.crc, seg.pos = n, src.lines.offset, src.lines.line, src.lines.crc, src.read.Load()
		if ch.len() >= b.cfg.ChunkRecords {
			// Read before it is sent: once stored, the chunk lets go of its
			// text on the goroutine that stored it.
			hint := ch.rawLen()
			if !send(ch) {
				return ch, seq, ctx.Err()
			}
			seq++
			ch = b.newChunk(imp, seq, hint)
			seg = ch.segment(fi, n, src.lines)
		}
	}
	seg.done, seg.pos = true, in.size
	if in.stdin {
		seg.pos = src.read.Load()
	}
	return ch, seq, nil
}

// newChunk starts chunk seq with room for the records of a full one and
// for text like the last one's.
func (b *Backfill) newChunk(imp *ingest.Import, seq, rawHint int) *chunk {
	return &chunk{seq: seq, c: imp.Chunk(b.cfg.ChunkRecords), raw: make([]byte, 0, rawHint+rawHint/8),
		refs: make([]recordRef, 0, b.cfg.ChunkRecords)}
}

// chunk is records read for one store: their text and place (for the
// rejects file) and, per file they come from, where they end.
type chunk struct {
	seq      int
	c        *ingest.Chunk
	raw      []byte      // every record's text, back to back
	refs     []recordRef // by record id
	segments []*segment
	unread   []ingest.RecordError // records that could not be decoded at all
	outcome  ingest.ChunkOutcome  // once stored
}

// recordRef is where a record of a chunk comes from.
type recordRef struct {
	file      int
	end       int   // of its text in raw; it starts where the one before ends
	line, nth int64 // its first line, and its number in the file
	csv       bool
}

// segment is where a chunk's records of one file end.
type segment struct {
	file                  int
	records, offset, line int64
	crc                   uint32 // standard input's sum up to offset
	pos                   int64  // bytes of the file read by then (compressed, for gzip)
	done                  bool   // the file's last records: it is done with the chunk
}

func (c *chunk) len() int    { return len(c.refs) }
func (c *chunk) rawLen() int { return len(c.raw) }

// segment starts the chunk's part of file fi, after its first records.
func (c *chunk) segment(fi int, records int64, l *lines) *segment {
	s := &segment{file: fi, records: records, offset: l.offset, line: l.line, crc: l.crc, pos: -1}
	c.segments = append(c.segments, s)
	return s
}

// add adds the nth record of file fi and hands it to the ingest chunk to
// decode and validate; a record that cannot be decoded at all is refused
// here with its problem.
func (c *chunk) add(fi int, nth int64, rec record, cols *ingest.CSVColumns, csv bool) {
	id := len(c.refs)
	start := len(c.raw)
	c.raw = append(c.raw, rec.raw...)
	c.refs = append(c.refs, recordRef{file: fi, end: len(c.raw), line: rec.line, nth: nth, csv: csv})
	switch {
	case rec.problem != "":
		c.unread = append(c.unread, ingest.RecordError{Index: id, Problems: []string{rec.problem}})
	case csv:
		c.c.AddCSV(id, cols, rec.cells)
	default:
		c.c.AddJSON(id, c.raw[start:])
	}
}

// text is record id's text.
func (c *chunk) text(id int) []byte {
	start := 0
	if id > 0 {
		start = c.refs[id-1].end
	}
	return c.raw[start:c.refs[id].end]
}

// tracker follows the chunks being stored: it takes each acknowledgement,
// and once the chunks before it are acknowledged too, lists its rejects and
// saves the state, so that the state only ever covers a contiguous prefix
// of every file.
type tracker struct {
	mu        sync.Mutex
	state     *state
	statePath string
	files     []input
	rejects   *rejectsFile
	next      int            // the chunk to checkpoint next
	pending   map[int]*chunk // acknowledged out of order
	err       error          // the first failure

	records, runRecords, stored, duplicates, rejected atomic.Int64
	bytes                                             atomic.Int64 // of the records done, as the files' Pos say
	startBytes                                        int64        // … when the run began
}

// count publishes the state's counts.
func (t *tracker) count() {
	t.records.Store(t.state.Records)
	t.stored.Store(t.state.Stored)
	t.duplicates.Store(t.state.Duplicates)
	t.rejected.Store(t.state.Rejected)
	var n int64
	for _, f := range t.state.Files {
		if f.Done && f.Size >= 0 {
			n += f.Size
		} else {
			n += f.Pos
		}
	}
	t.bytes.Store(n)
}

// acked records that ch is stored with out.
func (t *tracker) acked(ch *chunk, out ingest.ChunkOutcome, now time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	// Also after a failure: the chunks before the failed one still move
	// the state on, which never passes the failed one.
	ch.outcome = out
	t.pending[ch.seq] = ch
	advanced := false
	for {
		c, ok := t.pending[t.next]
		if !ok {
			break
		}
		delete(t.pending, t.next)
		t.next++
		if err := t.checkpoint(c); err != nil {
			return err
		}
		advanced = true
	}
	if !advanced {
		return nil
	}
	n, err := t.rejects.sync()
	if err != nil {
		return err
	}
	t.state.RejectsBytes = n
	return t.save(now)
}

// checkpoint lists a chunk's rejects in order and moves its files on.
func (t *tracker) checkpoint(c *chunk) error {
	refused := append(slices.Clone(c.unread), c.outcome.Refused...)
	slices.SortFunc(refused, func(a, b ingest.RecordError) int { return a.Index - b.Index })
	for _, e := range refused {
		ref := c.refs[e.Index]
		r := Reject{File: t.files[ref.file].path, Line: ref.line, Problems: e.Problems, Raw: string(c.text(e.Index))}
		if ref.csv {
			r.Record = ref.nth
		}
		if err := t.rejects.write(r); err != nil {
			return err
		}
	}
	for _, s := range c.segments {
		f := &t.state.Files[s.file]
		f.Records, f.Offset, f.Line, f.PrefixCRC32C, f.Done = s.records, s.offset, s.line, s.crc, s.done
		if s.pos >= 0 {
			f.Pos = s.pos
		}
	}
	st := t.state
	st.Records += int64(c.len())
	st.Stored += int64(c.outcome.Stored)
	st.Duplicates += int64(c.outcome.Duplicates)
	st.Rejected += int64(len(refused))
	t.runRecords.Add(int64(c.len()))
	t.count()
	c.raw, c.refs = nil, nil // the chunk's memory goes with it
	return nil
}

func (t *tracker) save(now time.Time) error {
	t.state.UpdatedAt = now.UTC()
	if t.state.done() && t.state.FinishedAt == nil {
		at := now.UTC()
		t.state.FinishedAt = &at
	}
	return t.state.save(t.statePath)
}

// fail stops the import at chunk ch: its records and those after it are
// not checkpointed, and are read again by the rerun.
func (t *tracker) fail(ch *chunk, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return
	}
	where := ""
	if len(ch.refs) > 0 {
		first := ch.refs[0]
		where = fmt.Sprintf(" (records from %s line %d on)", t.files[first.file].path, first.line)
	}
	t.err = fmt.Errorf("store %s%s: %w; the import stopped, its state saved: rerun the same command to resume", kindRecords(t.state.Kind), where, err)
}

func kindRecords(kind string) string {
	switch kind {
	case ingest.KindCameraEvents:
		return "camera events"
	case ingest.KindSensorReadings:
		return "sensor readings"
	}
	return "dossier events"
}

func absPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

func joinOr(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	out := ""
	for i, x := range xs {
		switch {
		case i == len(xs)-1:
			out += " or " + x
		case i > 0:
			out += ", " + x
		default:
			out += x
		}
	}
	return out
}
