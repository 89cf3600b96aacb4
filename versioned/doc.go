// Package versioned owns versioned documents — the wall's dashboards,
// playlists, walls and screens as stored, every version kept with who saved
// it and when — and their store in ClickHouse (Documents, over the
// dashboard_documents table that internal/chstore's migrations create).
//
// The values (Document, Write, Latest, ErrNotFound) are what the api and the
// walls see of the store; they name no storage, so that a consumer declares
// the few methods it needs and a test can stand in for the store.
//
// Concurrency: Documents is safe for concurrent use; its writes are
// serialised across nodes by a lease (see Documents). Document and Write are
// plain values and a Latest is read only once made, so all three may be
// read from any goroutine.
package versioned
