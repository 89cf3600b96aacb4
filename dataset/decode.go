package dataset

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"
)

// Row is one unit's values for one period, as an upload or a connector
// gives it.
type Row struct {
	// Line is where the row was: a CSV or NDJSON file's line, a JSON
	// array's item (1-based).
	Line   int
	Unit   string
	Period time.Time
	// Values holds one value per measure of the definition, in its
	// order; Present says which the row gave. A row replaces its unit's
	// period whole: a measure it leaves out has no value any more.
	Values  []float64
	Present []bool
}

// Units is what rows are checked against: the deployment's hierarchy.
type Units interface {
	// Level returns the level of the unit of code, if there is one.
	Level(code string) (string, bool)
	// Place returns the code of the unit of level that holds the
	// position, if any does.
	Place(lat, lon float64, level string) (string, bool)
	// Covered says whether the sender may give values of the unit: an
	// ingest token covers only its areas.
	Covered(code string) bool
}

// Decoded is what an upload held: the rows that are right, a problem for
// every row that is not (and for header fields not in the definition),
// and how many rows were refused.
type Decoded struct {
	Rows     []Row
	Problems []Problem
	Refused  int
}

// The formats values are uploaded in.
const (
	FormatJSON   = "json"   // an array of objects
	FormatNDJSON = "ndjson" // an object per line
	FormatCSV    = "csv"    // a header line, then a row per line; UTF-8, with or without BOM
)

// MaxRows bounds the rows of one upload.
const MaxRows = 500_000

// ErrTooManyRows refuses an upload of more than MaxRows rows.
var ErrTooManyRows = fmt.Errorf("more than %d rows: split the upload by period or province", MaxRows)

// Decode reads the rows of an upload in format, each checked on its own:
// it returns the rows that are right and a problem for every row that is
// not, by line, and for a header field it does not know. An error is a
// whole upload that cannot be read (not the format, a header without the
// unit or period, too many rows).
func Decode(d Definition, format string, r io.Reader, units Units) (Decoded, error) {
	dec := &decoder{d: d, units: units, seen: map[seenKey]int{}}
	var err error
	switch format {
	case FormatCSV:
		err = dec.csv(r)
	case FormatNDJSON:
		err = dec.ndjson(r)
	case FormatJSON:
		err = dec.json(r)
	default:
		return Decoded{}, fmt.Errorf("unknown format %q: json, ndjson or csv", format)
	}
	if err != nil {
		return Decoded{}, err
	}
	return Decoded{Rows: dec.rows, Problems: dec.problems, Refused: dec.refused}, nil
}

type seenKey struct {
	unit   string
	period int64
}

type decoder struct {
	d        Definition
	units    Units
	rows     []Row
	problems []Problem
	seen     map[seenKey]int // line of each unit's period
	refused  int
}

func (dec *decoder) fail(line int, path, format string, args ...any) {
	dec.problems = append(dec.problems, Problem{Line: line, Path: path, Error: fmt.Sprintf(format, args...)})
}

// field is one field of a row: its text, or its JSON number or null.
type field struct {
	text   string
	number *float64
	null   bool
	json   bool
}

