package report

import (
	"container/list"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/rollup"
)

// An answer over a closed range is asked again and again (a year's series,
// last year's scoreboard) and changes only when a late event or a
// correction reaches the days it covers. The engine keeps the summed
// figures of such answers, each with the version of the rollups it was
// read from: the active parts of the tables it read whose buckets overlap
// the windows it read, by name, rows and modification time. A part is
// immutable and a new one gets a new name (partition, block numbers, level,
// mutation); the rows and the time keep a name that comes back (a table
// made again, block numbers counted again after a restart) from passing for
// the old part. So every insert, merge, mutation or dropped partition that
// touches those windows changes the version, and a
// figure is served from the cache only while the version it was read at is
// still the current one: as exact as reading the rollups again, for the
// cost of one small query of system.parts. Writes elsewhere (today's live
// records, another year) leave the version, and the cached answers, alone.

// defaultCacheBytes bounds the cache when Config leaves it unset.
const defaultCacheBytes = 64 << 20

// answerCache is a least-recently-used map of summed figures by question,
// bounded by an estimate of their size.
type answerCache struct {
	mu     sync.Mutex
	limit  int64
	used   int64
	order  *list.List // of *cached, most recent first
	byKey  map[string]*list.Element
	hits   atomic.Int64
	misses atomic.Int64
}

type cached struct {
	key, version string
	value        any
	size         int64
}

func newAnswerCache(limit int64) *answerCache {
	return &answerCache{limit: limit, order: list.New(), byKey: map[string]*list.Element{}}
}

// get returns the value kept for key at version.
func (c *answerCache) get(key, version string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok || el.Value.(*cached).version != version {
		c.misses.Add(1)
		return nil, false
	}
	c.order.MoveToFront(el)
	c.hits.Add(1)
	return el.Value.(*cached).value, true
}

// put keeps value for key at version, replacing what key held, and drops
// the least recently used answers beyond the limit.
func (c *answerCache) put(key, version string, value any, size int64) {
	size += int64(len(key) + len(version))
	if size > c.limit {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		c.used -= el.Value.(*cached).size
		c.order.Remove(el)
	}
	c.byKey[key] = c.order.PushFront(&cached{key: key, version: version, value: value, size: size})
	c.used += size
	for c.used > c.limit {
		el := c.order.Back()
		old := el.Value.(*cached)
		c.order.Remove(el)
		delete(c.byKey, old.key)
		c.used -= old.size
	}
}

// countsSize estimates the memory of n summed figures in a map.
func countsSize(n int) int64 {
	return int64(n) * int64(unsafe.Sizeof(aggregate.Counts{})+48)
}

// questionKey names what an answer sums: everything its figures depend on
// besides the stored data (the engine's hierarchy and zone are fixed).
func questionKey(kind string, sources []aggregate.Source, balance bool, codes []string, r Range, s Step) string {
	var b strings.Builder
	b.WriteString(kind)
	for _, src := range sources {
		b.WriteString("|" + strconv.Itoa(int(src)))
	}
	fmt.Fprintf(&b, "|%t|%d|%d|%s|", balance, r.From.Unix(), r.To.Unix(), s)
	if codes == nil {
		b.WriteString("*") // every unit
	} else {
		b.WriteString(strings.Join(codes, ","))
	}
	return b.String()
}

// closed reports whether r is over, to the hour its open dossiers are
// judged at: only such answers are cached, since the figures of a range not
// yet over change with the clock (judgedAt) as well as with the records.
func (e *Engine) closed(r Range) bool { return e.judgedAt(r.To).Equal(r.To) }

// remember answers key from the cache when the rollups it read are as they
// were, else computes it (returning its value and how many figures it
// holds) and keeps it, at the version read before, when nothing changed
// while it was computed.
func (e *Engine) remember(ctx context.Context, key string, reads []rollup.Read, compute func() (any, int, error)) (any, error) {
	if e.cache == nil {
		v, _, err := compute()
		return v, err
	}
	before, err := e.version(ctx, reads)
	if err != nil {
		e.logger.Warn("read the rollups' version; answering without the cache", "err", err)
		v, _, err := compute()
		return v, err
	}
	if v, ok := e.cache.get(key, before); ok {
		return v, nil
	}
	v, n, err := compute()
	if err != nil {
		return nil, err
	}
	// Each query of compute read the parts active when it began; if the
	// version is the same after them all, they all read this version.
	if after, err := e.version(ctx, reads); err == nil && after == before {
		e.cache.put(key, before, v, countsSize(n))
	}
	return v, nil
}

// version reads the version of the rollups in reads: every active part of
// their tables that may hold a bucket of their windows, by table, name,
// rows and modification time, sorted. A part's bounds are those of its
// partition key's column: dates for the day and month tables, times for
// the minute and hour ones (a server may also give a DateTime-keyed part
// dates, cut in a zone of its own); a part without them, as in an
// unpartitioned table, always counts. Dates are compared a day wider each
// way, so that whatever zone they were cut in no part that holds a bucket
// of a window is left out: a part counted needlessly only costs reading
// an answer again.
func (e *Engine) version(ctx context.Context, reads []rollup.Read) (string, error) {
	if len(reads) == 0 {
		return "", nil
	}
	var conds, tables []string
	for _, r := range reads {
		if !slices.Contains(tables, r.Table) {
			tables = append(tables, r.Table)
		}
	}
	// database and table alone first: system.parts lists the parts of the
	// tables those select, and only then filters the parts.
	args := []any{e.db, chstore.In(tables)}
	for _, r := range reads {
		// [lo, hi) in days (a window reaching into a day reaches its
		// date, and a day more each way) and in seconds.
		var loDay, loSec int64
		if !r.From.IsZero() {
			loDay, loSec = max(0, dayNumber(r.From, e.loc)-1), max(0, r.From.Unix())
		}
		to := r.To
		if to.After(MaxTime) {
			to = MaxTime
		}
		hiDay, hiSec := dayNumber(to.Add(-time.Second), e.loc)+2, to.Unix()
		conds = append(conds, `(table = ? AND NOT (
			(toUInt16(max_date) > 0 AND (toUInt16(max_date) < ? OR toUInt16(min_date) >= ?)) OR
			(toUInt32(max_time) > 0 AND (toUInt32(max_time) < ? OR toUInt32(min_time) >= ?))))`)
		args = append(args, r.Table, loDay, hiDay, loSec, hiSec)
	}
	q := `SELECT arrayStringConcat(arraySort(groupArray(concat(table, ' ', name, ' ', toString(rows), ' ',
		toString(toUInt32(modification_time))))), ',') FROM system.parts
		WHERE database = ? AND table IN ? AND active AND (` + strings.Join(conds, " OR ") + `)`
	var v string
	err := e.query(ctx, "rollup parts", q, args, func(scan func(...any) error) error { return scan(&v) })
	return v, err
}

// dayNumber is the day number (days since 1970-01-01) of t's local date, as
// ClickHouse stores a Date.
func dayNumber(t time.Time, loc *time.Location) int64 {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, time.UTC).Unix() / 86400
}
