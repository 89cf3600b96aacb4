package dataset

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/openioc/ioc/aggregate"
)

// Definition is a dataset: what a department reports, at which level and
// grain, and the measures and indicators it carries. It is the JSON (or
// YAML) document of docs/dataset.schema.json.
type Definition struct {
	ID         string `json:"id"`
	NameVi     string `json:"name_vi"`
	NameEn     string `json:"name_en"`
	Department string `json:"department"`
	Grain      Grain  `json:"grain"`
	// Level is the level of the hierarchy its values are given at
	// (province, commune, …), or "point": each row has a position, placed
	// in the unit of the finest level that holds it.
	Level string `json:"level"`
	// Area is the unit the dataset covers, e.g. the province whose
	// department reports it: the units expected to report are its units
	// of Level, and an alarm of its feed shows there. Empty: the whole
	// hierarchy.
	Area string `json:"area,omitempty"`
	// DueDays is how many days after a period ends its values are due;
	// later, the feed is late (see Health). Zero: DefaultDueDays of the
	// grain.
	DueDays int `json:"due_days,omitempty"`
	// Columns name the fields of the rows (CSV headers, JSON keys) that
	// hold the unit, the period and a point's position, when they are not
	// "unit", "period", "lat" and "lon".
	Columns    Columns     `json:"columns,omitzero"`
	Measures   []Measure   `json:"measures"`
	Indicators []Indicator `json:"indicators,omitempty"`
	Derived    []Derived   `json:"derived,omitempty"`
	// Connector pulls the values from the department's database or web
	// service (see Connectors); nil: they are uploaded.
	Connector *Connector `json:"connector,omitempty"`
}

// Columns map a row's fields to what they hold.
type Columns struct {
	Unit   string `json:"unit,omitempty"`
	Period string `json:"period,omitempty"`
	Lat    string `json:"lat,omitempty"`
	Lon    string `json:"lon,omitempty"`
}

// Measure is one number a row carries per unit and period.
type Measure struct {
	ID     string `json:"id"`
	NameVi string `json:"name_vi"`
	NameEn string `json:"name_en"`
	Unit   string `json:"unit"`
	// Column is the row's field that holds it; default the id.
	Column string `json:"column,omitempty"`
	// Rollup is how units combine: sum, min, max, or mean (the summed
	// values over their number).
	Rollup string `json:"rollup"`
	// OverTime is how periods combine: sum (a flow, e.g. enterprises
	// registered) or last (a stock, e.g. residents: each unit's latest
	// period in the range). Default sum.
	OverTime   string      `json:"over_time,omitempty"`
	Direction  string      `json:"direction,omitempty"`
	Thresholds *Thresholds `json:"thresholds,omitempty"`
}

// Indicator is a ratio of two of the dataset's measures, each summed over
// the units and periods asked for, times Scale: pupils per teacher,
// residents per km².
type Indicator struct {
	ID          string      `json:"id"`
	NameVi      string      `json:"name_vi"`
	NameEn      string      `json:"name_en"`
	Unit        string      `json:"unit"`
	Numerator   string      `json:"numerator"`
	Denominator string      `json:"denominator"`
	Scale       float64     `json:"scale,omitempty"` // default 1
	Direction   string      `json:"direction,omitempty"`
	Thresholds  *Thresholds `json:"thresholds,omitempty"`
}

// Derived is an indicator computed by a formula from other indicators of
// the unit and period (see Formula): dossiers received per 1,000
// residents is "dossiers_received / population.residents * 1000".
type Derived struct {
	ID         string      `json:"id"`
	NameVi     string      `json:"name_vi"`
	NameEn     string      `json:"name_en"`
	Unit       string      `json:"unit"`
	Formula    string      `json:"formula"`
	Direction  string      `json:"direction,omitempty"`
	Thresholds *Thresholds `json:"thresholds,omitempty"`
}

// Thresholds colour a value (aggregate.Thresholds): the catalog gives
// them with the indicator, and a wall tile without its own takes them.
type Thresholds = aggregate.Thresholds

// The rollups and time combinations a measure may name.
const (
	RollupSum  = "sum"
	RollupMin  = "min"
	RollupMax  = "max"
	RollupMean = "mean"

	OverTimeSum  = "sum"
	OverTimeLast = "last"

	// LevelPoint is the level of a dataset whose rows carry positions.
	LevelPoint = "point"
)

