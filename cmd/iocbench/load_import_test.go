package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/openioc/ioc/ingest"
)

// Every line the import load sends is the wire form of the event the
// direct load stores: the same record once validated.
func TestWireLinesAreTheStoredEvents(t *testing.T) {
	u := testUniverse(t)
	src := rand.NewPCG(0, 0)
	r := rand.New(src)
	checked := 0
	for idx := int64(0); idx < 300; idx++ {
		p := u.newPlan(src, r, idx, int(idx%700), nil)
		p.materialize()
		for i := range p.events {
			line := appendWire(nil, item{p: &p, i: int32(i)})
			if !bytes.HasSuffix(line, []byte("}\n")) || bytes.Count(line, []byte("\n")) != 1 {
				t.Fatalf("not one NDJSON line: %q", line)
			}
			var w ingest.DossierEvent
			dec := json.NewDecoder(bytes.NewReader(line))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&w); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			want := p.row(i)
			if w.EventID != want.EventID || w.DossierID != want.DossierID || w.AreaCode != want.AreaCode ||
				w.Status != want.Status || w.Channel != want.Channel || w.ProcedureCode != want.ProcedureCode ||
				w.Sector != want.Sector || w.OnlineLevel != want.OnlineLevel || w.Digitized != want.Digitized ||
				w.EResult != want.EResult || w.PaidOnline != want.PaidOnline || w.ReusedData != want.ReusedData ||
				w.FeeRequired != want.FeeRequired {
				t.Fatalf("line %s\ndecodes to %+v\nwant %+v", line, w, want)
			}
			at, err := time.Parse(time.RFC3339, w.OccurredAt)
			if err != nil || !at.Equal(want.OccurredAt) {
				t.Fatalf("occurred_at %q, want %v", w.OccurredAt, want.OccurredAt)
			}
			if (w.DueAt == "") != (want.DueAt == nil) || (w.ReceivedAt == "") != (want.ReceivedAt == nil) {
				t.Fatalf("line %s: due_at/received_at presence differs from %+v", line, want)
			}
			checked++
		}
	}
	if checked < 600 {
		t.Fatalf("checked %d events only", checked)
	}
}