// row checks one row given as fields by name and keeps it when right.
func (dec *decoder) row(line int, get func(name string) (field, bool)) error {
	if len(dec.rows)+dec.refused >= MaxRows {
		return ErrTooManyRows
	}
	d := dec.d
	before := len(dec.problems)
	r := Row{Line: line, Values: make([]float64, len(d.Measures)), Present: make([]bool, len(d.Measures))}
	periodCol := d.Columns.column("period")
	f, ok := get(periodCol)
	period := strings.TrimSpace(f.text)
	if f.number != nil { // a year given as the JSON number 2025
		period = strconv.FormatFloat(*f.number, 'f', -1, 64)
	}
	if !ok || f.null || period == "" {
		dec.fail(line, periodCol, "no period: give it as %s", d.Grain.Form())
	} else if t, err := d.Grain.Parse(period); err != nil {
		dec.fail(line, periodCol, "%v", err)
	} else {
		r.Period = t
	}
	if d.Level == LevelPoint {
		r.Unit = dec.place(line, get)
	} else {
		unitCol := d.Columns.column("unit")
		f, ok := get(unitCol)
		code := strings.TrimSpace(f.text)
		if f.number != nil {
			code = strconv.FormatFloat(*f.number, 'f', -1, 64)
		}
		switch level, known := dec.units.Level(code); {
		case !ok || code == "":
			dec.fail(line, unitCol, "no unit: give the code of a %s of the hierarchy", d.Level)
		case !known:
			dec.fail(line, unitCol, "unit %q is not in the hierarchy: use the code of a %s (see GET /api/v1/areas)", code, d.Level)
		case level != d.Level:
			dec.fail(line, unitCol, "unit %q is a %s: this dataset's values are given per %s", code, level, d.Level)
		case !dec.units.Covered(code):
			dec.fail(line, unitCol, "unit %q is outside the areas your token covers: send it with a token for its province", code)
		default:
			r.Unit = code
		}
	}
	given := 0
	for i, m := range d.Measures {
		f, ok := get(m.column())
		if !ok || f.null || (!f.json && strings.TrimSpace(f.text) == "") {
			continue
		}
		v, err := number(f)
		if err != nil {
			dec.fail(line, m.column(), "%v", err)
			continue
		}
		r.Values[i], r.Present[i] = v, true
		given++
	}
	if given == 0 && len(dec.problems) == before {
		dec.fail(line, "", "no measure given: a row carries at least one of %s", strings.Join(dec.measureColumns(), ", "))
	}
	if len(dec.problems) > before {
		dec.refused++
		return nil
	}
	k := seenKey{r.Unit, r.Period.Unix()}
	if at, dup := dec.seen[k]; dup {
		dec.fail(line, "", "unit %s period %s is also at line %d: give each unit's period once", r.Unit, d.Grain.Format(r.Period), at)
		dec.refused++
		return nil
	}
	dec.seen[k] = line
	dec.rows = append(dec.rows, r)
	return nil
}

// place finds the unit of a point row's position.
func (dec *decoder) place(line int, get func(string) (field, bool)) string {
	var pos [2]float64
	for i, what := range []string{"lat", "lon"} {
		col := dec.d.Columns.column(what)
		f, ok := get(col)
		if !ok || f.null || (!f.json && strings.TrimSpace(f.text) == "") {
			dec.fail(line, col, "no %s: a row of a dataset of points gives its position in degrees (WGS 84)", what)
			return ""
		}
		v, err := number(f)
		if err != nil {
			dec.fail(line, col, "%v", err)
			return ""
		}
		pos[i] = v
	}
	if pos[0] < -90 || pos[0] > 90 || pos[1] < -180 || pos[1] > 180 {
		dec.fail(line, "", "position %v, %v is not a latitude and longitude in degrees", pos[0], pos[1])
		return ""
	}
	code, ok := dec.units.Place(pos[0], pos[1], "")
	if !ok {
		dec.fail(line, "", "position %v, %v is in no unit of the hierarchy: check that lat and lon are not swapped", pos[0], pos[1])
		return ""
	}
	if !dec.units.Covered(code) {
		dec.fail(line, "", "position %v, %v is in unit %s, outside the areas your token covers", pos[0], pos[1], code)
		return ""
	}
	return code
}

// reads says whether the definition reads the field of header h.
func (dec *decoder) reads(h string) bool {
	for _, what := range []string{"unit", "period", "lat", "lon"} {
		if header(dec.d.Columns.column(what)) == h {
			return true
		}
	}
	return slices.ContainsFunc(dec.measureColumns(), func(c string) bool { return header(c) == h })
}

func (dec *decoder) measureColumns() []string {
	out := make([]string, len(dec.d.Measures))
	for i, m := range dec.d.Measures {
		out[i] = m.column()
	}
	return out
}

// number reads a value: a JSON number, or text written with '.' as the
// decimal point and no thousands separator (which a reader could not tell
// from a decimal point).
func number(f field) (float64, error) {
	if f.number != nil {
		return *f.number, nil
	}
	s := strings.TrimSpace(f.text)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) || strings.ContainsAny(s, "_xXpP") {
		return 0, fmt.Errorf("%q is not a number: write digits with '.' as the decimal point and no thousands separator, e.g. 12345.6", s)
	}
	return v, nil
}

// header folds a field name for matching: Unicode NFC, trimmed, lower
// case, so that "Mã xã" typed in two ways is one column.
func header(s string) string {
	return strings.ToLower(norm.NFC.String(strings.TrimSpace(s)))
}

