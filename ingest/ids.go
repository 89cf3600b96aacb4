package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// maxIDLen bounds every identifier a record carries (event, camera,
// sensor ids), in bytes.
const maxIDLen = 128

// boundedID keeps a derived event id within the id limit: a longer one
// keeps its start, readable, and ends in a hash of the whole, still unique.
func boundedID(id string) string {
	if len(id) <= maxIDLen && utf8.ValidString(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	tail := "~" + hex.EncodeToString(sum[:16])
	head := strings.ToValidUTF8(id, "")
	n := min(len(head), maxIDLen-len(tail))
	for n > 0 && n < len(head) && !utf8.RuneStart(head[n]) {
		n--
	}
	return head[:n] + tail
}
