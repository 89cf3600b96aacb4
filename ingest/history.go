package ingest

import (
	"log/slog"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openioc/ioc/internal/bloom"
)

// A batch needs the stored history of every dossier it touches, to find
// resends and to derive each new event's change. Rather than looking up
// every one, the dossier writer remembers the histories of the dossiers of
// its recent batches (a bounded number of events) and, in a known set (see
// knownSets), every dossier stored, so that a dossier is looked up only
// when it may be stored and is not remembered. Histories are trusted on the
// same terms as the known set: along an unbroken chain of the writer's own
// acquisitions of the table's lease.

// DefaultHistoryEvents bounds the dossier events a writer remembers.
const DefaultHistoryEvents = 200000

// recall is what the dossier writer remembers: histories, and the one
// known set of every stored dossier (scope 0). Only the writer's flush
// calls its methods.
type recall struct {
	known   *knownSets
	lookups *prometheus.CounterVec // by source

	maxEvents int
	// The histories, newest batches in cur; a lookup moves a history from
	// old to cur, and cur becomes old once it holds half the bound, so
	// that at most maxEvents events are kept and the least recently used
	// go first.
	cur, old  map[dossierKey][]Dossier
	curEvents int
}

func newRecall(conn driver.Conn, db string, maxEvents int, logger *slog.Logger, lookups *prometheus.CounterVec) *recall {
	if maxEvents <= 0 {
		maxEvents = DefaultHistoryEvents
	}
	table := db + "." + dossierFamily.raw
	return &recall{lookups: lookups, maxEvents: maxEvents, cur: map[dossierKey][]Dossier{}, old: map[dossierKey][]Dossier{},
		known: newKnownSets(conn, logger, 1, func(int64) (string, string, []any) {
			return "SELECT count() FROM " + table, "SELECT sipHash64(concat(hierarchy, '\\0', dossier_id)) FROM " + table, nil
		})}
}

func dossierHash(k dossierKey) uint64 {
	b := make([]byte, 0, len(k.hierarchy)+1+len(k.id))
	b = append(append(append(b, k.hierarchy...), 0), k.id...)
	return bloom.Hash(b)
}

// begin starts a batch whose lease was acquired right after the one of
// token previous: memory is dropped unless the writer's last batch was
// that one.
func (r *recall) begin(previous uint64) {
	if !r.known.begin(previous) {
		clear(r.cur)
		clear(r.old)
		r.curEvents = 0
	}
}

// history returns the remembered history of k; ok is false when it is not
// remembered. A dossier known never to have been stored has an empty one.
func (r *recall) history(k dossierKey) (ds []Dossier, ok bool) {
	if ds, ok := r.cur[k]; ok {
		r.lookups.WithLabelValues("remembered").Inc()
		return ds, true
	}
	if ds, ok := r.old[k]; ok {
		delete(r.old, k)
		r.keep(k, ds)
		r.lookups.WithLabelValues("remembered").Inc()
		return ds, true
	}
	if r.known.absent(0, dossierHash(k)) {
		r.lookups.WithLabelValues("new").Inc()
		return nil, true
	}
	r.lookups.WithLabelValues("queried").Inc()
	return nil, false
}

func (r *recall) keep(k dossierKey, ds []Dossier) {
	if r.curEvents+len(ds) > r.maxEvents/2 {
		r.old, r.cur = r.cur, r.old
		clear(r.cur)
		r.curEvents = 0
	}
	r.cur[k] = ds
	r.curEvents += len(ds)
}

// end closes a batch taken under the lease of token: histories are those
// of its dossiers, including what it added, and stored says whether its
// rows are known to be stored. Rows whose fate is unknown (a failed
// insert may have landed) leave their dossiers unremembered, to be looked
// up, but known as perhaps stored.
func (r *recall) end(token uint64, histories map[dossierKey][]Dossier, stored bool) {
	for k, ds := range histories {
		r.known.stored(0, dossierHash(k))
		delete(r.old, k)
		if n, ok := r.cur[k]; ok {
			r.curEvents -= len(n)
			delete(r.cur, k)
		}
		if stored && len(ds) > 0 {
			r.keep(k, ds)
		}
	}
	r.known.end(token)
}
