package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/internal/chstore"
)

// An insert whose answer is lost (a timeout, a dropped connection) may still
// be running on the server, and land after whoever decides whether its
// batch's rows are stored has looked: the batch would count as not stored
// while its rows are, so that its records, sent again, count as duplicates
// and its rollups are never written; or its records would be stored a
// second time and counted twice. So every insert of a batch's rows carries
// a query id naming the batch (insertID), and nothing is judged from what
// is stored while an insert naming the batch still runs: a writer waits
// after its own failed insert and before its next batch, a writer that
// takes a table's lease over from another process waits for the previous
// holder's last batch (the lease's previous token) before its first, and
// recovery waits before it reads a batch. ClickHouse 18.16 cannot kill an
// insert that waits for its data, so this waits; the server ends an insert
// whose client has gone, and one whose data arrived ends once its part is
// written or refused. A replicated table (on a cluster) may keep the part
// of an insert that lost ZooKeeper while committing it, until it has
// checked whether ZooKeeper got it, and detach it if not: until such a part
// is known to stay or is detached (chstore.SettleDoubt), what is stored is
// not known either.

// insertID is the query id of an insert into table of the rows of batches:
// "ioc:<db>.<table>:,<id>,<id>,".
func insertID(db, table string, batches ...uint64) string {
	var b strings.Builder
	b.WriteString("ioc:" + db + "." + table + ":,")
	for _, id := range batches {
		b.WriteString(strconv.FormatUint(id, 10))
		b.WriteByte(',')
	}
	return b.String()
}

// withInsertID is ctx naming the insert of batches' rows into table.
func withInsertID(ctx context.Context, db, table string, batches ...uint64) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithQueryID(insertID(db, table, batches...)))
}

// settlePoll is how often settle asks whether an insert still runs, and
// doubtPoll how often, once none runs, whether a part is in doubt: that
// asks ZooKeeper, through the server, for every part of a table.
const (
	settlePoll = 20 * time.Millisecond
	doubtPoll  = time.Second
)

// settle waits until no insert of batch's rows into any table of db runs
// on the server and no part of db is in doubt, for at most timeout and
// while ctx lasts. A part in doubt that ClickHouse leaves unchecked past
// its age is detached here (chstore.SettleDoubt), since no insert runs.
func settle(ctx context.Context, conn driver.Conn, db string, batch uint64, timeout time.Duration, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		var running uint64
		err := conn.QueryRow(ctx, "SELECT count() FROM system.processes WHERE startsWith(query_id, ?) AND position(query_id, ?) > 0",
			"ioc:"+db+".", ","+strconv.FormatUint(batch, 10)+",").Scan(&running)
		if err == nil && running > 0 {
			err = fmt.Errorf("%d still running after %s", running, timeout)
		}
		wait := settlePoll
		if err == nil {
			if err = chstore.SettleDoubt(ctx, conn, db, logger); err == nil {
				return nil
			}
			wait = doubtPoll
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the inserts of batch %d to end, so that what it stored is known: %w", batch, err)
		case <-time.After(wait):
		}
	}
}

// settler keeps, for one writer, the batches whose inserts may still run:
// the writer's own whose answer was lost, and the previous holder's last
// batch when the writer takes the lease over. Only the writer's flushing
// goroutine uses it.
type settler struct {
	conn    driver.Conn
	db      string
	timeout time.Duration
	logger  *slog.Logger
	last    uint64   // the token of the writer's latest lease
	pending []uint64 // batches whose inserts may still run
}

// begin is called with a new lease's previous token, before the batch
// looks at what is stored; an error means it must not.
func (s *settler) begin(previous uint64) error {
	if previous != 0 && previous != s.last {
		s.add(previous)
	}
	for len(s.pending) > 0 {
		if err := settle(context.Background(), s.conn, s.db, s.pending[0], s.timeout, s.logger); err != nil {
			return err
		}
		s.pending = s.pending[1:]
	}
	return nil
}

// end records the lease's token once its batch is over.
func (s *settler) end(token uint64) { s.last = token }

// lost is called when an insert of batch failed: it waits for the insert
// to end while the lease is still held (the batch's own context may be
// over: that is often why it failed), or keeps the batch for the next one
// to wait for.
func (s *settler) lost(batch uint64) {
	if err := settle(context.Background(), s.conn, s.db, batch, s.timeout, s.logger); err != nil {
		s.logger.Warn("an insert whose answer was lost may still run; the next batch waits for it", "batch", batch, "err", err)
		s.add(batch)
	}
}

func (s *settler) add(batch uint64) {
	for _, b := range s.pending {
		if b == batch {
			return
		}
	}
	s.pending = append(s.pending, batch)
}
