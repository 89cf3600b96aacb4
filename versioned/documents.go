package versioned

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/openioc/ioc/internal/chstore"
)

// Lock is a held lease: Documents numbers versions one writer at a time,
// across nodes, under one (internal/lease's Local on one node, Redis on
// several; taken as a function, so that either kind of lease set serves).
type Lock interface {
	// Lost is closed once the lease may be someone else's.
	Lost() <-chan struct{}
	Held() bool
	Release()
}

// DocumentsConfig tunes Documents. Zero fields take the defaults.
type DocumentsConfig struct {
	// Now stamps saved_at; default time.Now.
	Now func() time.Time
}

// Documents keeps versioned documents in the append-only table
// dashboard_documents: a save appends the next version (the previous one
// plus one) and a deletion appends a version marked deleted, so every
// version stays readable with who saved it.
//
// Writes are serialised across nodes by the lease "<db>.dashboard_documents":
// a writer holds it while it reads the latest versions, decides what to
// write and inserts, so two saves never take the same version; the insert
// is abandoned if the lease is lost before it ends. Optimistic concurrency
// for clients (If-Match) is the caller's: Write's plan sees the latest
// versions under the lease and may refuse.
//
// Concurrency: safe for concurrent use.
type Documents struct {
	conn    driver.Conn
	acquire func(ctx context.Context, name string) (Lock, error)
	now     func() time.Time
	table   string
}

