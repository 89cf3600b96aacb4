package ingest

import (
	"container/heap"
	"slices"
)

// refusals keeps the refused records of a request with the lowest
// indexes, up to max of them, and counts every one: a body of a million bad
// records costs no more than the errors its answer lists.
type refusals struct {
	max   int // 0: keep all
	kept  byIndexDesc
	total int
}

func (r *refusals) add(e RecordError) {
	r.total++
	if r.max <= 0 || len(r.kept) < r.max {
		heap.Push(&r.kept, e)
		return
	}
	if e.Index < r.kept[0].Index {
		r.kept[0] = e
		heap.Fix(&r.kept, 0)
	}
}

// list is the kept refusals by index.
func (r *refusals) list() []RecordError {
	out := slices.Clone([]RecordError(r.kept))
	slices.SortStableFunc(out, func(a, b RecordError) int { return a.Index - b.Index })
	return out
}

// omitted counts the refusals counted but not kept.
func (r *refusals) omitted() int { return r.total - len(r.kept) }

// byIndexDesc is a heap whose top is the highest index.
type byIndexDesc []RecordError

func (h byIndexDesc) Len() int           { return len(h) }
func (h byIndexDesc) Less(i, j int) bool { return h[i].Index > h[j].Index }
func (h byIndexDesc) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *byIndexDesc) Push(x any)        { *h = append(*h, x.(RecordError)) }
func (h *byIndexDesc) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
