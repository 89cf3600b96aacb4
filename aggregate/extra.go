package aggregate

import (
	"context"
	"encoding/json"
	"time"

	"github.com/openioc/ioc/geo"
)

// Extras are indicators that the snapshots carry besides the catalog's:
// the department datasets' (dataset.Live). Their figures are not summed
// from the rollups: the holder of the lease reads them with every check
// and when told they changed (MarkExtras), and a snapshot computed on
// demand reads them on the spot.
type Extras interface {
	// Extra reads the figures of every unit of h at now.
	Extra(ctx context.Context, h *geo.Hierarchy, now time.Time) (ExtraFigures, error)
}

// ExtraFigures are the extra indicators of every unit as of one read.
type ExtraFigures struct {
	// IDs are the indicators, in the order snapshots carry them.
	IDs []string
	// Values are each unit's figures by index of IDs; nil for none. A
	// derived indicator's are not here: see Derived.
	Values map[string][]*float64
	// Derived computes the indicator at its index from the unit's other
	// figures: lookup answers an indicator of the catalog over the
	// window's counts, or one of IDs from Values. It says false when the
	// figure has no value (an operand without one, a division by zero).
	Derived map[int]func(lookup func(id string) (float64, bool)) (float64, bool)
}

// extras are ExtraFigures ready to be encoded into every snapshot. A nil
// *extras has no indicators.
type extras struct {
	ExtraFigures
	keys  [][]byte // `"id":` of each of IDs
	index map[string]int
}

func newExtras(f ExtraFigures) *extras {
	x := &extras{ExtraFigures: f, keys: make([][]byte, len(f.IDs)), index: make(map[string]int, len(f.IDs))}
	for i, id := range f.IDs {
		k, _ := json.Marshal(id)
		x.keys[i] = append(k, ':')
		x.index[id] = i
	}
	return x
}

// value is the figure of IDs[i] for code, whose window summed to c.
func (x *extras) value(i int, code string, c Counts) *float64 {
	if eval, ok := x.Derived[i]; ok {
		v, ok := eval(func(id string) (float64, bool) { return x.lookup(id, code, c) })
		if !ok {
			return nil
		}
		return &v
	}
	if vs := x.Values[code]; i < len(vs) {
		return vs[i]
	}
	return nil
}

// lookup answers a derived indicator's operand: one of the extras, never
// derived itself, or an indicator of the catalog over c.
func (x *extras) lookup(id, code string, c Counts) (float64, bool) {
	if i, ok := x.index[id]; ok {
		if _, derived := x.Derived[i]; derived {
			return 0, false
		}
		if v := x.value(i, code, c); v != nil {
			return *v, true
		}
		return 0, false
	}
	d, ok := Lookup(id)
	if !ok {
		return 0, false
	}
	p, ok := d.Parts(c)
	if !ok || p.Value == nil {
		return 0, false
	}
	return *p.Value, true
}

// append appends code's extra figures to the members of a kpis object
// that holds the catalog's already: each member after a comma.
func (x *extras) append(b []byte, code string, c Counts) []byte {
	if x == nil {
		return b
	}
	for i := range x.IDs {
		b = append(b, ',')
		b = append(b, x.keys[i]...)
		if v := x.value(i, code, c); v != nil {
			b = appendFloat(b, *v)
		} else {
			b = append(b, "null"...)
		}
	}
	return b
}

// put adds code's extra figures to a snapshot's kpis.
func (x *extras) put(kpis map[string]any, code string, c Counts) {
	if x == nil {
		return
	}
	for i, id := range x.IDs {
		kpis[id] = x.value(i, code, c)
	}
}

// extrasTTL is how long a node that does not hold the lease reuses the
// extra figures it read for snapshots computed on demand: a wall's first
// subscriptions and a map's tiles ask for many at once, and the figures
// change only when a department's values come.
const extrasTTL = 5 * time.Second

// demandExtras are the extra figures for a snapshot computed on demand:
// the live state's on the node holding the lease (read with every check
// and when marked), else a read at most extrasTTL old.
func (a *Aggregator) demandExtras(ctx context.Context, h *geo.Hierarchy, now time.Time) (*extras, error) {
	if a.x == nil || h != a.h {
		return nil, nil
	}
	a.mu.Lock()
	st := a.state
	a.mu.Unlock()
	if st != nil && st.extras != nil {
		return st.extras, nil
	}
	a.xmu.Lock()
	x, at := a.xcache, a.xat
	a.xmu.Unlock()
	if x != nil && now.Sub(at) >= 0 && now.Sub(at) < extrasTTL {
		return x, nil
	}
	x, err := a.readExtras(ctx, h, now)
	if err != nil {
		return nil, err
	}
	a.xmu.Lock()
	a.xcache, a.xat = x, now
	a.xmu.Unlock()
	return x, nil
}

// readExtras reads the extra figures of the current hierarchy at now; nil
// without Extras.
func (a *Aggregator) readExtras(ctx context.Context, h *geo.Hierarchy, now time.Time) (*extras, error) {
	if a.x == nil || h != a.h {
		return nil, nil // the datasets' units are the current hierarchy's
	}
	f, err := a.x.Extra(ctx, h, now)
	if err != nil {
		return nil, err
	}
	return newExtras(f), nil
}
