// Package backfill imports history from files or standard input (iocd
// import): NDJSON or CSV, gzip or not, read as a stream and handed to
// ingest's Import a chunk at a time, so that every record goes through what
// live ingest does — decoding, validation, device registration, the
// writer's journal, duplicate check, derivation and rollups — at the speed
// of large batches.
//
// It owns what is particular to files: telling their format, framing their
// records (lines; CSV records, whose quoted cells may span lines), the
// rejects file (each refused record with its place, problems and text),
// the state file that makes an import resumable, and the progress line.
//
// # Resuming exactly
//
// The state records, per file, its identity (path, size, a hash of its
// first MiB) and the records of its leading part that are acknowledged:
// stored, found stored, or refused and listed. Several chunks are stored at
// once and may be acknowledged out of order; the state moves only over
// chunks acknowledged in order, so it always names a contiguous prefix,
// with the rejects file's length at that point. A rerun skips that prefix
// (a seek, or decompressing and dropping it), cuts the rejects file back,
// and reads on.
//
// Standard input ("-") cannot be sought, nor told apart from another
// stream by its name and size: an import of it needs a state file named
// (--state), and to resume, the same records are piped in again. The
// state keeps the CRC-32C of the prefix (decompressed), and the rerun
// reads the prefix, drops it and refuses a stream whose prefix sums
// otherwise or ends early. Compressed or not, the same records resume. The records between the prefix and the interruption are
// sent again; the writer finds them stored (the same event_id, or for a
// reading without one its sensor, kind and time) and counts them as
// duplicates, so nothing is counted twice.
//
// Concurrency: a Backfill is run once. Run reads, decodes and validates on
// the calling goroutine and stores up to InFlight chunks on goroutines it
// owns and waits for; Stats may be called from any goroutine meanwhile.
package backfill
