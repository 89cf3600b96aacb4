// Package aggregate owns the indicators: the KPI catalog and its formulas
// (each indicator naming, typed, the sources its figures are summed from),
// the figures (Counts, from what the rollup reader sums: CountsOf), the
// snapshots per unit and window and their encoding, and the live loop that
// keeps every unit's figures in memory and publishes changed snapshots on
// the bus. It reads the rollups only through rollup's Reader, as
// the history (report) does.
//
// Figures roll up by summing numerators and denominators over a unit's
// subtree (a unit's own records included), never by averaging child rates.
//
// Live figures are computed and published by one node at a time, the holder
// of the aggregate lease; each message carries a version made of the
// lease's fencing token and a sequence number, so that a screen can drop an
// older computation. The holder reads every unit's figures when it takes
// the lease and every RefreshInterval (a check), and in between advances
// them by what the writers added to the rollups (rollup.Delta, through
// Added), without reading ClickHouse: a delta is counted exactly once
// against the checks, settled by the markers the checks read with the
// figures (see liveState). Other nodes forward their writers' deltas, and
// the units whose devices or alarms changed (MarkDirty), to the holder over
// the bus (DeltaTopic, DirtyTopic); a lost message is corrected by the next
// check. A publication goes out in chunks, higher levels first, and the
// topics a node's hub asks for again because the bus lost them
// (RepublishTopic) jump the queue between chunks. This relies on a read seeing every insert that returned before it
// started, as one ClickHouse server gives.
//
// Every message of a map/ topic carries the whole MapSnapshot; one that
// follows a message of the same topic that the bus took in the same term
// also carries a delta against it (bus.Message Base and Delta): the
// snapshot with only the children whose entry changed, so that one
// commune's change does not resend a province's 168. Merge rule: every
// top-level field of the delta but children replaces the held one, each of
// its children replaces the held child of that code whole, and the other
// children stay; ApplyMapDelta is the rule in Go. A term's first message
// of a topic, and the next one after a failed publication, are whole
// only: screens may hold no message, or one of several, that a delta
// could go against.
//
// Concurrency: an Aggregator is safe for concurrent use. Run owns the live
// loop and the goroutine that takes part in electing the holder, and waits
// for both; Added, MarkDirty, Forwarded, ForwardedDeltas and Requested
// never block,
// nor does Marks.MarkDirty, whose units Run takes.
package aggregate
