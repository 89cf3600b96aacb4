package bloom

import (
	"strconv"
	"testing"
)

func TestNoFalseNegativesAndFewFalsePositives(t *testing.T) {
	const n = 100000
	f := New(n)
	for i := range n {
		f.Add(Hash([]byte("in-" + strconv.Itoa(i))))
	}
	for i := range n {
		if !f.MayContain(Hash([]byte("in-" + strconv.Itoa(i)))) {
			t.Fatalf("member %d reported absent", i)
		}
	}
	fp := 0
	for i := range n {
		if f.MayContain(Hash([]byte("out-" + strconv.Itoa(i)))) {
			fp++
		}
	}
	// Sized for n at 1%: allow twice that.
	if rate := float64(fp) / n; rate > 0.02 {
		t.Errorf("false-positive rate %.4f, want at most 0.02", rate)
	}
	if f.Full() {
		t.Error("full at its design size")
	}
	f.Add(1)
	if !f.Full() {
		t.Error("not full past its design size")
	}
}

// ClickHouse fills filters from its own hashes: sipHash64 of the same
// bytes (values from ClickHouse 18.16 and current releases).
func TestHashIsClickHouseSipHash64(t *testing.T) {
	for s, want := range map[string]uint64{
		"":               2202906307356721367,
		"hello":          10142490492830962361,
		"vn-2025\x00d-1": 16490204912235944413,
	} {
		if got := Hash([]byte(s)); got != want {
			t.Errorf("Hash(%q) = %d, want %d", s, got, want)
		}
	}
}
