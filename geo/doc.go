// Package geo owns administrative hierarchies: named, dated sets of units
// (province, district, commune …) keyed by (hierarchy, code), with their
// parent/child structure.
//
// Concurrency: a Hierarchy and a Registry are immutable once built and safe
// for concurrent use without locking.
package geo
