//go:build faultcontrol

package ingest

// checkDuplicates is off in the build of the fault suite's negative
// control: every record is stored as new, as a writer without a duplicate
// check would, so that the suite shows it catches the double counts.
const checkDuplicates = false
