package backfill

import (
	"bufio"
	"errors"
	"hash/crc32"
	"io"
)

// lines reads a file a line at a time, each line bounded in memory, and
// counts the bytes and lines it consumed: where a record ends, and so where
// a resumed import starts reading again. For standard input, which cannot
// be told apart from another stream by its size or name, it also sums
// what it consumed (CRC-32C), so that a resumed import can check that the
// stream piped again begins with the bytes imported before.
type lines struct {
	br     *bufio.Reader
	max    int   // longest line kept, in bytes
	offset int64 // bytes consumed
	line   int64 // lines consumed
	buf    []byte
	summed bool   // crc is kept
	crc    uint32 // CRC-32C of the offset bytes consumed, when summed
}

// castagnoli is CRC-32C's table: the polynomial CPUs compute in hardware,
// so that summing a stream costs little next to decoding it.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func newLines(br *bufio.Reader, max int) *lines {
	return &lines{br: br, max: max}
}

// next returns the next line with its line break (the last line of a file
// may have none), valid until the next call; io.EOF once nothing is left. A
// line longer than max is returned cut to max bytes with long set, and the
// rest of it is consumed.
func (l *lines) next() (b []byte, long bool, err error) {
	l.buf = l.buf[:0]
	for {
		chunk, err := l.br.ReadSlice('\n')
		l.offset += int64(len(chunk))
		if l.summed {
			l.crc = crc32.Update(l.crc, castagnoli, chunk)
		}
		switch {
		case err == nil && len(l.buf) == 0 && !long && len(chunk) <= l.max:
			l.line++
			return chunk, false, nil // the usual case: no copy
		case len(l.buf)+len(chunk) > l.max:
			l.buf = append(l.buf, chunk[:l.max-len(l.buf)]...)
			long = true
		default:
			l.buf = append(l.buf, chunk...)
		}
		switch {
		case err == nil:
			l.line++
			return l.buf, long, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && (len(l.buf) > 0 || long):
			l.line++
			return l.buf, long, nil
		default:
			return nil, false, err
		}
	}
}
