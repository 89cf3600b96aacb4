package rollup

import (
	"slices"
	"strconv"

	"github.com/openioc/ioc/dossier"
)

// Family is a rollup kept at minute and hour grain (and, for the dossier
// flow, also at local day and month): the tables, their key and measures,
// and how a row of them adds into Sums. Rows read from ClickHouse and rows
// a writer announces (Table, in a Delta) go through the same Add, so that
// one place turns rollup rows into sums.
type Family struct {
	// Name is what errors call the family's rollups, e.g. dossier_flow.
	Name         string
	Minute, Hour string
	// Dims, Ints and Floats name the key columns after the bucket and the
	// measures as the writers name them (Table); dimSQL selects the dims.
	Dims, Ints, Floats []string
	dimSQL             []string
	// merge re-aggregates each measure (Ints, then Floats) over rows
	// already summed: sum, or max for maxima.
	merge []string
	// state says a measure's column holds aggregate states (read with
	// merge's -Merge) rather than values.
	state []bool
	// Marked says the writers' inserts carry markers (see MarkerHierarchy).
	Marked bool
	where  string // what of the table counts, besides hierarchy and time
	add    func(s *Sums, dims []string, ints []int64, floats []float64)
	// LateOpen is the index of the late-open balance among Ints, -1
	// without one.
	LateOpen int
	// markerMeasure is the index among Ints of the measure a marker sets
	// to 1.
	markerMeasure int
}

// Add adds a row of the family's tables (its dims and measures, in the
// order of Dims, Ints and Floats) to s.
func (f *Family) Add(s *Sums, dims []string, ints []int64, floats []float64) {
	f.add(s, dims, ints, floats)
}

// Matches says whether a table a writer described has the family's columns
// in this order: a node of another version may not.
func (f *Family) Matches(t Table) bool {
	return slices.Equal(t.Dims, f.Dims) && slices.Equal(t.Ints, f.Ints) && slices.Equal(t.Floats, f.Floats) && t.Marked == f.Marked
}

// measures are the family's measure columns, Ints then Floats.
func (f *Family) measures() []string { return append(slices.Clone(f.Ints), f.Floats...) }

// The families.
var (
	// DossierFlowFamily is the dossier measures of dossier.Table.
	DossierFlowFamily = FlowFamily(dossier.Table[:])
	CameraFamily      = &Family{
		Name: "camera_kpi", Minute: CameraKPIMinute, Hour: CameraKPIHour,
		Dims: []string{"type", "severity"}, dimSQL: []string{"type", "toString(severity)"},
		Ints: []string{"events"}, merge: []string{"sum"}, state: []bool{false}, Marked: true,
		add: func(s *Sums, dims []string, ints []int64, _ []float64) {
			if s.Cameras == nil {
				s.Cameras = map[CameraKey]int64{}
			}
			s.Cameras[CameraKey{dims[0], dims[1]}] += ints[0]
		},
		LateOpen: -1,
	}
	SensorStatFamily = &Family{
		Name: "sensor_stat", Minute: SensorStatMinute, Hour: SensorStatHour,
		Dims: []string{"kind"}, dimSQL: []string{"kind"},
		Ints: []string{"readings"}, Floats: []string{"value_sum"}, merge: []string{"sum", "sum"}, state: []bool{false, false},
		Marked: true, where: "kind IN ('pm25', 'water_level')",
		add: func(s *Sums, dims []string, ints []int64, floats []float64) {
			if k, ok := readingKinds[dims[0]]; ok {
				r := k(s)
				r.N += ints[0]
				r.Sum += floats[0]
			}
		},
		LateOpen: -1,
	}
	// SensorMaxFamily holds maxima, kept by views on the raw readings: no
	// markers, and taking one twice changes nothing.
	SensorMaxFamily = &Family{
		Name: "sensor_max", Minute: SensorMaxMinute, Hour: SensorMaxHour,
		Dims: []string{"kind"}, dimSQL: []string{"kind"},
		Floats: []string{"value_max"}, merge: []string{"max"}, state: []bool{true},
		where: "kind IN ('pm25', 'water_level')",
		add: func(s *Sums, dims []string, _ []int64, floats []float64) {
			if k, ok := readingKinds[dims[0]]; ok {
				r := k(s)
				if !r.HasMax || floats[0] > r.Max {
					r.Max, r.HasMax = floats[0], true
				}
			}
		},
		LateOpen: -1,
	}
)

// FlowFamily is the dossier flow rollups of a measure table: every
// measure of it an Int64 column summed, in the table's order.
// DossierFlowFamily is that of dossier.Table; another table (one with a
// measure more) gives the family its rollups would be.
func FlowFamily(table []dossier.Measure) *Family {
	f := &Family{Name: "dossier_flow", Minute: DossierFlowMinute, Hour: DossierFlowHour, Marked: true, LateOpen: -1}
	for _, m := range table {
		f.Ints = append(f.Ints, m.Column)
		f.merge = append(f.merge, "sum")
		f.state = append(f.state, false)
	}
	f.LateOpen = slices.Index(f.Ints, dossier.Table[dossier.LateOpen].Column)
	f.add = func(s *Sums, _ []string, ints []int64, _ []float64) {
		// Sums carry dossier.Table's measures: another table's are read
		// (its queries tested) but only those add.
		for i := range min(len(ints), len(s.Flow)) {
			s.Flow[i] += ints[i]
		}
	}
	return f
}

// Live lists the families the live windows read, in the order they are
// read.
var Live = []*Family{DossierFlowFamily, CameraFamily, SensorStatFamily, SensorMaxFamily}

// LiveTable finds the family of a minute or hour table by name, and says
// which of the two it is.
func LiveTable(name string) (f *Family, minute, ok bool) {
	for _, fam := range Live {
		switch name {
		case fam.Hour:
			return fam, false, true
		case fam.Minute:
			return fam, true, true
		}
	}
	return nil, false, false
}

// innerAggs aggregate the measure columns cols (Ints then Floats) of a
// table's rows: a sum, or the -Merge of a state.
func (f *Family) innerAggs(cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		if f.state[i] {
			out[i] = f.merge[i] + "Merge(" + c + ")"
		} else {
			out[i] = "sum(" + c + ")"
		}
	}
	return out
}

// outerAggs re-aggregate aliases named prefix0, prefix1, …: for rows
// read raw (the live windows), a -Merge of states and sums of the
// others; for rows already aggregated (the history's parts), max or sum.
func (f *Family) outerAggs(prefix string, raw bool) []string {
	out := make([]string, len(f.merge))
	for i, m := range f.merge {
		arg := prefix + strconv.Itoa(i)
		switch {
		case raw && f.state[i]:
			out[i] = m + "Merge(" + arg + ")"
		case raw:
			out[i] = "sum(" + arg + ")"
		default:
			out[i] = m + "(" + arg + ")"
		}
	}
	return out
}

// scanRow is a row of a family's rollups as read: its dims and measures,
// and the scan targets for them after the columns head points to.
type scanRow struct {
	dims    []string
	ints    []int64
	floats  []float64
	targets []any
}

func (f *Family) scanRow(head ...any) scanRow {
	r := scanRow{dims: make([]string, len(f.Dims)), ints: make([]int64, len(f.Ints)), floats: make([]float64, len(f.Floats))}
	r.targets = head
	for i := range r.dims {
		r.targets = append(r.targets, &r.dims[i])
	}
	for i := range r.ints {
		r.targets = append(r.targets, &r.ints[i])
	}
	for i := range r.floats {
		r.targets = append(r.targets, &r.floats[i])
	}
	return r
}
