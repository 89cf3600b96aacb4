package versioned

import (
	"errors"
	"sort"
	"time"
)

// ErrNotFound is a document that has no version at all.
var ErrNotFound = errors.New("no such document")

// Document is one version of a stored document.
type Document struct {
	Kind    string
	ID      string
	Version uint32 // 1, 2, … per (kind, id)
	SavedAt time.Time
	SavedBy string
	// Deleted marks the version that removed the document; its Body is
	// empty.
	Deleted bool
	Body    []byte
}

// Write is one new version to store.
type Write struct {
	Kind, ID string
	Body     []byte
	Deleted  bool
	By       string
}

// Latest is the latest version of every document, deletions included, as
// a writer sees them under the lease.
type Latest struct {
	docs map[[2]string]Document
}

// Get returns the latest version of a document, if it has one.
func (l Latest) Get(kind, id string) (Document, bool) {
	doc, ok := l.docs[[2]string{kind, id}]
	return doc, ok
}

// Live returns the documents of every kind that are not deleted, by kind
// and id.
func (l Latest) Live() []Document {
	var out []Document
	for _, doc := range l.docs {
		if !doc.Deleted {
			out = append(out, doc)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].ID < out[j].ID
	})
	return out
}
