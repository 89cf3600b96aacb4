// Package dataset owns other departments' data as data: dataset
// definitions (what a department reports, at which level and grain, the
// measures it carries and how each rolls up, the indicators computed from
// them), their validation with the path of every wrong field, the periods
// of each grain, the decoding of uploaded values (JSON, NDJSON, CSV) row by
// row with an error per refused row, the store of the values in ClickHouse
// (every upload kept, the latest of a unit's period counting), the figures
// of units and periods rolled up through the hierarchy, and each feed's
// liveness.
//
// Figures roll up as the dossier ones do: a measure summed over units is
// the sum of its units' values; a mean is the summed values over the
// number of values; a ratio is the summed numerator over the summed
// denominator, never a mean of rates. Over time, a measure of a flow
// (enterprises registered) sums the periods that start in the range, and a
// measure of a stock (residents) takes each unit's latest period that
// starts before the range ends: the census of January is the population of
// October. A derived indicator computes its formula from the figures of
// the indicators it names, each computed as its own answers are.
//
// Definitions are stored as versioned documents of kind "dataset" (package
// versioned), so that every change keeps who made it; the api serves and
// provisions them.
//
// A definition may carry a connector that pulls its values instead of
// waiting for uploads: a query of the department's PostgreSQL database or
// a file its web service answers. Connectors runs them on the node that
// holds its lease, each when due, checks the rows as an upload's and
// stores each run as an upload (or records why it failed).
//
// Concurrency: Definition, Row and the figures are plain values, safe to
// read from any goroutine once made; Values, Registry and Connectors are
// safe for concurrent use.
package dataset
