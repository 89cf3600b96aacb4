package ingest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/openioc/ioc/internal/chstore"
)

// Kinds of record an import takes, named as their ingest endpoints are.
const (
	KindDossiers       = "dossiers"
	KindCameraEvents   = "camera-events"
	KindSensorReadings = "sensor-readings"
)

// ImportKinds lists the kinds iocd import takes.
var ImportKinds = []string{KindDossiers, KindCameraEvents, KindSensorReadings}

// KindFeedback is citizen feedback, which an Import also takes (the
// simulator's history is written so) though iocd import does not yet.
const KindFeedback = "feedback"

func unknownKind(kind string) error {
	return fmt.Errorf("unknown kind of record %q: use %s", kind, strings.Join(ImportKinds, ", "))
}

// kindNoun names a kind's records in messages.
func kindNoun(kind string) string {
	switch kind {
	case KindCameraEvents:
		return "camera events"
	case KindSensorReadings:
		return "sensor readings"
	case KindFeedback:
		return "feedback items"
	}
	return "dossier events"
}

// Import takes in records of one kind from outside a request — files being
// backfilled — chunk by chunk, through what the ingest endpoints use: the
// same decoding of each wire record, the same validation and problems, the
// same registration of a device by its first report, and the same writer
// (journal, duplicate check, derivation, rollups). A device that a chunk's
// record registers is known to the records of the chunks after it, even
// while that chunk is still being stored.
//
// Concurrency: chunks are filled one at a time, by one goroutine (the
// reader); any number of filled chunks may be stored at once.
type Import struct {
	s     *Pipeline
	kind  string
	known *addedDevices // devices the import's records registered so far
	chunk func(capacity int) chunker
}

// Import starts an import of kind (one of ImportKinds) through p's writer
// of that kind.
func (p *Pipeline) Import(kind string) (*Import, error) {
	im := &Import{s: p, kind: kind, known: &addedDevices{base: p.rules.Devices}}
	switch kind {
	case KindDossiers:
		if p.w.Dossiers == nil {
			return nil, fmt.Errorf("import %s: no dossier writer", kind)
		}
		im.chunk = chunkOf(im, p.dossierStream())
	case KindCameraEvents:
		if p.w.Cameras == nil || p.devices == nil {
			return nil, fmt.Errorf("import %s: no camera writer or device registry", kind)
		}
		im.chunk = chunkOf(im, p.cameraStream())
	case KindSensorReadings:
		if p.w.Readings == nil || p.devices == nil {
			return nil, fmt.Errorf("import %s: no reading writer or device registry", kind)
		}
		im.chunk = chunkOf(im, p.readingStream())
	case KindFeedback:
		if p.w.Feedback == nil {
			return nil, fmt.Errorf("import %s: no feedback writer", kind)
		}
		im.chunk = chunkOf(im, p.feedbackStream())
	default:
		return nil, unknownKind(kind)
	}
	return im, nil
}

// Kind is the kind of record the import takes.
func (im *Import) Kind() string { return im.kind }

// Chunk starts the next chunk, with room for capacity records.
func (im *Import) Chunk(capacity int) *Chunk { return &Chunk{c: im.chunk(capacity)} }

// Chunk is records validated as they are added, then stored together as
// one batch of the writer. Each record is added under an id of the
// caller's, by which its refusal is reported.
type Chunk struct{ c chunker }

// ChunkOutcome is what became of a chunk's records: Stored were new,
// Duplicates were stored already with the same content (repeated, or sent
// again after an interruption), and Refused lists the others by id with
// their problems — invalid, or an event of a stored id with other content.
type ChunkOutcome struct {
	Stored, Duplicates int
	Refused            []RecordError
}

// AddJSON adds one record given as a JSON object (a line of NDJSON).
func (c *Chunk) AddJSON(id int, raw []byte) { c.c.addJSON(id, raw) }

// AddCSV adds one CSV record, its cells read by cols.
func (c *Chunk) AddCSV(id int, cols *CSVColumns, cells []string) { c.c.addCSV(id, cols, cells) }

// Store registers the devices the chunk's records report first and stores
// its valid records; it returns once they are stored. An error means none
// of them is acknowledged (some may be stored: sent again, they are found).
func (c *Chunk) Store(ctx context.Context) (ChunkOutcome, error) { return c.c.store(ctx) }

// chunker is a Chunk of one kind's wire and stored types.
type chunker interface {
	addJSON(id int, raw []byte)
	addCSV(id int, cols *CSVColumns, cells []string)
	store(ctx context.Context) (ChunkOutcome, error)
}

type typedChunk[W, T any] struct {
	s  *Pipeline
	in *intake[W, T]
}

func chunkOf[W, T any](im *Import, st stream[W, T]) func(int) chunker {
	return func(capacity int) chunker {
		// No request: no scope, every unit.
		in := newIntakeOver(context.Background(), im.s, st, 0, im.known)
		in.rows, in.index = make([]T, 0, capacity), make([]int, 0, capacity)
		return &typedChunk[W, T]{s: im.s, in: in}
	}
}

func (c *typedChunk[W, T]) addJSON(id int, raw []byte) {
	var w W
	c.in.take(id, w, decodeOne(raw, &w))
}

func (c *typedChunk[W, T]) addCSV(id int, cols *CSVColumns, cells []string) {
	dec, ok := cols.decode.(*csvFields[W])
	if !ok {
		panic(fmt.Sprintf("ingest: CSV columns of %s used for another kind", cols.kind))
	}
	w, err := dec.decode(cols.columns, cells)
	c.in.take(id, w, err)
}

func (c *typedChunk[W, T]) store(ctx context.Context) (ChunkOutcome, error) {
	o, err := c.in.store(ctx, c.s)
	if err != nil {
		return ChunkOutcome{}, err
	}
	return ChunkOutcome{Stored: o.accepted - o.duplicates, Duplicates: o.duplicates, Refused: c.in.refused.list()}, nil
}

// AnyDossierEvent says whether the store holds at least one dossier event,
// of any hierarchy: whether the database has any dossier history at all.
func AnyDossierEvent(ctx context.Context, store *chstore.Store) (bool, error) {
	var n uint64
	if err := store.Conn().QueryRow(ctx, `SELECT count() FROM (SELECT 1 FROM `+store.Database()+`.dossier_history LIMIT 1)`).Scan(&n); err != nil {
		return false, fmt.Errorf("look for stored dossier events: %w", err)
	}
	return n > 0, nil
}

// DossierEventSpan is when the first and the last stored dossier events
// whose ids begin with prefix occurred, and whether there is any: how far a
// source that numbers its events so (the simulator's history) has reached.
// It reads the whole table's event ids, once.
func DossierEventSpan(ctx context.Context, store *chstore.Store, prefix string) (first, last time.Time, found bool, err error) {
	escaped := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(prefix)
	var n uint64
	if err := store.Conn().QueryRow(ctx, `SELECT count(), min(occurred_at), max(occurred_at) FROM `+store.Database()+
		`.dossier_history WHERE event_id LIKE ?`, escaped+"%").Scan(&n, &first, &last); err != nil {
		return time.Time{}, time.Time{}, false, fmt.Errorf("look for stored dossier events %s…: %w", prefix, err)
	}
	if n == 0 {
		return time.Time{}, time.Time{}, false, nil
	}
	return first, last, true, nil
}
