package ingest

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/internal/bloom"
)

// A writer finds out whether a batch's records are stored already by
// looking them up: a query per batch that reads a granule per key, even
// for keys never stored, since a sort key cannot tell absence without
// reading. knownSets lets a writer skip the lookup of keys certainly not
// stored: Bloom filters of what its raw table holds, by scope (the whole
// table, or the records of one day), filled by a scan of hashes that
// ClickHouse computes and kept current with every batch the writer stores.
//
// They are trusted only along an unbroken chain of the writer's own
// acquisitions of the table's lease: when an acquisition's previous token
// is not the writer's last one, another process wrote under the lease (or
// Redis lost its counters), and every filter is dropped. A scan asked for
// during a batch counts only if the chain still holds when its result is
// taken: every batch before the one that asked is in what it reads, and the
// writer adds the keys of its own batches since.
//
// Only the writer's flush (one at a time) calls the methods; the scans run
// on run's goroutine and come back over a channel.
type knownSets struct {
	conn   driver.Conn
	logger *slog.Logger
	// scope returns the statements that count and hash the keys of one
	// scope: each row of hashes is the bloom.Hash of a key.
	scope     func(scope int64) (count, hashes string, args []any)
	maxScopes int

	sets map[int64]*bloom.Filter
	used map[int64]uint64 // when each set was last used, in batches
	tick uint64
	// scans awaited, by scope: the id of the scan and the keys stored
	// since it was asked for.
	scans map[int64]*awaited
	// token is the lease token of the batch up to which the sets are
	// current; 0: none is.
	token uint64

	requests chan scanRequest
	results  chan scanResult
	nextID   uint64
}

type awaited struct {
	id    uint64
	added []uint64
}

type scanRequest struct {
	scope int64
	id    uint64
}

type scanResult struct {
	scope  int64
	id     uint64
	filter *bloom.Filter
	err    error
}

// pendingScans bounds the scans asked for and not yet run.
const pendingScans = 16

func newKnownSets(conn driver.Conn, logger *slog.Logger, maxScopes int, scope func(int64) (string, string, []any)) *knownSets {
	return &knownSets{conn: conn, logger: logger, scope: scope, maxScopes: maxScopes,
		sets: map[int64]*bloom.Filter{}, used: map[int64]uint64{}, scans: map[int64]*awaited{},
		requests: make(chan scanRequest, pendingScans), results: make(chan scanResult, pendingScans)}
}

// begin starts a batch whose lease was acquired right after the one of
// token previous: the sets are dropped unless the writer's last batch was
// that one. It reports whether they were kept.
func (k *knownSets) begin(previous uint64) bool {
	k.tick++
	if k.token == 0 || previous != k.token {
		k.forget()
		return false
	}
	for {
		select {
		case res := <-k.results:
			k.take(res)
		default:
			return true
		}
	}
}

func (k *knownSets) take(res scanResult) {
	a := k.scans[res.scope]
	if a == nil || a.id != res.id {
		return // a scan the chain broke under
	}
	delete(k.scans, res.scope)
	if res.err != nil {
		k.logger.Warn("could not read which records are stored; looking each batch's up instead", "err", res.err)
		return
	}
	for _, h := range a.added {
		res.filter.Add(h)
	}
	if len(k.sets) >= k.maxScopes {
		// The least recently used goes.
		var oldest int64
		first := true
		for s := range k.sets {
			if first || k.used[s] < k.used[oldest] {
				oldest, first = s, false
			}
		}
		delete(k.sets, oldest)
		delete(k.used, oldest)
	}
	k.sets[res.scope], k.used[res.scope] = res.filter, k.tick
}

func (k *knownSets) forget() {
	clear(k.sets)
	clear(k.used)
	clear(k.scans)
	k.token = 0
}

// absent says whether the key with hash h is certainly not stored in
// scope. Without a set for the scope it asks for a scan and says no.
func (k *knownSets) absent(scope int64, h uint64) bool {
	if f := k.sets[scope]; f != nil {
		k.used[scope] = k.tick
		return !f.MayContain(h)
	}
	if _, ok := k.scans[scope]; !ok {
		k.nextID++
		select {
		case k.requests <- scanRequest{scope: scope, id: k.nextID}:
			k.scans[scope] = &awaited{id: k.nextID}
		default: // enough scans waiting; asked again next batch
		}
	}
	return false
}

// stored adds the key with hash h to scope: it is stored, or perhaps
// stored (a failed insert may have landed).
func (k *knownSets) stored(scope int64, h uint64) {
	if f := k.sets[scope]; f != nil {
		f.Add(h)
		if f.Full() {
			delete(k.sets, scope) // sized for fewer: scanned again, bigger
			delete(k.used, scope)
		}
	}
	if a := k.scans[scope]; a != nil {
		a.added = append(a.added, h)
	}
}

// end closes the batch taken under the lease of token.
func (k *knownSets) end(token uint64) { k.token = token }

// run scans when asked, until ctx ends.
func (k *knownSets) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-k.requests:
			f, err := k.scan(ctx, req.scope)
			select {
			case k.results <- scanResult{scope: req.scope, id: req.id, filter: f, err: err}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// scan reads the hash of every key of scope into a filter with room for
// as many again. ClickHouse hashes, so eight bytes a row travel.
func (k *knownSets) scan(ctx context.Context, scope int64) (*bloom.Filter, error) {
	count, hashes, args := k.scope(scope)
	var rows uint64
	if err := k.conn.QueryRow(ctx, count, args...).Scan(&rows); err != nil {
		return nil, fmt.Errorf("count stored records: %w", err)
	}
	f := bloom.New(2*rows + 1<<16)
	res, err := k.conn.Query(ctx, hashes, args...)
	if err != nil {
		return nil, fmt.Errorf("read stored records: %w", err)
	}
	defer res.Close()
	var h uint64
	for res.Next() {
		if err := res.Scan(&h); err != nil {
			return nil, fmt.Errorf("read stored records: %w", err)
		}
		f.Add(h)
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("read stored records: %w", err)
	}
	return f, nil
}
