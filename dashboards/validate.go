package dashboards

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Catalog is what documents are checked against: the server's indicator
// catalog (GET /api/v1/kpis), its administrative units and the groups of
// the national scoreboard. The package takes it as an interface because
// it imports nothing of the project.
type Catalog interface {
	Indicator(id string) (Indicator, bool)
	Area(code string) (Area, bool)
	ScoreboardGroup(id string) bool
	// ScorePeriod says why name is not a period of the scoreboard (a year,
	// half, quarter or month), or nil.
	ScorePeriod(name string) error
}

// Indicator is what validation needs to know of a catalog indicator.
type Indicator struct {
	Kind    string // count, ratio, …, or breakdown (several figures)
	Live    bool   // in the live snapshots (kpi/ and map/ topics)
	History bool   // has series (sparklines, comparisons, charts)
}

// Area is what validation needs to know of a unit.
type Area struct {
	Children int
}

// Documents says which documents exist, for the references between them
// (a playlist's dashboards, a wall's playlist, a screen's wall).
type Documents interface {
	Has(kind Kind, id string) bool
}

// Checks are what a document is checked against; a nil field skips its
// checks (e.g. a file checked without a server).
type Checks struct {
	Catalog   Catalog
	Documents Documents
}

// Enumerations of the documents.
var (
	Windows    = []string{"today", "24h", "7d", "30d"}
	Themes     = []string{"wall", "dark", "light"}
	Colors     = []string{"good", "warn", "bad", "neutral"}
	Legends    = []string{"fitted", "fixed"}
	Layers     = []string{"devices", "alarms"}
	Orders     = []string{"top", "bottom"}
	Steps      = []string{"hour", "day", "week", "month"}
	Compares   = []string{"none", "previous_period", "year_ago"}
	Severities = []string{"info", "warning", "critical"}
	Drilldowns = []string{"click", "timed"}
	Ramps      = []string{"viridis", "cividis"}
)

// AreaVariable stands for the unit a screen or playlist item supplies.
const AreaVariable = "$area"

// Limits of a document, checked at save and stated in the schema.
const (
	MaxGrid        = 96  // columns or rows of a dashboard's grid
	MaxWidgets     = 200 // widgets of a dashboard
	MaxItems       = 200 // items of a playlist
	MaxWallSide    = 10  // screens across or down a wall
	MaxScreenAreas = 50
	MaxThresholds  = 10
	MaxSeries      = 6 // indicators of one series widget
	MaxBody        = 256 << 10
)

// reserved ids would be taken for routes: /api/v1/dashboards/export and
// /api/v1/dashboards/import.
var reserved = []string{"export", "import"}

// Validate checks one document of kind and returns it in canonical form,
// or an *InvalidError listing every field that is wrong, each with its
// JSON path and how to fix it.
func Validate(kind Kind, body []byte, checks Checks) (Document, error) {
	s := &set{checks: checks}
	v, err := s.decode("", body)
	if err == nil {
		s.docs = append(s.docs, item{kind: kind, value: v})
	}
	docs, err := s.validate()
	if err != nil {
		return Document{}, err
	}
	return docs[0], nil
}

// item is one decoded document of a set, at path.
type item struct {
	kind  Kind
	file  string
	path  string
	value any
}

// set validates documents together: a reference to another document of
// the set counts as existing.
type set struct {
	checks Checks
	c      checker
	docs   []item
}

