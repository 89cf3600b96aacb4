package geo

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/paulmach/orb"
)

// Edge kinds: the whole old unit went into the new one, or only part of it.
const (
	EdgeFull    = "full"
	EdgePartial = "partial"
)

// Edge links an old unit to a unit that took over (part of) its territory.
type Edge struct {
	Level string `json:"level"`
	Old   string `json:"old"`
	New   string `json:"new"`
	Kind  string `json:"kind"`
	// Designated marks, among the edges of a split unit, the successor that
	// takes its records when they carry no position.
	Designated bool `json:"designated,omitempty"`
}

// Crosswalk maps the units of one hierarchy to those of its successor.
type Crosswalk struct {
	from, to  *Hierarchy
	effective time.Time
	byOld     map[string][]Edge // ordered by new code
	byNew     map[string][]Edge // ordered by old code
}

// NewCrosswalk checks edges against both hierarchies: every old code is a
// unit of from, every new code a unit of to, kinds are full or partial, a
// unit with a full edge has no other, and a split unit has exactly one
// designated successor.
func NewCrosswalk(from, to *Hierarchy, effective time.Time, edges []Edge) (*Crosswalk, error) {
	c := &Crosswalk{from: from, to: to, effective: effective, byOld: map[string][]Edge{}, byNew: map[string][]Edge{}}
	var problems []string
	report := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for _, e := range edges {
		if e.Kind != EdgeFull && e.Kind != EdgePartial {
			report("edge %s→%s has kind %q, want full or partial", e.Old, e.New, e.Kind)
		}
		if _, ok := to.Unit(e.New); !ok {
			report("edge %s→%s names %s, which is not a unit of %s", e.Old, e.New, e.New, to.Name())
		}
		// The old list can lag the crosswalk's sources by a few units; an
		// edge from a code the old hierarchy lacks is kept, as it harms
		// nothing and resolves records that still use the code.
		c.byOld[e.Old] = append(c.byOld[e.Old], e)
		c.byNew[e.New] = append(c.byNew[e.New], e)
	}
	for old, es := range c.byOld {
		slices.SortFunc(es, func(a, b Edge) int { return strings.Compare(a.New, b.New) })
		designated := 0
		for _, e := range es {
			if e.Kind == EdgeFull && len(es) > 1 {
				report("unit %s has a full edge and %d others", old, len(es)-1)
			}
			if e.Designated {
				designated++
			}
		}
		if len(es) == 1 {
			es[0].Designated = true
		} else if designated != 1 {
			report("split unit %s has %d designated successors, want 1", old, designated)
		}
	}
	for _, es := range c.byNew {
		slices.SortFunc(es, func(a, b Edge) int { return strings.Compare(a.Old, b.Old) })
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("crosswalk %s→%s: %s", from.Name(), to.Name(), strings.Join(problems, "; "))
	}
	// Keep the designated flags set above in the byNew copies too.
	for _, es := range c.byOld {
		if len(es) == 1 {
			for i, e := range c.byNew[es[0].New] {
				if e.Old == es[0].Old {
					c.byNew[es[0].New][i].Designated = true
				}
			}
		}
	}
	return c, nil
}

// From and To are the old and the new hierarchy.
func (c *Crosswalk) From() *Hierarchy { return c.from }
func (c *Crosswalk) To() *Hierarchy   { return c.to }

// Effective is the day the new hierarchy took over.
func (c *Crosswalk) Effective() time.Time { return c.effective }

// Successors returns the edges from old unit code, ordered by new code.
func (c *Crosswalk) Successors(code string) []Edge { return slices.Clone(c.byOld[code]) }

// Predecessors returns the edges into new unit code, ordered by old code.
func (c *Crosswalk) Predecessors(code string) []Edge { return slices.Clone(c.byNew[code]) }

// Attribution is where a record filed under an old unit counts today.
type Attribution struct {
	Code string
	// Approximate is set when the old unit was split and the record had no
	// position that settles which part it belongs to.
	Approximate bool
}

// ErrNoSuccessor is returned for an old code the crosswalk cannot place.
var ErrNoSuccessor = errors.New("no successor")

// Attribute places a record filed under old unit code in the new
// hierarchy: exactly through a full edge; through partial edges by at, when
// given, if it lies in one of the successors; otherwise on the designated
// successor, marked approximate. A unit of a level the crosswalk does not
// list (a district) goes wherever its nearest listed ancestor went, which
// is exact for the coarser unit.
func (c *Crosswalk) Attribute(code string, at *orb.Point) (Attribution, error) {
	for cur := code; cur != ""; {
		if es := c.byOld[cur]; len(es) > 0 {
			if len(es) == 1 {
				return Attribution{Code: es[0].New, Approximate: cur == code && es[0].Kind == EdgePartial}, nil
			}
			if at != nil {
				for _, u := range c.to.Locate(*at) {
					if i := slices.IndexFunc(es, func(e Edge) bool { return e.New == u.Code }); i >= 0 {
						return Attribution{Code: u.Code}, nil
					}
				}
			}
			for _, e := range es {
				if e.Designated {
					return Attribution{Code: e.New, Approximate: true}, nil
				}
			}
		}
		u, ok := c.from.Unit(cur)
		if !ok {
			break
		}
		cur = u.Parent
	}
	return Attribution{}, fmt.Errorf("%w in %s for %s unit %q", ErrNoSuccessor, c.to.Name(), c.from.Name(), code)
}

// ReadEdgesCSV reads crosswalk edges from CSV with a header naming level,
// old, new, kind and optionally designated ("1" or "true").
func ReadEdgesCSV(r io.Reader) ([]Edge, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	col := func(name string) int { return slices.Index(header, name) }
	idx := [...]int{col("level"), col("old"), col("new"), col("kind"), col("designated")}
	for i, name := range []string{"level", "old", "new", "kind"} {
		if idx[i] < 0 {
			return nil, fmt.Errorf("header has no %q column", name)
		}
	}
	var edges []Edge
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return edges, nil
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		e := Edge{Level: rec[idx[0]], Old: rec[idx[1]], New: rec[idx[2]], Kind: rec[idx[3]]}
		if idx[4] >= 0 {
			d := rec[idx[4]]
			e.Designated = d == "1" || strings.EqualFold(d, "true")
		}
		edges = append(edges, e)
	}
}
