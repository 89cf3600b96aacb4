package aggregate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
)

// Map deltas. A province's map carries every commune (168 for 79), and a
// record changes one: resending all of them to every screen for each
// change is most of what the live topics would carry. So a map/ message
// that follows another of the same topic in the same term carries, besides
// the whole snapshot (its Payload, which the bus keeps for new
// subscribers), a delta against that message (its Base): the snapshot with
// only the children whose entry changed. The publisher finds them by
// comparing each child's encoded entry with the one it sent last
// (appendChangedChildren), without parsing either.

// ApplyMapDelta applies delta, the Delta of a map/ message, to snapshot,
// the payload of the topic's message whose version is the delta's Base,
// and returns the message's whole snapshot (with its fields in another
// order). It is the merge rule of map deltas, which screens apply to the
// snapshot of version Base they hold, as the hub's live protocol states:
//
//   - every top-level field of the delta except "children" replaces the
//     held one (as_of, …);
//   - each entry of the delta's "children", an object keyed by child
//     code, replaces the held child of that code whole (name and kpis);
//   - children not in the delta keep their held value.
//
// A delta cannot remove a child or a field: a unit's children do not
// change within a hierarchy. Both arguments must be JSON objects, and
// their children objects (or null in the snapshot: none held).
func ApplyMapDelta(snapshot, delta []byte) ([]byte, error) {
	held, err := object(snapshot)
	if err != nil {
		return nil, fmt.Errorf("apply map delta: snapshot: %w", err)
	}
	d, err := object(delta)
	if err != nil {
		return nil, fmt.Errorf("apply map delta: delta: %w", err)
	}
	for k, v := range d {
		if k != "children" {
			held[k] = v
		}
	}
	raw, ok := d["children"]
	if !ok {
		return json.Marshal(held)
	}
	changed, err := object(raw)
	if err != nil {
		return nil, fmt.Errorf("apply map delta: delta's children: %w", err)
	}
	kids := map[string]json.RawMessage{}
	if raw, ok := held["children"]; ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		if kids, err = object(raw); err != nil {
			return nil, fmt.Errorf("apply map delta: snapshot's children: %w", err)
		}
	}
	if len(changed) == 0 {
		return json.Marshal(held)
	}
	maps.Copy(kids, changed)
	if held["children"], err = json.Marshal(kids); err != nil {
		return nil, fmt.Errorf("apply map delta: encode children: %w", err)
	}
	return json.Marshal(held)
}

var errNotObject = errors.New("not a JSON object")

// object decodes a JSON object's fields, leaving their values encoded.
func object(b []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m == nil { // null
		return nil, errNotObject
	}
	return m, nil
}

// appendChangedChildren appends a children object holding the entries of
// cur that differ from those of old: both children objects as
// appendChildren wrote them for the same children, with the ends it gave.
// It says false, having appended nothing, when they are not alike (other
// children, or ends that do not fit), and no delta can be made.
func appendChangedChildren(b, old []byte, oldEnds []int, cur []byte, curEnds []int) ([]byte, bool) {
	n := len(curEnds)
	if n == 0 || len(oldEnds) != n || len(old) != oldEnds[n-1]+1 || len(cur) != curEnds[n-1]+1 {
		return b, false
	}
	start := len(b)
	b = append(b, '{')
	oFrom, cFrom := 1, 1 // past '{', then past each ','
	for i := range n {
		oTo, cTo := oldEnds[i], curEnds[i]
		if oTo < oFrom || cTo < cFrom {
			return b[:start], false
		}
		if entry := cur[cFrom:cTo]; !bytes.Equal(old[oFrom:oTo], entry) {
			if len(b) > start+1 {
				b = append(b, ',')
			}
			b = append(b, entry...)
		}
		oFrom, cFrom = oTo+1, cTo+1
	}
	return append(b, '}'), true
}
