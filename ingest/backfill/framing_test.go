package backfill

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// csvRecord is what a reader made of one record: its cells, or that it
// could not be read, and where it starts.
type csvRecord struct {
	line  int64
	cells []string
	bad   bool
}

func readCSV(r io.Reader, max int) ([]csvRecord, int64, error) {
	c := newCSVReader(newLines(bufio.NewReaderSize(r, 16), max))
	var out []csvRecord
	for {
		rec, err := c.next()
		if err == io.EOF {
			return out, c.l.offset, nil
		}
		if err != nil {
			return out, c.l.offset, err
		}
		out = append(out, csvRecord{line: rec.line, cells: slices.Clone(rec.cells), bad: rec.problem != ""})
	}
}

// readStdCSV reads body with encoding/csv, the reference.
func readStdCSV(body []byte) ([]csvRecord, int64) {
	r := csv.NewReader(bytes.NewReader(body))
	r.FieldsPerRecord = -1
	var out []csvRecord
	for {
		cells, err := r.Read()
		if err == io.EOF {
			return out, r.InputOffset()
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			out = append(out, csvRecord{line: int64(pe.StartLine), bad: true})
			continue
		}
		line, _ := r.FieldPos(0)
		out = append(out, csvRecord{line: int64(line), cells: cells})
	}
}

// FuzzCSVReader checks the CSV reader against encoding/csv: the same
// records with the same cells, the same malformed ones, the same lines
// and the same bytes consumed, read whole or a byte at a time.
func FuzzCSVReader(f *testing.F) {
	for _, s := range []string{
		"event_id,status\ne1,received\n",
		"a,\"b,c\",\"d\"\"e\"\r\n\r\n\"multi\nline\",x\n",
		"a,b\"c\n\"open\nnext,line\n",
		"\"x\"y,z\nok,1\n",
		"last,line,no,break",
		"\"unterminated",
		"a\r\n\r\nb\r",
		"\n\n,\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		want, wantOff := readStdCSV(body)
		for _, r := range []io.Reader{bytes.NewReader(body), iotest.OneByteReader(bytes.NewReader(body))} {
			got, off, err := readCSV(r, 1<<20)
			if err != nil {
				t.Fatalf("read %q: %v", body, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%q: %d records, encoding/csv %d:\n%v\n%v", body, len(got), len(want), got, want)
			}
			for i := range got {
				g, w := got[i], want[i]
				if g.bad != w.bad || g.line != w.line || !g.bad && !slices.Equal(g.cells, w.cells) {
					t.Fatalf("%q: record %d is %+v, encoding/csv %+v", body, i, g, w)
				}
			}
			if off != wantOff {
				t.Fatalf("%q: consumed %d bytes, encoding/csv %d", body, off, wantOff)
			}
		}
	})
}

// A record longer than the bound is refused alone, cut short, and the
// records after it are read.
func TestCSVReaderBoundsARecord(t *testing.T) {
	body := "a,b\n\"" + strings.Repeat("x", 100) + "\nstill open\n" + "c,d\n"
	c := newCSVReader(newLines(bufio.NewReader(strings.NewReader(body)), 64))
	var got []record
	for {
		rec, err := c.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rec.raw = slices.Clone(rec.raw)
		got = append(got, rec)
	}
	if len(got) != 4 || got[0].problem != "" || !strings.Contains(got[1].problem, "longer than 64 bytes") ||
		len(got[1].raw) > 64 || got[3].problem != "" || !slices.Equal(got[3].cells, []string{"c", "d"}) || got[3].line != 4 {
		t.Fatalf("got %+v", got)
	}
}

// FuzzNDJSONReader checks the line reader: every line that is not blank
// is a record, numbered by its line, with its text whole (or cut to the
// bound and marked), read whole or a byte at a time.
func FuzzNDJSONReader(f *testing.F) {
	f.Add([]byte("{\"a\":1}\n\n  \r\n{\"b\":2}\r\n{\"c\""), 8)
	f.Add([]byte("x\ny"), 1)
	f.Fuzz(func(t *testing.T, body []byte, max int) {
		if max < 1 || max > 1<<16 {
			max = 1 << 16
		}
		type rec struct {
			line    int64
			raw     string
			tooLong bool
		}
		var want []rec
		for i, l := range bytes.SplitAfter(body, []byte("\n")) {
			if len(bytes.TrimSpace(l)) == 0 && len(l) <= max {
				continue
			}
			r := rec{line: int64(i + 1), raw: string(trimLineBreak(l))}
			if len(l) > max {
				r.raw, r.tooLong = string(trimLineBreak(l[:max])), true
			}
			want = append(want, r)
		}
		for _, src := range []io.Reader{bytes.NewReader(body), iotest.OneByteReader(bytes.NewReader(body))} {
			l := newLines(bufio.NewReaderSize(src, 16), max)
			r := &ndjsonReader{l: l}
			var got []rec
			for {
				x, err := r.next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, rec{line: x.line, raw: string(x.raw), tooLong: x.problem != ""})
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%q (max %d): got %+v, want %+v", body, max, got, want)
			}
			if l.offset != int64(len(body)) {
				t.Fatalf("%q: consumed %d of %d bytes", body, l.offset, len(body))
			}
		}
	})
}
