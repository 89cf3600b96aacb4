package backfill

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// csvReader reads CSV records as RFC 4180 and encoding/csv have them
// (comma-separated; a cell in double quotes may hold commas, line breaks
// and doubled quotes; empty lines skipped; "\r\n" read as "\n"), with
// what encoding/csv does not give: each record's text as it stands in the
// file, for the rejects file, and a bound on a record's size, so that a
// quote left open costs no more than --max-record-bytes. A malformed record
// is returned with its problem; reading goes on at the next line, as
// encoding/csv does.
type csvReader struct {
	l      *lines
	raw    []byte // the record's lines as read
	norm   []byte // the current line with its line break made "\n"
	cells  []byte // the record's cells, back to back
	ends   []int  // where each cell ends in cells
	tooBig bool   // the record outgrew the bound
}

func newCSVReader(l *lines) *csvReader { return &csvReader{l: l} }

// readLine reads the next line into norm, normalised as encoding/csv's
// readLine does, and adds it to the record's text. err is io.EOF only
// when nothing was left.
func (c *csvReader) readLine() ([]byte, error) {
	b, long, err := c.l.next()
	if err != nil {
		return nil, err
	}
	if long || len(c.raw)+len(b) > c.l.max {
		c.tooBig = true
	}
	if !c.tooBig {
		c.raw = append(c.raw, b...)
	}
	line := append(c.norm[:0], b...)
	n := len(line)
	if n > 0 && line[n-1] != '\n' && line[n-1] == '\r' {
		line = line[:n-1] // the file's last line, without a line break
	}
	if n := len(line); n >= 2 && line[n-2] == '\r' && line[n-1] == '\n' {
		line[n-2] = '\n'
		line = line[:n-1]
	}
	c.norm = line
	return line, nil
}

func lengthNL(b []byte) int {
	if len(b) > 0 && b[len(b)-1] == '\n' {
		return 1
	}
	return 0
}

// next returns the next record. Its cells share one string.
func (c *csvReader) next() (record, error) {
	c.raw, c.cells, c.ends, c.tooBig = c.raw[:0], c.cells[:0], c.ends[:0], false
	var line []byte
	var errRead error
	for {
		line, errRead = c.readLine()
		if errRead == nil && len(line) == lengthNL(line) {
			c.raw = c.raw[:0]
			c.tooBig = false
			continue // an empty line
		}
		break
	}
	if errRead != nil {
		return record{}, errRead // io.EOF, or the file cannot be read
	}
	start := c.l.line
	problem := ""
	col := 1 // of line, in bytes from 1
parseField:
	for !c.tooBig {
		if len(line) == 0 || line[0] != '"' {
			// A cell not quoted: up to the next comma or the line's end.
			i := bytes.IndexByte(line, ',')
			field := line
			if i >= 0 {
				field = field[:i]
			} else {
				field = field[:len(field)-lengthNL(field)]
			}
			if j := bytes.IndexByte(field, '"'); j >= 0 {
				problem = fmt.Sprintf(`line %d, column %d: a " in a cell that is not quoted; put the cell in quotes and double each " in it ("a ""b"" c")`,
					c.l.line, col+j)
				break parseField
			}
			c.cells = append(c.cells, field...)
			c.ends = append(c.ends, len(c.cells))
			if i >= 0 {
				line = line[i+1:]
				col += i + 1
				continue parseField
			}
			break parseField
		}
		// A quoted cell: up to the quote before a comma or the line's end.
		cellLine := c.l.line
		line = line[1:]
		col++
		for !c.tooBig {
			i := bytes.IndexByte(line, '"')
			switch {
			case i >= 0:
				c.cells = append(c.cells, line[:i]...)
				line = line[i+1:]
				col += i + 1
				switch {
				case len(line) > 0 && line[0] == '"': // "" is a quote
					c.cells = append(c.cells, '"')
					line = line[1:]
					col++
				case len(line) > 0 && line[0] == ',': // the cell ends
					line = line[1:]
					col++
					c.ends = append(c.ends, len(c.cells))
					continue parseField
				case lengthNL(line) == len(line): // the record ends
					c.ends = append(c.ends, len(c.cells))
					break parseField
				default:
					problem = fmt.Sprintf(`line %d, column %d: a " in the quoted cell that begins on line %d is neither doubled nor followed by a comma or the line's end; double each " inside a quoted cell`,
						c.l.line, col-1, cellLine)
					break parseField
				}
			case len(line) > 0:
				// The line ends inside the quotes: the cell goes on.
				c.cells = append(c.cells, line...)
				var err error
				line, err = c.readLine()
				col = 1
				if err == io.EOF {
					line = nil
				} else if err != nil {
					return record{}, err
				}
			default:
				problem = fmt.Sprintf(`the file ends inside the quoted cell that begins on line %d; close it with a "`, cellLine)
				break parseField
			}
		}
	}
	rec := record{raw: trimLineBreak(c.raw), line: start, problem: problem}
	if c.tooBig {
		rec.problem = fmt.Sprintf("the record is longer than %d bytes, the most a record may take (--max-record-bytes); is a quote left open?", c.l.max)
		return rec, nil
	}
	if problem == "" {
		all := string(c.cells)
		rec.cells = make([]string, len(c.ends))
		from := 0
		for i, end := range c.ends {
			rec.cells[i] = all[from:end]
			from = end
		}
	}
	return rec, nil
}

// errNoHeader refuses a CSV file without a header row.
var errNoHeader = errors.New("the file is empty: a CSV file starts with a header row naming the fields")