// NewDocuments returns the store of documents in s.
func NewDocuments[L Lock](cfg DocumentsConfig, s *chstore.Store, acquire func(ctx context.Context, name string) (L, error)) (*Documents, error) {
	if s == nil || acquire == nil {
		return nil, errors.New("documents need a store and leases")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Documents{conn: s.Conn(), now: cfg.Now, table: s.Database() + ".dashboard_documents",
		acquire: func(ctx context.Context, name string) (Lock, error) {
			l, err := acquire(ctx, name)
			if err != nil {
				return nil, err
			}
			return l, nil
		}}, nil
}

const documentColumns = "kind, id, version, saved_at, saved_by, deleted, body"

// latestColumns read the latest version of each (kind, id) of a GROUP BY.
const latestColumns = "kind, id, max(version), argMax(saved_at, version), argMax(saved_by, version), argMax(deleted, version), argMax(body, version)"

func (d *Documents) query(ctx context.Context, q string, args ...any) ([]Document, error) {
	rows, err := d.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query dashboard_documents: %w", err)
	}
	defer rows.Close()
	var out []Document
	for rows.Next() {
		var doc Document
		var deleted uint8
		var body string
		if err := rows.Scan(&doc.Kind, &doc.ID, &doc.Version, &doc.SavedAt, &doc.SavedBy, &deleted, &body); err != nil {
			return nil, fmt.Errorf("read dashboard_documents: %w", err)
		}
		doc.Deleted, doc.Body, doc.SavedAt = deleted == 1, []byte(body), doc.SavedAt.UTC()
		out = append(out, doc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read dashboard_documents: %w", err)
	}
	return out, nil
}

// Get returns the latest version of a document, which is a deletion
// (Deleted) when the document was removed last; ErrNotFound when it has
// no version.
func (d *Documents) Get(ctx context.Context, kind, id string) (Document, error) {
	docs, err := d.query(ctx, "SELECT "+documentColumns+" FROM "+d.table+
		" WHERE kind = ? AND id = ? ORDER BY version DESC LIMIT 1", kind, id)
	if err != nil {
		return Document{}, err
	}
	if len(docs) == 0 {
		return Document{}, fmt.Errorf("%s %q: %w", kind, id, ErrNotFound)
	}
	return docs[0], nil
}

// Version returns one version of a document; ErrNotFound when it has no
// such version.
func (d *Documents) Version(ctx context.Context, kind, id string, version uint32) (Document, error) {
	docs, err := d.query(ctx, "SELECT "+documentColumns+" FROM "+d.table+
		" WHERE kind = ? AND id = ? AND version = ? LIMIT 1", kind, id, version)
	if err != nil {
		return Document{}, err
	}
	if len(docs) == 0 {
		return Document{}, fmt.Errorf("%s %q version %d: %w", kind, id, version, ErrNotFound)
	}
	return docs[0], nil
}

// Versions returns every version of a document, oldest first; none when
// it never existed.
func (d *Documents) Versions(ctx context.Context, kind, id string) ([]Document, error) {
	return d.query(ctx, "SELECT "+documentColumns+" FROM "+d.table+
		" WHERE kind = ? AND id = ? ORDER BY version", kind, id)
}

// List returns the latest version of every document of kind that is not
// deleted, by id.
func (d *Documents) List(ctx context.Context, kind string) ([]Document, error) {
	docs, err := d.query(ctx, "SELECT "+latestColumns+" FROM "+d.table+" WHERE kind = ? GROUP BY kind, id ORDER BY id", kind)
	if err != nil {
		return nil, err
	}
	live := docs[:0]
	for _, doc := range docs {
		if !doc.Deleted {
			live = append(live, doc)
		}
	}
	return live, nil
}

func (d *Documents) latest(ctx context.Context) (Latest, error) {
	docs, err := d.query(ctx, "SELECT "+latestColumns+" FROM "+d.table+" GROUP BY kind, id")
	if err != nil {
		return Latest{}, err
	}
	l := Latest{docs: make(map[[2]string]Document, len(docs))}
	for _, doc := range docs {
		l.docs[[2]string{doc.Kind, doc.ID}] = doc
	}
	return l, nil
}

// Write stores what plan decides, given the latest versions: each write
// becomes the next version of its document, all in one insert. plan runs
// under the lease, so what it checks (a version the client read, a body
// that did not change, references between documents) still holds when
// the versions are stored. An error of plan is returned as it is and
// nothing is stored; so is nothing when plan writes nothing.
func (d *Documents) Write(ctx context.Context, plan func(Latest) ([]Write, error)) ([]Document, error) {
	l, err := d.acquire(ctx, d.table)
	if err != nil {
		return nil, fmt.Errorf("save documents: %w", err)
	}
	defer l.Release()
	// The insert stops if the lease is lost: another node may be numbering
	// versions by then.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-l.Lost():
			cancel()
		case <-ctx.Done():
		}
	}()
	latest, err := d.latest(ctx)
	if err != nil {
		return nil, err
	}
	writes, err := plan(latest)
	if err != nil || len(writes) == 0 {
		return nil, err
	}
	now := d.now().UTC().Truncate(time.Second)
	out := make([]Document, 0, len(writes))
	seen := map[[2]string]bool{}
	for _, w := range writes {
		key := [2]string{w.Kind, w.ID}
		switch {
		case w.Kind == "" || w.ID == "" || w.By == "":
			return nil, fmt.Errorf("save %s %q: a write needs a kind, an id and who saves it", w.Kind, w.ID)
		case seen[key]:
			return nil, fmt.Errorf("save %s %q: written twice in one save", w.Kind, w.ID)
		}
		seen[key] = true
		prev, _ := latest.Get(w.Kind, w.ID)
		doc := Document{Kind: w.Kind, ID: w.ID, Version: prev.Version + 1, SavedAt: now, SavedBy: w.By, Deleted: w.Deleted, Body: w.Body}
		if doc.Deleted {
			doc.Body = nil
		}
		out = append(out, doc)
	}
	b, err := d.conn.PrepareBatch(ctx, "INSERT INTO "+d.table+" ("+documentColumns+")")
	if err != nil {
		return nil, fmt.Errorf("prepare insert into dashboard_documents: %w", err)
	}
	for _, doc := range out {
		deleted := uint8(0)
		if doc.Deleted {
			deleted = 1
		}
		if err := b.Append(doc.Kind, doc.ID, doc.Version, doc.SavedAt, doc.SavedBy, deleted, string(doc.Body)); err != nil {
			b.Abort()
			return nil, fmt.Errorf("append to dashboard_documents batch: %w", err)
		}
	}
	if !l.Held() {
		b.Abort()
		return nil, fmt.Errorf("save documents: lost the lease %s before storing; nothing was stored, retry", d.table)
	}
	if err := b.Send(); err != nil {
		return nil, fmt.Errorf("insert into dashboard_documents: %w", err)
	}
	return out, nil
}

// Put stores body as the next version of a document.
func (d *Documents) Put(ctx context.Context, kind, id string, body []byte, by string) (Document, error) {
	docs, err := d.Write(ctx, func(Latest) ([]Write, error) {
		return []Write{{Kind: kind, ID: id, Body: body, By: by}}, nil
	})
	if err != nil {
		return Document{}, err
	}
	return docs[0], nil
}

// Delete stores a deletion as the next version of a document;
// ErrNotFound when it has no version or is deleted already.
func (d *Documents) Delete(ctx context.Context, kind, id, by string) (Document, error) {
	docs, err := d.Write(ctx, func(l Latest) ([]Write, error) {
		if prev, ok := l.Get(kind, id); !ok || prev.Deleted {
			return nil, fmt.Errorf("%s %q: %w", kind, id, ErrNotFound)
		}
		return []Write{{Kind: kind, ID: id, Deleted: true, By: by}}, nil
	})
	if err != nil {
		return Document{}, err
	}
	return docs[0], nil
}
