// Package aggregate owns the indicators: the KPI catalog and its formulas,
// the queries over the rollup tables, the snapshots per unit and window, and
// the live loop that recomputes the units touched by new records and
// publishes changed snapshots on the bus.
//
// Figures roll up by summing numerators and denominators over a unit's
// subtree (a unit's own records included), never by averaging child rates.
//
// Concurrency: an Aggregator is safe for concurrent use. Run owns the live
// loop; MarkDirty never blocks.
package aggregate
