//go:build !faultcontrol

package ingest

// checkDuplicates says whether a writer compares each record with what is
// stored. Only the fault suite's negative control turns it off (build tag
// faultcontrol), to show that its checks fail without it.
const checkDuplicates = true
