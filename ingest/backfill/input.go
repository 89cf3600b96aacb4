package backfill

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
)

// Formats of an input file.
const (
	FormatNDJSON = "ndjson"
	FormatCSV    = "csv"
)

// headBytes is how much of a file its identity hashes: enough to tell an
// export from another of the same size, cheap on a file of gigabytes.
const headBytes = 1 << 20

// Stdin is the name by which standard input is given as a file.
const Stdin = "-"

// input is one file to import: where it is, what it is, and what makes
// it the same file when an import resumes.
type input struct {
	path   string // as given
	abs    string
	size   int64  // -1 for standard input, whose size is not known
	head   string // SHA-256 of its first headBytes, hex; empty for standard input
	gzip   bool
	format string
	// stdin: the records are piped in; read once, from its start, and a
	// resumed import reads and drops what was imported before, checking
	// its sum (see lines).
	stdin bool
	// guessed: standard input without --format, read as NDJSON.
	guessed bool
}

// inspect finds out what path is: its identity, whether it is gzip (by its
// first bytes, whatever its name) and its format (format when given, else
// by its name).
func inspect(path, format string) (input, error) {
	in := input{path: path}
	abs, err := filepath.Abs(path)
	if err != nil {
		return in, fmt.Errorf("%s: %w", path, err)
	}
	in.abs = abs
	f, err := os.Open(path)
	if err != nil {
		return in, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return in, err
	}
	if !st.Mode().IsRegular() {
		return in, fmt.Errorf("%s is not a regular file: an import reads files it can read again when it resumes; "+
			"to import a stream, pipe it into standard input and give - as the file, with --state (… | iocd import KIND --state S -)", path)
	}
	in.size = st.Size()
	h := sha256.New()
	n, err := io.CopyN(h, f, headBytes)
	if err != nil && err != io.EOF {
		return in, fmt.Errorf("read %s: %w", path, err)
	}
	in.head = hex.EncodeToString(h.Sum(nil))
	if n >= 2 {
		var magic [2]byte
		if _, err := f.ReadAt(magic[:], 0); err != nil {
			return in, fmt.Errorf("read %s: %w", path, err)
		}
		in.gzip = magic == [2]byte{0x1f, 0x8b}
	}
	in.format = format
	if in.format == "" {
		if in.format = formatOf(path); in.format == "" {
			return in, fmt.Errorf("cannot tell the format of %s from its name: name it .ndjson, .jsonl, .json or .csv (.gz added when compressed), or give --format ndjson or --format csv", path)
		}
	}
	return in, nil
}

// formatOf is the format a file's name says, "" when it says none.
func formatOf(path string) string {
	name := strings.ToLower(filepath.Base(path))
	for _, ext := range []string{".gz", ".gzip"} {
		name = strings.TrimSuffix(name, ext)
	}
	switch filepath.Ext(name) {
	case ".ndjson", ".jsonl", ".json":
		return FormatNDJSON
	case ".csv":
		return FormatCSV
	}
	return ""
}

// stem is a file's name without the extensions formatOf reads.
func stem(path string) string {
	name := filepath.Base(path)
	for {
		ext := filepath.Ext(name)
		switch strings.ToLower(ext) {
		case ".gz", ".gzip", ".ndjson", ".jsonl", ".json", ".csv":
			name = strings.TrimSuffix(name, ext)
			continue
		}
		return name
	}
}

// source is an input opened for reading: its bytes counted as they are
// read from the file (compressed, for gzip), then decompressed and
// buffered.
type source struct {
	in    input
	f     *os.File
	read  *atomic.Int64 // bytes of the file read so far, shared with progress
	gz    *gzip.Reader
	br    *bufio.Reader
	lines *lines
}

// countingReader counts what it reads into n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// readBuffer is the read-ahead of a file (decompressed).
const readBuffer = 256 << 10

// openStdin reads standard input (r) as the input "-": gzip if its first
// bytes say so, in format (empty: NDJSON). It is read once: the source is
// the only one, from the first byte on, and its lines are summed.
func openStdin(r io.Reader, read *atomic.Int64, format string, maxRecord int) (input, *source, error) {
	in := input{path: Stdin, abs: Stdin, size: -1, stdin: true, format: format}
	if in.format == "" {
		in.format, in.guessed = FormatNDJSON, true
	}
	s := &source{in: in, read: read}
	raw := bufio.NewReaderSize(countingReader{r: r, n: read}, readBuffer)
	magic, err := raw.Peek(2)
	if err != nil && err != io.EOF {
		return in, nil, fmt.Errorf("read standard input: %w", err)
	}
	s.br = raw
	if in.gzip = len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b; in.gzip {
		if s.gz, err = gzip.NewReader(raw); err != nil {
			return in, nil, fmt.Errorf("standard input: %w", readError(err))
		}
		s.br = bufio.NewReaderSize(s.gz, readBuffer)
	}
	s.in = in
	s.lines = newLines(s.br, maxRecord)
	s.lines.summed = true
	return in, s, nil
}

