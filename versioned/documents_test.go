package versioned_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
	"github.com/openioc/ioc/versioned"
)

// documentsOn opens a node's store of documents on database db: its own
// ClickHouse connection, with leases.
func documentsOn(t *testing.T, db string, leases interface {
	Acquire(ctx context.Context, name string) (*lease.Lease, error)
}, now func() time.Time) *versioned.Documents {
	t.Helper()
	s := testenv.StoreOn(t, db)
	d, err := versioned.NewDocuments(versioned.DocumentsConfig{Now: now}, s, leases.Acquire)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDocumentVersions: every save is a new version with who saved it and
// when, the old ones stay readable, and a deletion is a version too.
func TestDocumentVersions(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2026, 11, 22, 2, 15, 0, 0, time.UTC)
	d := documentsOn(t, testenv.Database(t), lease.NewLocal(), func() time.Time { return clock })

	if _, err := d.Get(ctx, "dashboard", "ops-79"); !errors.Is(err, versioned.ErrNotFound) {
		t.Fatalf("get before any save: %v, want ErrNotFound", err)
	}
	steps := []struct {
		by, body string
		deleted  bool
	}{{"alice", `{"v":1}`, false}, {"bob", `{"v":2}`, false}, {"carol", "", true}, {"provisioning", `{"v":4}`, false}}
	for i, s := range steps {
		clock = clock.Add(time.Minute)
		var doc versioned.Document
		var err error
		if s.deleted {
			doc, err = d.Delete(ctx, "dashboard", "ops-79", s.by)
		} else {
			doc, err = d.Put(ctx, "dashboard", "ops-79", []byte(s.body), s.by)
		}
		if err != nil {
			t.Fatal(err)
		}
		if doc.Version != uint32(i+1) || doc.SavedBy != s.by || doc.Deleted != s.deleted || !doc.SavedAt.Equal(clock) {
			t.Errorf("step %d stored %+v, want version %d by %s at %s", i+1, doc, i+1, s.by, clock)
		}
		if s.deleted {
			if got, err := d.Get(ctx, "dashboard", "ops-79"); err != nil || !got.Deleted || got.Version != 3 {
				t.Errorf("get after delete: %+v, %v; want the deletion, version 3", got, err)
			}
			if l, err := d.List(ctx, "dashboard"); err != nil || len(l) != 0 {
				t.Errorf("list after delete: %+v, %v; want nothing", l, err)
			}
			if _, err := d.Delete(ctx, "dashboard", "ops-79", "carol"); !errors.Is(err, versioned.ErrNotFound) {
				t.Errorf("second delete: %v, want ErrNotFound", err)
			}
		}
	}
	if _, err := d.Put(ctx, "playlist", "ops-79", []byte(`{"p":1}`), "alice"); err != nil {
		t.Fatal(err)
	}
	vs, err := d.Versions(ctx, "dashboard", "ops-79")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, fmt.Sprintf("%d %s %s %v %s", v.Version, v.SavedBy, v.SavedAt.Format("15:04"), v.Deleted, v.Body))
	}
	want := []string{`1 alice 02:16 false {"v":1}`, `2 bob 02:17 false {"v":2}`, `3 carol 02:18 true `, `4 provisioning 02:19 false {"v":4}`}
	if !slices.Equal(got, want) {
		t.Errorf("versions\n%q\nwant\n%q", got, want)
	}
	if v, err := d.Version(ctx, "dashboard", "ops-79", 2); err != nil || string(v.Body) != `{"v":2}` || v.SavedBy != "bob" {
		t.Errorf("version 2: %+v, %v", v, err)
	}
	if _, err := d.Version(ctx, "dashboard", "ops-79", 9); !errors.Is(err, versioned.ErrNotFound) {
		t.Errorf("version 9: %v, want ErrNotFound", err)
	}
	l, err := d.List(ctx, "dashboard")
	if err != nil || len(l) != 1 || l[0].Version != 4 || string(l[0].Body) != `{"v":4}` {
		t.Errorf("list: %+v, %v; want version 4 only", l, err)
	}
	// A plan that refuses stores nothing.
	refused := errors.New("version changed")
	if _, err := d.Write(ctx, func(versioned.Latest) ([]versioned.Write, error) { return nil, refused }); !errors.Is(err, refused) {
		t.Errorf("refusing plan: %v", err)
	}
	if vs, _ := d.Versions(ctx, "dashboard", "ops-79"); len(vs) != 4 {
		t.Errorf("%d versions after a refused plan, want 4", len(vs))
	}
}

// TestConcurrentSavesTakeDistinctVersions: two nodes saving the same
// document at once, each from several requests, never store two equal
// versions, and a compare-and-set on the version read lets exactly one of
// the saves made from the same version through.
func TestConcurrentSavesTakeDistinctVersions(t *testing.T) {
	ctx := context.Background()
	db := testenv.Database(t)
	addr := testenv.RedisAddr(t)
	var nodes [2]*versioned.Documents
	for i := range nodes {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { rdb.Close() })
		nodes[i] = documentsOn(t, db, lease.NewRedis(rdb, lease.RedisConfig{Prefix: db + ":"}), time.Now)
	}
	const perNode = 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*perNode)
	for n, d := range nodes {
		for i := range perNode {
			wg.Go(func() {
				if _, err := d.Put(ctx, "dashboard", "ops-79", fmt.Appendf(nil, `{"node":%d,"save":%d}`, n, i), fmt.Sprintf("node%d", n)); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	vs, err := nodes[0].Versions(ctx, "dashboard", "ops-79")
	if err != nil {
		t.Fatal(err)
	}
	var versions []uint32
	bodies := map[string]bool{}
	for _, v := range vs {
		versions = append(versions, v.Version)
		bodies[string(v.Body)] = true
	}
	want := make([]uint32, 2*perNode)
	for i := range want {
		want[i] = uint32(i + 1)
	}
	if !slices.Equal(versions, want) || len(bodies) != 2*perNode {
		t.Fatalf("versions %v of %d bodies, want 1…%d, each save once", versions, len(bodies), 2*perNode)
	}

	// Compare-and-set: every writer read version 16 and saves only if it
	// is still the latest.
	wins := make(chan uint32, 2*perNode)
	for n, d := range nodes {
		for i := range perNode {
			wg.Go(func() {
				docs, err := d.Write(ctx, func(l versioned.Latest) ([]versioned.Write, error) {
					if cur, _ := l.Get("dashboard", "ops-79"); cur.Version != 2*perNode {
						return nil, nil
					}
					return []versioned.Write{{Kind: "dashboard", ID: "ops-79", Body: fmt.Appendf(nil, `{"cas":"%d-%d"}`, n, i), By: "cas"}}, nil
				})
				if err != nil {
					t.Error(err)
				}
				for _, doc := range docs {
					wins <- doc.Version
				}
			})
		}
	}
	wg.Wait()
	close(wins)
	var won []uint32
	for v := range wins {
		won = append(won, v)
	}
	if len(won) != 1 || won[0] != 2*perNode+1 {
		t.Errorf("saves made from version %d stored versions %v, want exactly one: %d", 2*perNode, won, 2*perNode+1)
	}
}
