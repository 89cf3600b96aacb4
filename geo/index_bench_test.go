package geo

import (
	"math/rand/v2"
	"runtime"
	"testing"
)

// BenchmarkLocate looks up the same uniform random points in Vietnam's
// bounds among the vn-2025 communes, with the index and with the naive
// scan; scripts/bench.sh prints the ratio of their rates.
func BenchmarkLocate(b *testing.B) {
	shapes := communes(b)
	pts := randomPoints(rand.New(rand.NewPCG(1, 1)), 1<<16, vnBounds)
	ix := NewIndex(shapes)
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	}
	b.Run("index", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			ix.Locate(pts[i&(len(pts)-1)])
			i++
		}
		report(b)
	})
	b.Run("naive", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			locateNaive(shapes, pts[i&(len(pts)-1)])
			i++
		}
		report(b)
	})
}

// BenchmarkBuildIndex also reports the heap the commune index holds.
func BenchmarkBuildIndex(b *testing.B) {
	shapes := communes(b)
	var ix *Index
	for b.Loop() {
		ix = NewIndex(shapes)
	}
	b.StopTimer()
	var before, after runtime.MemStats
	ix = nil
	runtime.GC()
	runtime.ReadMemStats(&before)
	ix = NewIndex(shapes)
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MB")
	runtime.KeepAlive(ix)
}
