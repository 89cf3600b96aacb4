// Package aggregate owns the indicators: the KPI catalog and its formulas,
// the queries over the rollup tables, the snapshots per unit and window, and
// the live loop that recomputes the units touched by new records and
// publishes changed snapshots on the bus.
//
// Figures roll up by summing numerators and denominators over a unit's
// subtree (a unit's own records included), never by averaging child rates.
//
// Live figures are computed and published by one node at a time, the holder
// of the aggregate lease; each message carries a version made of the
// lease's fencing token and a sequence number, so that a screen can drop an
// older computation. Other nodes forward the units their records touched to
// the holder over the bus (DirtyTopic).
//
// Concurrency: an Aggregator is safe for concurrent use. Run owns the live
// loop and the goroutine that takes part in electing the holder, and waits
// for both; MarkDirty and Forwarded never block.
package aggregate
