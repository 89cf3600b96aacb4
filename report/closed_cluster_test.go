package report

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
)

// TestClosingOnAClusterWritesEveryReplicaOrNothing closes periods on a
// cluster of two shards of two replicas: a close returns once both
// replicas of the first shard hold the official figures; with one of them
// down the close is refused, saying why and how to go on, and the period
// stays open; once the replica is back the same close succeeds.
func TestClosingOnAClusterWritesEveryReplicaOrNothing(t *testing.T) {
	ctx := context.Background()
	c := testenv.StartCluster(t)
	s := testenv.ClusterStore(t, c)
	units, err := geo.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := units.Hierarchy("vn-2025")
	e, err := New(Config{}, s, h, lease.NewLocal(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e.now = func() time.Time { return time.Date(2026, 11, 22, 9, 0, 0, 0, hcm) }
	closeForced := func(name string) error {
		p, err := ParsePeriod(name, e.now(), hcm)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Close(ctx, p, "admin", "", true)
		return err
	}
	// figures counts the official figures of period on each replica of
	// the first shard, by itself.
	figures := func(period string) [2]uint64 {
		var out [2]uint64
		for r, m := range c.Servers[0] {
			conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{m.Addr}})
			if err != nil {
				t.Fatal(err)
			}
			err = conn.QueryRow(ctx, "SELECT count() FROM "+s.Database()+"_local.period_figures WHERE period = ?", period).Scan(&out[r])
			conn.Close()
			if err != nil {
				t.Fatalf("count the figures on %s: %v", m.Addr, err)
			}
		}
		return out
	}

	if err := closeForced("2026-09"); err != nil {
		t.Fatal(err)
	}
	if n := figures("2026-09"); n[0] == 0 || n[0] != n[1] {
		t.Fatalf("the replicas of the first shard hold %d and %d figures of the closed period, want the same, above 0, as the close returns", n[0], n[1])
	}

	c.Servers[0][1].Kill()
	// ZooKeeper sees the replica gone once its session lapses; an
	// official insert meanwhile waits for it and fails, and holds the
	// next ones back until the replica returns: refused either way.
	var refusal error
	testenv.Eventually(t, 2*time.Minute, func() (bool, string) {
		refusal = closeForced("2026-08")
		return chstore.QuorumRefused(refusal), fmt.Sprintf("closing with a replica of the first shard down: %v", refusal)
	})
	if msg := refusal.Error(); !strings.Contains(msg, "one is down") || !strings.Contains(msg, "start it and try again") {
		t.Errorf("the refusal does not say why and how to go on: %s", msg)
	}
	var nf *NotFoundError
	if _, err := e.Figures(ctx, "2026-08", "79", time.Time{}); !errors.As(err, &nf) {
		t.Errorf("figures of the period whose close was refused: got %v, want none (never closed)", err)
	}

	if err := c.Start(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, func() (bool, string) {
		err := closeForced("2026-08")
		return err == nil, fmt.Sprintf("closing once the replica is back: %v", err)
	})
	if n := figures("2026-08"); n[0] == 0 || n[0] != n[1] {
		t.Errorf("the replicas of the first shard hold %d and %d figures of the period closed after the replica returned", n[0], n[1])
	}
}