// open opens in for reading from its start; read counts the file's bytes.
func (in input) open(read *atomic.Int64, maxRecord int) (*source, error) {
	f, err := os.Open(in.path)
	if err != nil {
		return nil, err
	}
	s := &source{in: in, f: f, read: read}
	if err := s.reset(0); err != nil {
		f.Close()
		return nil, err
	}
	s.lines = newLines(s.br, maxRecord)
	return s, nil
}

// reset reads the file again from (decompressed) offset 0, or, for a file
// not compressed, from any offset.
func (s *source) reset(offset int64) error {
	if _, err := s.f.Seek(offset, io.SeekStart); err != nil {
		return fmt.Errorf("seek in %s: %w", s.in.path, err)
	}
	s.read.Store(offset)
	var r io.Reader = countingReader{r: s.f, n: s.read}
	if s.in.gzip {
		gz, err := gzip.NewReader(bufio.NewReaderSize(r, readBuffer))
		if err != nil {
			return fmt.Errorf("%s: %w", s.in.path, err)
		}
		s.gz, r = gz, gz
	}
	if s.br == nil {
		s.br = bufio.NewReaderSize(r, readBuffer)
	} else {
		s.br.Reset(r)
	}
	return nil
}

// skipTo moves on to the decompressed offset, past what was read: a seek
// for a plain file, reading and dropping for gzip and for standard input.
// line is the number of lines before it; sum, for standard input, is the
// CRC-32C of the bytes before it when they were imported.
func (s *source) skipTo(offset, line int64, sum uint32) error {
	l := s.lines
	switch {
	case offset < l.offset:
		return fmt.Errorf("%s: cannot go back to byte %d", s.in.path, offset)
	case s.in.stdin:
		if err := s.dropSummed(offset - l.offset); err != nil {
			return err
		}
		if l.crc != sum {
			return fmt.Errorf("standard input is not the stream the interrupted import read: its first %d bytes differ (CRC-32C %08x, was %08x); "+
				"pipe the same records again, in the same order, to resume, or give --restart to import this stream from its start "+
				"(records stored already are counted once)", offset, l.crc, sum)
		}
	case offset == l.offset:
	case s.in.gzip:
		if _, err := s.br.Discard(int(offset - l.offset)); err != nil {
			return fmt.Errorf("skip the records of %s imported before: %w", s.in.path, readError(err))
		}
	default:
		if err := s.reset(offset); err != nil {
			return err
		}
	}
	l.offset, l.line = offset, line
	return nil
}

// dropSummed reads n bytes of standard input and drops them, adding them
// to the lines' sum.
func (s *source) dropSummed(n int64) error {
	l := s.lines
	for n > 0 {
		b, err := s.br.Peek(int(min(n, int64(s.br.Size()))))
		l.crc = crc32.Update(l.crc, castagnoli, b)
		l.offset += int64(len(b))
		n -= int64(len(b))
		if _, derr := s.br.Discard(len(b)); derr != nil && err == nil {
			err = derr
		}
		switch {
		case n > 0 && errors.Is(err, io.EOF):
			return fmt.Errorf("standard input ended after %d bytes, before the %d bytes the interrupted import had read: "+
				"pipe the same records again, whole, to resume, or give --restart to import this stream from its start", l.offset, l.offset+n)
		case n > 0 && err != nil && !errors.Is(err, bufio.ErrBufferFull):
			return fmt.Errorf("skip the records of standard input imported before: %w", readError(err))
		}
	}
	return nil
}

// readError says what a failure to read a file means.
func readError(err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader):
		return fmt.Errorf("%w (is the file whole? a compressed file cut short or damaged cannot be read past that point)", err)
	}
	return err
}

// quoteStart quotes the first n bytes of b, for a message.
func quoteStart(b []byte, n int) string {
	return strconv.Quote(string(b[:min(n, len(b))]))
}

func (s *source) close() error {
	if s.gz != nil {
		s.gz.Close()
	}
	if s.f == nil {
		return nil // standard input: not ours to close
	}
	return s.f.Close()
}

// check reads the start of the file: a CSV file must begin with a header
// of the kind's fields (returned), an NDJSON file with an object.
func (s *source) check() (header []string, err error) {
	if s.in.format == FormatCSV {
		rec, err := newCSVReader(s.lines).next()
		switch {
		case err == io.EOF:
			return nil, errNoHeader
		case err != nil:
			return nil, readError(err)
		case rec.problem != "":
			return nil, fmt.Errorf("the header row cannot be read: %s", rec.problem)
		}
		return rec.cells, nil
	}
	b, err := s.br.Peek(64)
	if err != nil && err != io.EOF {
		return nil, readError(err)
	}
	t := bytes.TrimLeft(b, " \t\r\n")
	switch {
	case len(t) > 0 && t[0] == '[':
		return nil, errors.New("it holds a JSON array; an import reads NDJSON, one object per line: convert it with jq -c '.[]'")
	case s.in.guessed && len(t) > 0 && t[0] != '{':
		return nil, fmt.Errorf("it does not begin with a JSON object (%s…): give --format csv for CSV, or --format ndjson to read it as NDJSON all the same", quoteStart(t, 20))
	}
	return nil, nil
}
