package backfill

import (
	"bytes"
	"fmt"
)

// record is one record of a file as read, before it is decoded.
type record struct {
	raw   []byte   // its text without the final line break (cut short when too long); valid until the next record
	line  int64    // the line it starts on, from 1
	cells []string // of a CSV record
	// problem says why the record cannot be decoded at all (too long, a
	// malformed CSV record); empty when it can.
	problem string
}

// framer splits a file into records.
type framer interface {
	next() (record, error) // io.EOF after the last
}

// ndjsonReader reads NDJSON: a record per line, blank lines skipped, as
// the ingest endpoints read it.
type ndjsonReader struct{ l *lines }

func (r *ndjsonReader) next() (record, error) {
	for {
		b, long, err := r.l.next()
		if err != nil {
			return record{}, err
		}
		if !long && len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		rec := record{raw: trimLineBreak(b), line: r.l.line}
		if long {
			rec.problem = fmt.Sprintf("the line is longer than %d bytes, the most a record may take (--max-record-bytes); is it one JSON object?", r.l.max)
		}
		return rec, nil
	}
}

// trimLineBreak drops a final "\n" or "\r\n".
func trimLineBreak(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}
