// Package bloom provides a Bloom filter over 64-bit hashes: a set that
// answers "certainly absent" or "perhaps present" in a few bits per
// member. The ingest writer keeps one of every dossier it knows to be
// stored, so that a batch of new dossiers needs no lookup.
//
// Members are added by their 64-bit hash (see Hash), so that a filter can
// be filled from hashes that ClickHouse computes (sipHash64 of the same
// bytes) without sending the members themselves.
//
// Concurrency: a Filter is not safe for concurrent use; its owner
// serialises Add and MayContain.
package bloom

import (
	"math"

	"github.com/dchest/siphash"
)

// Filter is a Bloom filter sized for an expected number of members.
type Filter struct {
	bits  []uint64
	m     uint64 // number of bits
	k     int    // probes per member
	count uint64 // Adds so far, duplicates included
	cap   uint64 // members it was sized for
}

// New returns a filter for about n members with a false-positive rate of
// about 1% while it holds no more than n (10 bits and 7 probes each).
func New(n uint64) *Filter {
	n = max(n, 1024)
	m := (n*10 + 63) &^ 63
	return &Filter{bits: make([]uint64, m/64), m: m, k: 7, cap: n}
}

// Hash is the 64-bit hash members are added by: SipHash-2-4 with a zero
// key, which is what ClickHouse's sipHash64 computes of one string.
func Hash(b []byte) uint64 { return siphash.Hash(0, 0, b) }

// probes derives the filter's k bit positions from one 64-bit hash by
// double hashing: position i is h1 + i·h2.
func (f *Filter) probe(h uint64, i int) uint64 {
	h1, h2 := h&math.MaxUint32, h>>32|1
	return (h1 + uint64(i)*h2) % f.m
}

// Add puts the member with hash h in the filter.
func (f *Filter) Add(h uint64) {
	for i := range f.k {
		p := f.probe(h, i)
		f.bits[p/64] |= 1 << (p % 64)
	}
	f.count++
}

// MayContain says whether the member with hash h may have been added:
// false is certain, true may be wrong.
func (f *Filter) MayContain(h uint64) bool {
	for i := range f.k {
		p := f.probe(h, i)
		if f.bits[p/64]&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}

// Full says whether the filter holds more members than it was sized for,
// counting duplicates: its false-positive rate has grown past the design.
func (f *Filter) Full() bool { return f.count > f.cap }

// Bytes is the filter's memory.
func (f *Filter) Bytes() int { return len(f.bits) * 8 }
