package aggregate

import "sync"

// Marks carries to an aggregator the units whose device or alarm counts
// changed, from a part that cannot be handed the aggregator: the alarm
// engine, whose open-alarm counts the aggregator reads, so that neither can
// be built with the other already there. Marks is made before both; the
// engine marks it (its Notifier), the aggregator is given it at New and
// takes what was marked whenever it is woken.
//
// MarkDirty never blocks and loses nothing: units marked before the
// aggregator runs wait for it, and marks made meanwhile fold into one.
// Marks is safe for concurrent use.
type Marks struct {
	mu     sync.Mutex
	units  map[string]map[string]bool // by hierarchy
	extras bool                       // MarkExtras was called
	ready  chan struct{}              // holds a token while units wait
}

// NewMarks returns Marks with nothing marked.
func NewMarks() *Marks {
	return &Marks{units: map[string]map[string]bool{}, ready: make(chan struct{}, 1)}
}

// MarkDirty notes that the counts of units of hierarchy changed, as
// Aggregator.MarkDirty does, for the aggregator to take. It never blocks.
func (m *Marks) MarkDirty(hierarchy string, codes []string) {
	if len(codes) == 0 {
		return
	}
	m.mu.Lock()
	set := m.units[hierarchy]
	if set == nil {
		set = map[string]bool{}
		m.units[hierarchy] = set
	}
	for _, c := range codes {
		set[c] = true
	}
	m.mu.Unlock()
	m.signal()
}

// MarkExtras notes that the extra figures changed, as
// Aggregator.MarkExtras does: the datasets' values, which the datasets'
// store marks when it stored some. It never blocks.
func (m *Marks) MarkExtras() {
	m.mu.Lock()
	m.extras = true
	m.mu.Unlock()
	m.signal()
}

func (m *Marks) signal() {
	select {
	case m.ready <- struct{}{}:
	default: // already signalled: these marks go with the others
	}
}

// take returns and forgets the units marked so far, by hierarchy, and
// whether the extra figures were.
func (m *Marks) take() (map[string][]string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string][]string, len(m.units))
	for h, set := range m.units {
		for c := range set {
			out[h] = append(out[h], c)
		}
	}
	clear(m.units)
	extras := m.extras
	m.extras = false
	return out, extras
}
