// Package geo owns administrative geography: named, dated hierarchies of
// units (province, district, commune …) keyed by (hierarchy, code), their
// boundaries, the crosswalks that carry records from one hierarchy to its
// successor, the spatial index that places a point in its units, and the
// per-zoom simplification and vector-tile encoding of boundary layers, and
// the validity of boundaries (Validate, Repair).
//
// Concurrency: Hierarchy, Registry, Crosswalk and Index are immutable once
// built and safe for concurrent use without locking; the spatial index of a
// hierarchy is built once, on first use. LayerGeometry guards its cache.
package geo
