// Package ingest takes records in from sources: it decodes each wire format,
// validates every record on its own (a bad record never takes its neighbours
// down), deduplicates by event id and writes batches to ClickHouse, and
// acknowledges a request only once its records are stored.
//
// Concurrency: a Writer is safe for concurrent use; one goroutine (Run)
// owns the batch and is the only one that writes to ClickHouse, which is
// what makes the "already stored?" check and the insert atomic on a node.
// Across nodes a cluster lock serialises them.
package ingest
