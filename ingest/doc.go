// Package ingest takes records in from sources: it decodes each wire format
// (a protocol of its own through its package of pure decoders,
// ingest/ngsild and ingest/cameraxml), validates every record on its own (a
// bad record never takes its neighbours down), deduplicates by event id,
// writes batches to ClickHouse with the rollups every figure is read from,
// and acknowledges a request only once its records are stored.
//
// The Pipeline is that path for one request, whatever it came by: it takes
// a body (a reader, or bytes) and a context, and returns what became of
// each record (Response) or the typed error that refuses the request whole
// (BodyError, OutOfScopeError, RefusedError, and the failures to store:
// QueueFullError, ErrClosed, StoreError, TimeoutError). It speaks no
// protocol: package api serves the HTTP routes, reading their bodies
// (Content-Encoding undone under the body limit) and answering outcomes
// and errors with HTTP statuses; MQTT and iocd import call it directly.
//
// A request costs the node no more than the records it can store: its body
// is decoded and validated a record at a time as it is read, bounded in
// records (PipelineConfig.MaxRecords), and of its refusals only those the
// answer lists are kept.
//
// # Exactness
//
// The invariant: for every unit, window and indicator, the figure equals
// the one computed from the distinct stored events, whatever crashed, was
// retried or arrived twice. It holds because:
//
//   - The duplicate check and each dossier's history are read from the raw
//     table the batch writes first (dossier_history, sorted by dossier), and
//     that insert is one part (its rows share ingested_at, the partition
//     key), which ClickHouse writes whole or not at all. A resend finds its
//     event; a resend with other content is refused as a conflict.
//   - No additive figure comes from a materialized view, which is not
//     atomic with its source's insert. The writer sums each batch into
//     every rollup itself, one statement per table, and adds to each part a
//     marker row (hierarchy "~batch", area the batch id) that lands with it
//     or not at all.
//   - Each batch is journaled (ingest_journal) before its rows. A batch that
//     was begun and not finished, because an insert failed or its answer was
//     lost or the node died, is finished by the Reconciler: from the rows of
//     the batch that are stored, it writes the rollup parts whose markers are
//     missing, and derives again the tables where a second firing changes
//     nothing (maxima, latest values, last seen), which views still keep.
//   - The Verifier recomputes every rollup from the distinct stored records
//     and corrects what differs (iocd verify); the Checker runs it in the
//     background and reports differences as a metric.
//
// A batch whose raw rows are stored is acknowledged even when a rollup
// insert failed: the records are durable, and recovery completes the
// figures within seconds.
//
// Concurrency: the pipeline, writers, the reconciler and the checker are
// safe for concurrent use; a body handed to the pipeline is read by the
// call alone, and not after it returns. Each writer has one goroutine (Run) that owns its batch
// and flushes it under the table's lease ("<database>.<table>"), so that
// the history lookup and the insert are serial across every node; the
// lease's token names the batch. The reconciler and the checker each work
// under a lease of their own, one node at a time.
package ingest