func (s *set) decode(path string, body []byte) (any, error) {
	if len(body) > MaxBody {
		s.c.fail(path, "is %d bytes long: a document may have at most %d; split it", len(body), MaxBody)
		return nil, fmt.Errorf("too long")
	}
	v, err := decode(body)
	if err != nil {
		s.c.fail(path, "is not JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
		return nil, err
	}
	return v, nil
}

// inSet is the set's documents and those checks know.
type inSet struct {
	ids   map[Kind]map[string]bool
	outer Documents
}

func (d inSet) Has(kind Kind, id string) bool {
	return d.ids[kind][id] || d.outer != nil && d.outer.Has(kind, id)
}

func (s *set) validate() ([]Document, error) {
	checks := s.checks
	if checks.Documents != nil {
		ids := map[Kind]map[string]bool{}
		for _, it := range s.docs {
			if m, ok := it.value.(map[string]any); ok {
				if id, ok := m["id"].(string); ok {
					if ids[it.kind] == nil {
						ids[it.kind] = map[string]bool{}
					}
					ids[it.kind][id] = true
				}
			}
		}
		checks.Documents = inSet{ids: ids, outer: checks.Documents}
	}
	seen := map[Kind]map[string]string{}
	refs := make([][]Reference, len(s.docs))
	for i, it := range s.docs {
		mark := len(s.c.errs)
		v := validator{c: &s.c, checks: checks}
		refs[i] = v.document(it.kind, it.path, it.value)
		if m, ok := it.value.(map[string]any); ok {
			if id, ok := m["id"].(string); ok {
				if seen[it.kind] == nil {
					seen[it.kind] = map[string]string{}
				}
				if at, dup := seen[it.kind][id]; dup {
					s.c.fail(join(it.path, "id"), "%s %q is also defined at %s: each id once per kind", it.kind, id, orDocument(at))
				} else {
					seen[it.kind][id] = where(it.file, it.path)
				}
			}
		}
		for j := mark; j < len(s.c.errs); j++ {
			s.c.errs[j].File = it.file
		}
	}
	if len(s.c.errs) > 0 {
		return nil, &InvalidError{Fields: s.c.errs}
	}
	out := make([]Document, len(s.docs))
	for i, it := range s.docs {
		d, err := canonical(it.kind, it.value)
		if err != nil {
			return nil, &InvalidError{Fields: []FieldError{{File: it.file, Path: it.path, Error: err.Error()}}}
		}
		d.Refs = refs[i]
		out[i] = d
	}
	return out, nil
}

func orDocument(at string) string {
	if at == "" {
		return "the document"
	}
	return at
}

func where(file, path string) string {
	switch {
	case file != "" && path != "":
		return file + " " + path
	case file != "":
		return file
	}
	return path
}

// validator checks one document.
type validator struct {
	c      *checker
	checks Checks
	kind   Kind
	id     string
	base   string // the document's path in its set
	refs   []Reference
}

func (v *validator) document(kind Kind, path string, value any) []Reference {
	v.kind, v.base = kind, path
	switch kind {
	case KindDashboard:
		v.dashboard(path, value)
	case KindPlaylist:
		v.playlist(path, value)
	case KindWall:
		v.wall(path, value)
	case KindScreen:
		v.screen(path, value)
	default:
		v.c.fail(path, "unknown kind %q: use dashboard, playlist, wall or screen", kind)
	}
	return v.refs
}

// ref records a reference to another document and checks that it exists.
func (v *validator) ref(path string, kind Kind, id string) {
	rel := path
	if v.base != "" {
		rel = strings.TrimPrefix(path, v.base+".")
	}
	v.refs = append(v.refs, Reference{Path: rel, Kind: kind, ID: id})
	if kind == v.kind && id == v.id {
		return // a dashboard drilling down into itself, one level lower
	}
	if v.checks.Documents != nil && !v.checks.Documents.Has(kind, id) {
		v.c.fail(path, "%s %q does not exist: save it first (PUT /api/v1/%s/%s), import it in the same file, or name an existing one",
			kind, id, kind.Plural(), id)
	}
}

func (v *validator) refField(o *object, key string, kind Kind, required bool) (string, bool) {
	id, ok := o.id(key, required, "the id of a "+string(kind))
	if ok {
		v.ref(join(o.path, key), kind, id)
	}
	return id, ok
}

// area checks a unit code; withChildren asks for a unit that has some.
func (v *validator) area(path, code string, withChildren bool) {
	if v.checks.Catalog == nil {
		return
	}
	a, ok := v.checks.Catalog.Area(code)
	switch {
	case !ok && code == AreaVariable:
		v.c.fail(path, "%q stands for a unit only in a dashboard's area: give a unit code here", code)
	case !ok:
		v.c.fail(path, "%q is not a unit of the deployment's hierarchy: give a unit code (GET /api/v1/areas lists them)", code)
	case withChildren && a.Children == 0:
		v.c.fail(path, "unit %s has no child units to rotate through: use area instead of each_child_of", code)
	}
}

func (v *validator) root(path string, value any, what string) (*object, bool) {
	o, ok := v.c.object(path, value, what)
	if !ok {
		return nil, false
	}
	v.id, _ = o.id("id", true, "the "+string(v.kind)+"'s id")
	o.text("title", true, "the "+string(v.kind)+"'s title")
	return o, true
}

func (v *validator) dashboard(path string, value any) {
	o, ok := v.root(path, value, "a dashboard")
	if !ok {
		return
	}
	if slices.Contains(reserved, v.id) {
		v.c.fail(join(path, "id"), "%q is reserved for the routes /api/v1/dashboards/export and /import: choose another id", v.id)
	}
	if area, p, ok := o.str("area", true, `a unit code such as 79, or "$area" for the unit the screen or playlist item gives`); ok && area != AreaVariable {
		v.area(p, area, false)
	}
	o.enum("window", false, Windows)
	o.enum("theme", false, Themes)
	cols, rows := 0, 0
	if g, p, ok := o.get("grid", true, `the grid's size in cells, e.g. {"columns":24,"rows":12}`); ok {
		if grid, ok := v.c.object(p, g, "the grid, {\"columns\":…,\"rows\":…}"); ok {
			cols, _ = grid.integer("columns", true, 1, MaxGrid, "cells across")
			rows, _ = grid.integer("rows", true, 1, MaxGrid, "cells down")
			grid.finish(false)
		}
	}
	if ws, p, ok := o.array("widgets", true, 1, MaxWidgets, "the widgets placed on the grid"); ok {
		v.widgets(p, ws, cols, rows)
	}
	o.finish(true)
}

// rect is a placed widget, for the overlap check.
type rect struct {
	path, id   string
	x, y, w, h int
}

func (v *validator) widgets(path string, ws []any, cols, rows int) {
	ids := map[string]string{}
	var placed []rect
	for i, raw := range ws {
		p := index(path, i)
		w, ok := v.c.object(p, raw, "a widget")
		if !ok {
			continue
		}
		id, idOK := w.id("id", true, "the widget's id, unique in the dashboard")
		if idOK {
			if at, dup := ids[id]; dup {
				v.c.fail(join(p, "id"), "%q is also the id of %s: widget ids must be unique in a dashboard", id, at)
			} else {
				ids[id] = p
			}
		}
		typ, typeOK := w.enum("type", true, WidgetTypes)
		x, xOK := w.integer("x", true, 0, MaxGrid-1, "the first column, 0 at the left")
		y, yOK := w.integer("y", true, 0, MaxGrid-1, "the first row, 0 at the top")
		wd, wOK := w.integer("w", true, 1, MaxGrid, "columns wide")
		ht, hOK := w.integer("h", true, 1, MaxGrid, "rows high")
		inside := xOK && yOK && wOK && hOK
		if inside && cols > 0 && x+wd > cols {
			v.c.fail(join(p, "w"), "the widget spans columns %d to %d but the grid has %d (0 to %d): make x + w at most %d", x, x+wd-1, cols, cols-1, cols)
			inside = false
		}
		if inside && rows > 0 && y+ht > rows {
			v.c.fail(join(p, "h"), "the widget spans rows %d to %d but the grid has %d (0 to %d): make y + h at most %d", y, y+ht-1, rows, rows-1, rows)
			inside = false
		}
		if inside && cols > 0 && rows > 0 {
			r := rect{path: p, id: id, x: x, y: y, w: wd, h: ht}
			for _, q := range placed {
				if r.x < q.x+q.w && q.x < r.x+r.w && r.y < q.y+q.h && q.y < r.y+r.h {
					v.c.fail(p, "overlaps %s (%q) from column %d, row %d: move or resize one of them so that no cell is covered twice",
						q.path, q.id, max(r.x, q.x), max(r.y, q.y))
				}
			}
			placed = append(placed, r)
		}
		if typeOK {
			v.options(w, typ)
		} else {
			w.get("options", false, "")
		}
		w.finish(false)
	}
}

// optionsOf lists the options each widget type takes, and whether it must
// have options at all.
// A widget with a title bar (all but clock and header) may give its own
// title, in place of the one its indicator or type gives it.
var optionsOf = map[string]struct {
	keys     []string
	required bool
}{
	WidgetKPI:        {[]string{"indicator", "compare", "sparkline", "thresholds", "title"}, true},
	WidgetMap:        {[]string{"indicator", "legend", "thresholds", "ramp", "layers", "drilldown", "title"}, true},
	WidgetRanking:    {[]string{"indicator", "order", "n", "page_seconds", "title"}, true},
	WidgetSeries:     {[]string{"indicators", "step", "days", "title"}, true},
	WidgetAlarms:     {[]string{"min_severity", "acknowledge", "title"}, false},
	WidgetEvents:     {[]string{"min_severity", "title"}, false},
	WidgetScoreboard: {[]string{"group", "period", "title"}, false},
	WidgetFeeds:      {[]string{"only_late", "title"}, false},
	WidgetClock:      {nil, false},
	WidgetHeader:     {[]string{"text"}, false},
	WidgetText:       {[]string{"text", "title"}, true},
}

func (v *validator) options(w *object, typ string) {
	spec := optionsOf[typ]
	hint := "the " + typ + " widget's settings"
	if len(spec.keys) > 0 {
		hint += ": " + strings.Join(spec.keys, ", ")
	}
	raw, p, ok := w.get("options", spec.required, hint)
	if !ok {
		return
	}
	o, ok := v.c.object(p, raw, "a "+typ+" widget's options")
	if !ok {
		return
	}
	switch typ {
	case WidgetKPI:
		ind, ip, indOK := o.str("indicator", true, "an indicator of GET /api/v1/kpis")
		compare, _ := o.enum("compare", false, Compares)
		spark, _ := o.boolean("sparkline")
		v.thresholds(o, false)
		if indOK {
			var needs []string
			if compare != "" && compare != "none" {
				needs = append(needs, "compare "+compare)
			}
			if spark {
				needs = append(needs, "sparkline")
			}
			v.indicator(ip, ind, typ, true, needs)
		}
	case WidgetMap:
		ind, ip, indOK := o.str("indicator", true, "an indicator of GET /api/v1/kpis")
		if indOK {
			v.indicator(ip, ind, typ, true, nil)
		}
		legend, _ := o.enum("legend", false, Legends)
		o.enum("ramp", false, Ramps)
		has := v.thresholds(o, legend == "fixed")
		if has && legend != "fixed" {
			v.c.fail(join(p, "thresholds"), `thresholds set a fixed legend: add "legend":"fixed", or remove them to fit the legend to the data`)
		}
		if ls, lp, ok := o.array("layers", false, 0, len(Layers), "what to draw over the units: "+strings.Join(Layers, ", ")); ok {
			v.uniqueEnum(lp, ls, Layers)
		}
		if d, dp, ok := o.get("drilldown", false, ""); ok {
			v.drilldown(dp, d)
		}
	case WidgetRanking:
		ind, ip, indOK := o.str("indicator", true, "an indicator of GET /api/v1/kpis")
		if indOK {
			v.indicator(ip, ind, typ, true, nil)
		}
		o.enum("order", false, Orders)
		o.integer("n", false, 1, 50, "units per page")
		o.integer("page_seconds", false, 3, 600, "seconds each page shows")
	case WidgetSeries:
		if inds, ip, ok := o.array("indicators", true, 1, MaxSeries, "indicators of GET /api/v1/kpis with history"); ok {
			seen := map[string]bool{}
			for i, raw := range inds {
				pp := index(ip, i)
				s, isStr := raw.(string)
				if !isStr {
					v.c.fail(pp, "must be a string (an indicator of GET /api/v1/kpis), not %s", jsonType(raw))
					continue
				}
				if seen[s] {
					v.c.fail(pp, "%q is listed twice: list each indicator once", s)
					continue
				}
				seen[s] = true
				v.indicator(pp, s, typ, false, []string{"a series"})
			}
		}
		step, _ := o.enum("step", false, Steps)
		days, daysOK := o.integer("days", false, 1, 400, "days back from today")
		if step == "hour" && daysOK && days > 31 {
			v.c.fail(join(p, "days"), "a series by hour covers at most 31 days: lower days to 31 or less, or use step day")
		}
	case WidgetAlarms:
		o.enum("min_severity", false, Severities)
		o.boolean("acknowledge")
	case WidgetEvents:
		o.enum("min_severity", false, Severities)
	case WidgetScoreboard:
		if g, gp, ok := o.str("group", false, "all, or a group of the national index (groups in GET /api/v1/kpis)"); ok && g != "all" {
			if v.checks.Catalog != nil && !v.checks.Catalog.ScoreboardGroup(g) {
				v.c.fail(gp, "%q is not a group of the national index: use all, or a group id of GET /api/v1/kpis (groups)", g)
			}
		}
		if name, pp, ok := o.str("period", false, "the period scored, e.g. 2026-Q3; left out: the current quarter"); ok && v.checks.Catalog != nil {
			if err := v.checks.Catalog.ScorePeriod(name); err != nil {
				v.c.fail(pp, "%v; leave period out to show the current quarter", err)
			}
		}
	case WidgetFeeds:
		if raw, lp, ok := o.get("only_late", false, ""); ok {
			if _, isBool := raw.(bool); !isBool {
				v.c.fail(lp, "must be true or false, not %s: true lists only the datasets that are late or incomplete, false (the default) every one", jsonType(raw))
			}
		}
	case WidgetHeader:
		o.text("text", false, "the header's text")
	case WidgetText:
		o.text("text", true, "the text")
	}
	if slices.Contains(spec.keys, "title") {
		o.text("title", false, "the widget's own title")
	}
	o.finish(false)
}

// indicator checks a catalog indicator for a widget of type typ: live
// widgets read the live snapshots; needs names what asks for history.
func (v *validator) indicator(path, id, typ string, live bool, needs []string) {
	if v.checks.Catalog == nil {
		return
	}
	ind, ok := v.checks.Catalog.Indicator(id)
	switch {
	case !ok:
		v.c.fail(path, "%q is not in the indicator catalog: use an id of GET /api/v1/kpis", id)
	case ind.Kind == "breakdown":
		v.c.fail(path, "%q is a breakdown (several figures), which a %s widget cannot show: choose an indicator with one figure", id, typ)
	case live && !ind.Live:
		v.c.fail(path, `%q has no live figures ("live": false in GET /api/v1/kpis), which a %s widget shows: choose a live indicator, or chart it in a series widget`, id, typ)
	case len(needs) > 0 && !ind.History:
		if typ == WidgetSeries {
			v.c.fail(path, `%q has no history ("history": false in GET /api/v1/kpis), which a series charts: choose an indicator with history`, id)
		} else {
			verb := "needs"
			if len(needs) > 1 {
				verb = "need"
			}
			v.c.fail(path, `%q has no history ("history": false in GET /api/v1/kpis), which %s %s: remove %s, or choose an indicator with history`,
				id, strings.Join(needs, " and "), verb, strings.Join(needs, " and "))
		}
	}
}

// thresholds checks a widget's thresholds, listed from the highest value
// down; required says they must be there. It says whether they are.
func (v *validator) thresholds(o *object, required bool) bool {
	ts, p, ok := o.array("thresholds", required, 1, MaxThresholds,
		`values and colours from the highest value down, e.g. [{"value":0.9,"color":"good"},{"value":0.7,"color":"warn"}]`)
	if !ok {
		return o.m["thresholds"] != nil
	}
	prev, havePrev := 0.0, false
	for i, raw := range ts {
		tp := index(p, i)
		t, ok := v.c.object(tp, raw, `a threshold, {"value":…,"color":…}`)
		if !ok {
			havePrev = false
			continue
		}
		val, valOK := t.number("value", true, "the lowest value that takes this colour")
		t.enum("color", true, Colors)
		t.finish(false)
		if !valOK {
			havePrev = false
			continue
		}
		if havePrev && val >= prev {
			v.c.fail(join(tp, "value"), "%s is not below the threshold before it (%s): list thresholds from the highest value down",
				formatNumber(val), formatNumber(prev))
		}
		prev, havePrev = val, true
	}
	return true
}

func formatNumber(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

func (v *validator) uniqueEnum(path string, vals []any, allowed []string) {
	seen := map[string]bool{}
	for i, raw := range vals {
		p := index(path, i)
		s, ok := raw.(string)
		switch {
		case !ok:
			v.c.fail(p, "must be a string, one of %s, not %s", strings.Join(allowed, ", "), jsonType(raw))
		case !slices.Contains(allowed, s):
			v.c.fail(p, "%q is not one of %s", s, strings.Join(allowed, ", "))
		case seen[s]:
			v.c.fail(p, "%q is listed twice: list each once", s)
		}
		seen[s] = true
	}
}

func (v *validator) drilldown(path string, raw any) {
	o, ok := v.c.object(path, raw, `a drill-down, {"mode":"click","dashboard":…}`)
	if !ok {
		return
	}
	mode, _ := o.enum("mode", false, Drilldowns)
	v.refField(o, "dashboard", KindDashboard, true)
	if _, sp, has := o.get("seconds", false, ""); has {
		if mode != "timed" {
			v.c.fail(sp, `seconds apply to timed drill-downs: add "mode":"timed", or remove seconds`)
		} else {
			o.integer("seconds", false, 5, 600, "seconds on each child before the next")
		}
	} else if mode == "timed" {
		v.c.fail(join(path, "seconds"), "missing: a timed drill-down needs seconds, a whole number from 5 to 600")
	}
	o.finish(false)
}

func (v *validator) playlist(path string, value any) {
	o, ok := v.root(path, value, "a playlist")
	if !ok {
		return
	}
	items, p, ok := o.array("items", true, 1, MaxItems, `the dashboards in turn, e.g. [{"dashboard":"ops-79","seconds":60}]`)
	if ok {
		for i, raw := range items {
			ip := index(p, i)
			it, ok := v.c.object(ip, raw, "a playlist item")
			if !ok {
				continue
			}
			v.refField(it, "dashboard", KindDashboard, true)
			it.integer("seconds", false, 5, 3600, "seconds the dashboard shows")
			area, ap, hasArea := it.str("area", false, "the unit the dashboard's $area stands for")
			if hasArea {
				v.area(ap, area, false)
			}
			each, ep, hasEach := it.str("each_child_of", false, "a unit: one step per child unit, $area standing for the child")
			if hasEach {
				if hasArea {
					v.c.fail(ep, "give area or each_child_of, not both")
				} else {
					v.area(ep, each, true)
				}
			}
			it.finish(false)
		}
	}
	o.finish(true)
}

func (v *validator) wall(path string, value any) {
	o, ok := v.root(path, value, "a wall")
	if !ok {
		return
	}
	cols, colsOK := o.integer("columns", true, 1, MaxWallSide, "screens across")
	rows, rowsOK := o.integer("rows", true, 1, MaxWallSide, "screens down")
	screens := map[string]bool{}
	if ss, p, ok := o.array("screens", true, 1, MaxWallSide*MaxWallSide, `the screens and where they stand, e.g. [{"screen":"s1","col":0,"row":0}]`); ok {
		cells := map[[2]int]string{}
		for i, raw := range ss {
			sp := index(p, i)
			s, ok := v.c.object(sp, raw, `a screen of the wall, {"screen":…,"col":…,"row":…}`)
			if !ok {
				continue
			}
			id, idOK := s.id("screen", true, "the screen's id")
			maxCol, maxRow := MaxWallSide-1, MaxWallSide-1
			if colsOK {
				maxCol = cols - 1
			}
			if rowsOK {
				maxRow = rows - 1
			}
			col, colOK := s.integer("col", true, 0, maxCol, "the column, 0 at the left")
			row, rowOK := s.integer("row", true, 0, maxRow, "the row, 0 at the top")
			s.finish(false)
			if idOK {
				if screens[id] {
					v.c.fail(join(sp, "screen"), "screen %q is placed twice: place each screen once", id)
				}
				screens[id] = true
			}
			if colOK && rowOK {
				if at, dup := cells[[2]int{col, row}]; dup {
					v.c.fail(sp, "column %d, row %d is already %s: give each screen a cell of its own", col, row, at)
				} else {
					cells[[2]int{col, row}] = sp
				}
			}
		}
	}
	_, hasPlaylist := o.m["playlist"]
	_, hasDashboard := o.m["dashboard"]
	if hasPlaylist && hasDashboard {
		v.c.fail(join(path, "dashboard"), "give playlist or dashboard, not both")
	}
	if !hasPlaylist && !hasDashboard {
		v.c.fail(join(path, "playlist"), "missing: give the playlist the wall rotates through, or a dashboard it shows")
	}
	v.refField(o, "playlist", KindPlaylist, false)
	v.refField(o, "dashboard", KindDashboard, false)
	o.boolean("span")
	if raw, tp, ok := o.get("takeover", false, ""); ok {
		if t, ok := v.c.object(tp, raw, `an alarm takeover, {"min_severity":…,"screens":[…]}`); ok {
			t.enum("min_severity", false, Severities)
			if ts, sp, ok := t.array("screens", true, 1, MaxWallSide*MaxWallSide, "the wall's screens an alarm takes over"); ok {
				seen := map[string]bool{}
				for i, raw := range ts {
					ip := index(sp, i)
					s, isStr := raw.(string)
					switch {
					case !isStr:
						v.c.fail(ip, "must be a string (a screen of the wall), not %s", jsonType(raw))
					case seen[s]:
						v.c.fail(ip, "%q is listed twice: list each screen once", s)
					case len(screens) > 0 && !screens[s]:
						v.c.fail(ip, "%q is not a screen of this wall: name one of the screens placed in screens", s)
					}
					seen[s] = true
				}
			}
			t.integer("timeout_seconds", false, 10, 3600, "seconds before an unacknowledged alarm gives the screen back")
			t.boolean("chime")
			t.finish(false)
		}
	}
	o.finish(true)
}

func (v *validator) screen(path string, value any) {
	o, ok := v.root(path, value, "a screen")
	if !ok {
		return
	}
	if as, p, ok := o.array("areas", true, 1, MaxScreenAreas, "the units the screen shows and whose alarms take it over, e.g. [\"79\"]"); ok {
		seen := map[string]bool{}
		for i, raw := range as {
			ap := index(p, i)
			s, isStr := raw.(string)
			switch {
			case !isStr:
				v.c.fail(ap, "must be a string (a unit code), not %s", jsonType(raw))
				continue
			case seen[s]:
				v.c.fail(ap, "%q is listed twice: list each unit once", s)
			default:
				v.area(ap, s, false)
			}
			seen[s] = true
		}
	}
	n := 0
	for _, k := range []string{"wall", "playlist", "dashboard"} {
		if _, ok := o.m[k]; ok {
			n++
		}
	}
	if n > 1 {
		v.c.fail(path, "give at most one of wall, playlist and dashboard: a screen shows one of them")
	}
	v.refField(o, "wall", KindWall, false)
	v.refField(o, "playlist", KindPlaylist, false)
	v.refField(o, "dashboard", KindDashboard, false)
	o.finish(true)
}

// canonical decodes a checked document into its type, fills in the
// defaults and encodes it again: the form stored and compared.
func canonical(kind Kind, value any) (Document, error) {
	raw, err := json.Marshal(integral(value))
	if err != nil {
		return Document{}, fmt.Errorf("encode: %w", err)
	}
	var d Document
	switch kind {
	case KindDashboard:
		var x Dashboard
		err = json.Unmarshal(raw, &x)
		x.fill()
		d = Document{ID: x.ID, Value: &x}
	case KindPlaylist:
		var x Playlist
		err = json.Unmarshal(raw, &x)
		for i := range x.Items {
			if x.Items[i].Seconds == 0 {
				x.Items[i].Seconds = 60
			}
		}
		d = Document{ID: x.ID, Value: &x}
	case KindWall:
		var x Wall
		err = json.Unmarshal(raw, &x)
		if t := x.Takeover; t != nil {
			if t.MinSeverity == "" {
				t.MinSeverity = "critical"
			}
			if t.TimeoutSeconds == 0 {
				t.TimeoutSeconds = 300
			}
		}
		d = Document{ID: x.ID, Value: &x}
	case KindScreen:
		var x Screen
		err = json.Unmarshal(raw, &x)
		d = Document{ID: x.ID, Value: &x}
	}
	if err != nil {
		return Document{}, fmt.Errorf("decode %s: %w", kind, err)
	}
	d.Kind = kind
	if d.Body, err = json.Marshal(d.Value); err != nil {
		return Document{}, fmt.Errorf("encode %s: %w", kind, err)
	}
	return d, nil
}

// integral writes whole numbers as integers (3.0 and 3e0 as 3), which the
// typed decoding of a checked document needs.
func integral(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = integral(e)
		}
	case []any:
		for i, e := range x {
			x[i] = integral(e)
		}
	case json.Number:
		if f, err := x.Float64(); err == nil && f == float64(int64(f)) {
			return json.Number(fmt.Sprint(int64(f)))
		}
	}
	return v
}