var (
	rollups    = []string{RollupSum, RollupMin, RollupMax, RollupMean}
	overTimes  = []string{OverTimeSum, OverTimeLast}
	directions = []string{"higher_is_better", "lower_is_better", "neutral"}
	idRE       = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)
)

// ValidID says whether id may name a dataset: an id (lower-case letters,
// digits and _) that no route of /api/v1/datasets takes.
func ValidID(id string) bool { return idRE.MatchString(id) && id != "health" }

// DefaultDueDays is how long after a period ends its values are due when a
// definition does not say.
func DefaultDueDays(g Grain) int {
	switch g {
	case Day:
		return 2
	case Month:
		return 15
	case Quarter:
		return 30
	}
	return 90
}

// Due is d's due days, the grain's default when not set.
func (d Definition) Due() int {
	if d.DueDays > 0 {
		return d.DueDays
	}
	return DefaultDueDays(d.Grain)
}

// Column names the field of a row that holds what.
func (c Columns) column(what string) string {
	switch what {
	case "unit":
		return cmpOr(c.Unit, what)
	case "period":
		return cmpOr(c.Period, what)
	case "lat":
		return cmpOr(c.Lat, what)
	}
	return cmpOr(c.Lon, what)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// column is the row field of m.
func (m Measure) column() string { return cmpOr(m.Column, m.ID) }

// over is m's time combination, sum when not set.
func (m Measure) over() string { return cmpOr(m.OverTime, OverTimeSum) }

// Measure returns the measure of id.
func (d Definition) Measure(id string) (Measure, bool) {
	i := slices.IndexFunc(d.Measures, func(m Measure) bool { return m.ID == id })
	if i < 0 {
		return Measure{}, false
	}
	return d.Measures[i], true
}

// Problem is one thing wrong with a definition or a row: where (a JSON
// path such as measures[2].rollup, or a row's line) and what, with how to
// fix it.
type Problem struct {
	Path  string `json:"path,omitempty"`
	Line  int    `json:"line,omitempty"`
	Error string `json:"error"`
}

func (p Problem) String() string {
	switch {
	case p.Line > 0 && p.Path != "":
		return fmt.Sprintf("line %d: %s: %s", p.Line, p.Path, p.Error)
	case p.Line > 0:
		return fmt.Sprintf("line %d: %s", p.Line, p.Error)
	case p.Path != "":
		return p.Path + ": " + p.Error
	}
	return p.Error
}

// InvalidError is a refused definition with every field that is wrong.
type InvalidError struct {
	Problems []Problem
}

func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "invalid dataset definition: " + strings.Join(parts, "; ")
}

// Levels is what a definition's level is checked against: the levels of
// the deployment's hierarchy (geo.Hierarchy).
type Levels interface {
	HasLevel(level string) bool
	Levels() []string
}

// MaxDefinition bounds a definition's size.
const MaxDefinition = 256 << 10

// Parse reads a definition written as JSON or, when it does not start with
// '{', YAML, checks it against the hierarchy's levels, and returns it or an
// *InvalidError naming every wrong field.
func Parse(body []byte, levels Levels) (Definition, error) {
	if len(body) > MaxDefinition {
		return Definition{}, &InvalidError{[]Problem{{Error: fmt.Sprintf("is %d bytes long: a definition may have at most %d", len(body), MaxDefinition)}}}
	}
	trimmed := bytes.TrimSpace(bytes.TrimPrefix(body, bom))
	if len(trimmed) > 0 && trimmed[0] != '{' {
		var v any
		if err := yaml.Unmarshal(trimmed, &v); err != nil {
			return Definition{}, &InvalidError{[]Problem{{Error: "is neither JSON nor YAML: " + err.Error()}}}
		}
		js, err := json.Marshal(v)
		if err != nil {
			return Definition{}, &InvalidError{[]Problem{{Error: "YAML that does not map to JSON (keys must be strings): " + err.Error()}}}
		}
		trimmed = js
	}
	var d Definition
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Definition{}, &InvalidError{[]Problem{decodeProblem(err)}}
	}
	if probs := d.check(levels); len(probs) > 0 {
		return Definition{}, &InvalidError{probs}
	}
	return d, nil
}

