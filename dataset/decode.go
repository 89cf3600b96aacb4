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

	"github.com/paulmach/orb"
	"golang.org/x/text/unicode/norm"

	"github.com/openioc/ioc/geo"
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
	dec := newDecoder(d, units)
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
	return dec.decoded(), nil
}

// DecodeRecords reads rows given as records, the values of each row by
// column as a database query returns them, with the checks of Decode: a
// problem for every row that is wrong, by its number (1-based), and for a
// column the definition does not read. next returns the next record's
// values, one per column, and io.EOF after the last. A value is nil (no
// value), a string, an integer or a float, or a time.Time: a date in the
// period column is the period that starts on it, and any other date there
// is a row's problem. An error is a whole source that cannot be read (its
// columns lack the unit or period, next failed, too many rows).
func DecodeRecords(d Definition, columns []string, next func() ([]any, error), units Units) (Decoded, error) {
	dec := newDecoder(d, units)
	index, err := dec.head(columns, 0, "the result")
	if err != nil {
		return Decoded{}, err
	}
	for line := 1; ; line++ {
		vals, err := next()
		if errors.Is(err, io.EOF) {
			return dec.decoded(), nil
		}
		if err != nil {
			return Decoded{}, err
		}
		if len(vals) != len(columns) {
			return Decoded{}, fmt.Errorf("record %d has %d values for %d columns", line, len(vals), len(columns))
		}
		err = dec.row(line, func(name string) (field, bool) {
			i, ok := index[header(name)]
			if !ok {
				return field{}, false
			}
			return recordField(vals[i]), true
		})
		if err != nil {
			return Decoded{}, err
		}
	}
}

// recordField reads a record's value as a field: a number, a text, a date,
// or anything else as its text (which no check accepts).
func recordField(v any) field {
	num := func(n float64) field {
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return field{text: strconv.FormatFloat(n, 'f', -1, 64), json: true}
		}
		return field{number: &n, json: true}
	}
	switch x := v.(type) {
	case nil:
		return field{null: true, json: true}
	case string:
		return field{text: x}
	case float64:
		return num(x)
	case float32:
		return num(float64(x))
	case int:
		return num(float64(x))
	case int8:
		return num(float64(x))
	case int16:
		return num(float64(x))
	case int32:
		return num(float64(x))
	case int64:
		return num(float64(x))
	case uint8:
		return num(float64(x))
	case uint16:
		return num(float64(x))
	case uint32:
		return num(float64(x))
	case uint64:
		return num(float64(x))
	case time.Time:
		text := x.Format(time.DateOnly)
		if h, m, s := x.Clock(); h != 0 || m != 0 || s != 0 || x.Nanosecond() != 0 {
			text = x.Format(time.RFC3339Nano)
		}
		return field{text: text, date: &x, json: true}
	}
	return field{text: fmt.Sprint(v), json: true}
}

type seenKey struct {
	unit   string
	period int64
}

func newDecoder(d Definition, units Units) *decoder {
	return &decoder{d: d, units: units, seen: map[seenKey]int{}}
}

func (dec *decoder) decoded() Decoded {
	return Decoded{Rows: dec.rows, Problems: dec.problems, Refused: dec.refused}
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

// field is one field of a row: its text, or its JSON number or null, or a
// record's date (with its text).
type field struct {
	text   string
	number *float64
	null   bool
	json   bool // a typed value (JSON's, a record's), never a blank cell
	date   *time.Time
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
	var t time.Time
	var err error
	switch {
	case !ok || f.null || period == "":
		dec.fail(line, periodCol, "no period: give it as %s", d.Grain.Form())
	case f.date != nil:
		t, err = d.Grain.startingOn(*f.date)
	default:
		t, err = d.Grain.Parse(period)
	}
	if err != nil {
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

// startingOn is the period of g whose first day is the date t, given at
// midnight: a database's DATE (or TIMESTAMP) of the period column.
func (g Grain) startingOn(t time.Time) (time.Time, error) {
	day := civil(t.Date())
	h, m, s := t.Clock()
	if h != 0 || m != 0 || s != 0 || t.Nanosecond() != 0 || !g.Floor(day).Equal(day) {
		first := g.Floor(day)
		return time.Time{}, fmt.Errorf("%s is not the first day of a %s: give the period's first day (%s) or the period as %s",
			recordField(t).text, g, first.Format(time.DateOnly), g.Form())
	}
	return g.Parse(g.Format(day))
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
	index, err := dec.head(head, 1, "the CSV header")
	if err != nil {
		return err
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

// head indexes the columns of a CSV header or a query's result (what), at
// line, by folded name: an error when it lacks a column every row needs,
// a problem for each column the definition does not read.
func (dec *decoder) head(head []string, line int, what string) (map[string]int, error) {
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
		return nil, fmt.Errorf("%s has no column %s: name the columns as the definition does (columns, measures[].column), or add a mapping to it", what, strings.Join(missing, ", "))
	}
	for i, h := range head {
		if !known[header(h)] && strings.TrimSpace(h) != "" {
			dec.fail(line, h, "column %d is not in the definition and was left out: map it in measures[].column if it is a measure", i+1)
		}
	}
	return index, nil
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

// HierarchyUnits is a hierarchy as rows are checked against it: units of
// geo.Hierarchy, points placed in the finest unit that holds them, and the
// units Covers allows (every one when nil: a connector an admin set up).
type HierarchyUnits struct {
	H      *geo.Hierarchy
	Covers func(code string) bool
}

// Level is the level of the unit of code.
func (u HierarchyUnits) Level(code string) (string, bool) {
	unit, ok := u.H.Unit(code)
	return unit.Level, ok
}

// Place finds the finest unit that holds the position.
func (u HierarchyUnits) Place(lat, lon float64, _ string) (string, bool) {
	chain := u.H.Locate(orb.Point{lon, lat})
	if len(chain) == 0 {
		return "", false
	}
	return chain[len(chain)-1].Code, true
}

// Covered says whether the sender may give values of the unit.
func (u HierarchyUnits) Covered(code string) bool { return u.Covers == nil || u.Covers(code) }