func (dec *decoder) csv(r io.Reader) error {
	br := skipBOM(r)
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return errors.New("an empty CSV: the first line names the columns")
	}
	if err != nil {
		return fmt.Errorf("read the CSV header: %w", err)
	}
	index := map[string]int{}
	for i, h := range head {
		index[header(h)] = i
	}
	known := map[string]bool{}
	required := []string{"period"}
	if dec.d.Level == LevelPoint {
		required = append(required, "lat", "lon")
	} else {
		required = append(required, "unit")
	}
	var missing []string
	for _, what := range required {
		col := dec.d.Columns.column(what)
		known[header(col)] = true
		if _, ok := index[header(col)]; !ok {
			missing = append(missing, col)
		}
	}
	for _, m := range dec.d.Measures {
		known[header(m.column())] = true
	}
	if len(missing) > 0 {
		return fmt.Errorf("the CSV header has no column %s: name the columns as the definition does (columns, measures[].column), or add a mapping to it", strings.Join(missing, ", "))
	}
	for i, h := range head {
		if !known[header(h)] && strings.TrimSpace(h) != "" {
			dec.fail(1, h, "column %d is not in the definition and was left out: map it in measures[].column if it is a measure", i+1)
		}
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && !errors.Is(err, csv.ErrFieldCount) {
				// The reader has read the record's lines whole (an open
				// quote, up to the end): the next record starts after.
				dec.fail(pe.Line, "", "not CSV: %v", pe.Err)
				dec.refused++
				continue
			}
			return fmt.Errorf("read the CSV: %w", err)
		}
		// A spreadsheet writes its empty rows as ",,,".
		if !slices.ContainsFunc(rec, func(s string) bool { return strings.TrimSpace(s) != "" }) {
			continue
		}
		line, _ := cr.FieldPos(0)
		err = dec.row(line, func(name string) (field, bool) {
			i, ok := index[header(name)]
			if !ok || i >= len(rec) {
				return field{}, false
			}
			return field{text: rec[i]}, true
		})
		if err != nil {
			return err
		}
	}
}

// object checks one JSON object as a row.
func (dec *decoder) object(line int, raw json.RawMessage) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		dec.fail(line, "", "not a JSON object: give a row as {\"%s\": …, \"%s\": …, measures…}", dec.d.Columns.column("unit"), dec.d.Columns.column("period"))
		dec.refused++
		return nil
	}
	// Keys are matched as headers are ("Kỳ" is "kỳ"): two keys of one
	// column the row reads would make its value a toss of Go's map
	// order, so the row is refused; in key order, so is its problem.
	index := make(map[string]json.RawMessage, len(obj))
	keys := make(map[string]string, len(obj))
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		h := header(k)
		if other, dup := keys[h]; dup && dec.reads(h) {
			dec.fail(line, k, "is %q again: give each field once", other)
			dec.refused++
			return nil
		}
		keys[h], index[h] = k, obj[k]
	}
	return dec.row(line, func(name string) (field, bool) {
		v, ok := index[header(name)]
		if !ok {
			return field{}, false
		}
		return jsonField(v), true
	})
}

// jsonField reads a JSON value as a field: a number, a string, null, or
// anything else as its text (which no check accepts).
func jsonField(v json.RawMessage) field {
	v = bytes.TrimSpace(v)
	switch {
	case string(v) == "null":
		return field{null: true, json: true}
	case len(v) > 0 && v[0] == '"':
		var s string
		_ = json.Unmarshal(v, &s)
		return field{text: s}
	}
	var n float64
	if err := json.Unmarshal(v, &n); err == nil {
		return field{number: &n, json: true}
	}
	return field{text: string(v), json: true}
}

func (dec *decoder) ndjson(r io.Reader) error {
	sc := bufio.NewScanner(skipBOM(r))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if err := dec.object(line, json.RawMessage(bytes.Clone(b))); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read NDJSON line %d: %w (a line may have at most 1 MiB)", line+1, err)
	}
	return nil
}

func (dec *decoder) json(r io.Reader) error {
	br := skipBOM(r)
	jd := json.NewDecoder(br)
	tok, err := jd.Token()
	if err != nil || tok != json.Delim('[') {
		return errors.New("not a JSON array: give the rows as [{…}, {…}], or send NDJSON (one object per line) as application/x-ndjson")
	}
	for i := 1; jd.More(); i++ {
		var raw json.RawMessage
		if err := jd.Decode(&raw); err != nil {
			return fmt.Errorf("row %d is not JSON: %w", i, err)
		}
		if err := dec.object(i, raw); err != nil {
			return err
		}
	}
	if _, err := jd.Token(); err != nil {
		return fmt.Errorf("the JSON array does not end: %w", err)
	}
	return nil
}

// skipBOM reads r without the byte order mark some editors write at the
// start of a UTF-8 file.
func skipBOM(r io.Reader) *bufio.Reader {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, bom) {
		_, _ = br.Discard(3)
	}
	return br
}

var bom = []byte("\xef\xbb\xbf")