// decodeProblem places a JSON decoding error at its field.
func decodeProblem(err error) Problem {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return Problem{Path: jsonPath(te.Field), Error: fmt.Sprintf("is a JSON %s: want a %s", te.Value, jsonType(te.Type.Kind().String()))}
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if f, ok := strings.CutPrefix(msg, "unknown field "); ok {
		return Problem{Path: strings.Trim(f, `"`), Error: "is not a field of a dataset definition: see docs/dataset.schema.json"}
	}
	return Problem{Error: "is not a JSON object: " + msg}
}

// jsonPath writes the field of a decoding error (measures.0.rollup) as
// check writes paths (measures[0].rollup).
func jsonPath(field string) string {
	var b strings.Builder
	for i, part := range strings.Split(field, ".") {
		if _, err := strconv.Atoi(part); err == nil && i > 0 {
			b.WriteString("[" + part + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(part)
	}
	return b.String()
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "slice":
		return "list"
	case "struct", "map", "ptr":
		return "object"
	case "bool":
		return "boolean"
	}
	return "number"
}

// check lists what is wrong with d.
func (d Definition) check(levels Levels) []Problem {
	var out []Problem
	fail := func(path, format string, args ...any) {
		out = append(out, Problem{Path: path, Error: fmt.Sprintf(format, args...)})
	}
	if !ValidID(d.ID) {
		fail("id", "%q is not a dataset id: lower-case letters, digits and _, starting with a letter, at most 48, and not health", d.ID)
	}
	if d.NameVi == "" || d.NameEn == "" {
		fail("name_vi", "give the dataset's name in Vietnamese (name_vi) and English (name_en)")
	}
	if !d.Grain.Valid() {
		fail("grain", "%q is not a grain: day, month, quarter or year", d.Grain)
	}
	if d.Level != LevelPoint && (levels == nil || !levels.HasLevel(d.Level)) {
		var known []string
		if levels != nil {
			known = levels.Levels()
		}
		fail("level", "%q is not a level of the hierarchy: one of %s, or point (rows with lat and lon)", d.Level, strings.Join(known, ", "))
	}
	if d.DueDays < 0 || d.DueDays > 3660 {
		fail("due_days", "%d is out of range: 0 (the grain's default) to 3660", d.DueDays)
	}
	if len(d.Measures) == 0 {
		fail("measures", "a dataset carries at least one measure")
	}
	ids := map[string]string{}
	// Columns are told apart as the decoder does (header): "Mã xã" and
	// "mã xã" are one column.
	columns := map[string]string{}
	for _, what := range []string{"unit", "period", "lat", "lon"} {
		col := d.Columns.column(what)
		if at, dup := columns[header(col)]; dup {
			fail("columns."+what, "%q is also %s: each column holds one thing", col, at)
		}
		columns[header(col)] = "columns." + what
	}
	// entry checks what measures, ratios and derived indicators share:
	// an id unique among them all, both names, a known direction.
	entry := func(p, what, id, nameVi, nameEn, direction string) {
		if !idRE.MatchString(id) {
			fail(p+".id", "%q is not an id: lower-case letters, digits and _, starting with a letter", id)
		} else if at, dup := ids[id]; dup {
			fail(p+".id", "%q is also %s: each id once", id, at)
		}
		ids[id] = p
		if nameVi == "" || nameEn == "" {
			fail(p+".name_vi", "give the %s's name in Vietnamese (name_vi) and English (name_en)", what)
		}
		if direction != "" && !slices.Contains(directions, direction) {
			fail(p+".direction", "%q is not a direction: %s", direction, strings.Join(directions, ", "))
		}
	}
	for i, m := range d.Measures {
		p := fmt.Sprintf("measures[%d]", i)
		entry(p, "measure", m.ID, m.NameVi, m.NameEn, m.Direction)
		if !slices.Contains(rollups, m.Rollup) {
			fail(p+".rollup", "%q is not a rollup: %s", m.Rollup, strings.Join(rollups, ", "))
		}
		if m.OverTime != "" && !slices.Contains(overTimes, m.OverTime) {
			fail(p+".over_time", "%q is not a time combination: sum (a flow) or last (a stock)", m.OverTime)
		}
		if at, dup := columns[header(m.column())]; dup {
			fail(p+".column", "%q is also %s: each column holds one thing", m.column(), at)
		}
		columns[header(m.column())] = p + ".column"
	}
	for i, ind := range d.Indicators {
		p := fmt.Sprintf("indicators[%d]", i)
		entry(p, "indicator", ind.ID, ind.NameVi, ind.NameEn, ind.Direction)
		for _, side := range []struct{ field, id string }{{"numerator", ind.Numerator}, {"denominator", ind.Denominator}} {
			m, ok := d.Measure(side.id)
			switch {
			case !ok:
				fail(p+"."+side.field, "%q is not a measure of the dataset: name one of measures[].id", side.id)
			case m.Rollup != RollupSum:
				fail(p+"."+side.field, "measure %q rolls up by %s: a ratio sums its numerator and denominator, so both must roll up by sum", side.id, m.Rollup)
			}
		}
		if ind.Scale < 0 {
			fail(p+".scale", "%v is negative: a ratio's scale is positive (1, 100, 1000)", ind.Scale)
		}
	}
	for i, dv := range d.Derived {
		p := fmt.Sprintf("derived[%d]", i)
		entry(p, "indicator", dv.ID, dv.NameVi, dv.NameEn, dv.Direction)
		f, err := ParseFormula(dv.Formula)
		if err != nil {
			fail(p+".formula", "%v", err)
			continue
		}
		for _, name := range f.Names() {
			if k := d.kind(name); k == kindDerived {
				fail(p+".formula", "at character %d: %q is itself derived: write its formula out", f.NameAt(name)+1, name)
			}
		}
	}
	if d.Connector != nil {
		out = append(out, d.Connector.check()...)
	}
	return out
}

// The kinds of an id within a dataset.
const (
	kindMeasure = "measure"
	kindRatio   = "ratio"
	kindDerived = "derived"
)

// kind says what id names within d: a measure, a ratio, a derived
// indicator, or nothing ("").
func (d Definition) kind(id string) string {
	switch {
	case slices.ContainsFunc(d.Measures, func(m Measure) bool { return m.ID == id }):
		return kindMeasure
	case slices.ContainsFunc(d.Indicators, func(ind Indicator) bool { return ind.ID == id }):
		return kindRatio
	case slices.ContainsFunc(d.Derived, func(dv Derived) bool { return dv.ID == id }):
		return kindDerived
	}
	return ""
}

// Formula returns the parsed formula of a derived indicator of d.
func (d Definition) Formula(id string) (*Formula, bool) {
	i := slices.IndexFunc(d.Derived, func(dv Derived) bool { return dv.ID == id })
	if i < 0 {
		return nil, false
	}
	f, err := ParseFormula(d.Derived[i].Formula)
	return f, err == nil
}

// Operand is the catalog id a name of one of d's formulas stands for: a
// measure or ratio of d itself by its bare id, anything else as written.
func (d Definition) Operand(name string) string {
	if k := d.kind(name); k == kindMeasure || k == kindRatio {
		return d.ID + "." + name
	}
	return name
}

// CheckNames checks the names of d's formulas against what exists: known
// says whether a catalog id (a built-in indicator with history, or a
// measure or ratio of a dataset) can be an operand.
func (d Definition) CheckNames(known func(id string) bool) []Problem {
	var out []Problem
	for i, dv := range d.Derived {
		f, err := ParseFormula(dv.Formula)
		if err != nil {
			continue // check reported it
		}
		for _, name := range f.Names() {
			if d.kind(name) == "" && !known(d.Operand(name)) {
				out = append(out, Problem{Path: fmt.Sprintf("derived[%d].formula", i), Error: fmt.Sprintf(
					"at character %d: %q is no indicator: name a measure of this dataset, one of another as dataset.measure, or an indicator with history of GET /api/v1/kpis",
					f.NameAt(name)+1, name)})
			}
		}
	}
	return out
}

// scale is the indicator's scale, 1 when not set.
func (ind Indicator) scale() float64 {
	if ind.Scale == 0 {
		return 1
	}
	return ind.Scale
}
