package ingest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// An entity's problems become one RecordError: its Error every problem
// joined, its problems capped as a record's are.
func TestNGSIEntityErrors(t *testing.T) {
	const aq = `"id":"urn:ngsi-ld:AirQualityObserved:AQ-1","type":"AirQualityObserved","dateObserved":"2026-11-22T02:15:00Z"`
	tests := []struct {
		name string
		body string
		errs []string // "index: substring", in order
	}{
		{"problems of one entity are capped", `{` + aq + `,` + manyUnmapped(30) + `}`,
			append(slices.Repeat([]string{`0: is not mapped to a sensor kind`}, maxProblems), `0: and 10 more problems`)},
		{"every problem of each entity", `[{"id":"urn:ngsi-ld:ParkingSpot:P1","type":"ParkingSpot"},{` + aq + `,"pm25":"NaN","pm10":null}]`, []string{
			`0: entity type "ParkingSpot" is not supported`,
			`1: attribute "pm10" value is null, want a number`,
			`1: attribute "pm25" value is a string ("NaN"), want a JSON number`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs, err := decodeNGSILD([]byte(tt.body))
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			var got []string
			for i, e := range errs {
				if i > 0 && errs[i-1].Index >= e.Index {
					t.Errorf("entity %d has more than one error, or errors are out of order: %v", e.Index, errs)
				}
				if e.Error != strings.Join(e.Problems, "; ") {
					t.Errorf("entity %d: error %q is not its problems %q joined", e.Index, e.Error, e.Problems)
				}
				if len(e.Problems) == 0 || len(e.Problems) > maxProblems+1 {
					t.Errorf("entity %d lists %d problems, want 1 to %d", e.Index, len(e.Problems), maxProblems+1)
				}
				for _, msg := range e.Problems {
					got = append(got, fmt.Sprintf("%d: %s", e.Index, msg))
				}
			}
			if len(got) != len(tt.errs) {
				t.Fatalf("got problems %q, want %d: %q", got, len(tt.errs), tt.errs)
			}
			for i, g := range got {
				idx, msg, _ := strings.Cut(tt.errs[i], ": ")
				if !strings.HasPrefix(g, idx+": ") || !strings.Contains(g, msg) {
					t.Errorf("problem %d: got %s, want %s: …%s…", i, g, idx, msg)
				}
			}
		})
	}
	if _, _, err := decodeNGSILD(nil); err == nil || !strings.Contains(err.Error(), "body cannot be parsed: the body is empty") {
		t.Errorf("empty body: got %v, want the error wrapping ErrUnparseable", err)
	}
}

// manyUnmapped is n attributes no entity type maps, as JSON members.
func manyUnmapped(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"unmapped%02d":1`, i)
	}
	return b.String()
}