// fill sets the defaults the schema states.
func (d *Dashboard) fill() {
	if d.Window == "" {
		d.Window = "today"
	}
	if d.Theme == "" {
		d.Theme = "wall"
	}
	for i := range d.Widgets {
		w := &d.Widgets[i]
		o := w.Options
		if o == nil {
			o = &Options{}
		}
		defaults := true
		switch w.Type {
		case WidgetKPI:
			def(&o.Compare, "none")
		case WidgetMap:
			def(&o.Legend, "fitted")
			if o.Legend == "fitted" {
				def(&o.Ramp, "viridis")
			}
			if o.Drilldown != nil {
				def(&o.Drilldown.Mode, "click")
			}
		case WidgetRanking:
			def(&o.Order, "top")
			defInt(&o.N, 10)
			defInt(&o.PageSeconds, 10)
		case WidgetSeries:
			def(&o.Step, "day")
			defInt(&o.Days, 30)
		case WidgetAlarms:
			def(&o.MinSeverity, "warning")
		case WidgetEvents:
			def(&o.MinSeverity, "info")
		case WidgetScoreboard:
			def(&o.Group, "all")
		default:
			defaults = false
		}
		if defaults {
			w.Options = o
		}
	}
}

func def(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

func defInt(n *int, v int) {
	if *n == 0 {
		*n = v
	}
}
