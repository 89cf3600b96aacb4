package report

import (
	"context"
	"testing"

	"github.com/openioc/ioc/aggregate"
)

// TestFiguresDoNotHangOnTheSourceText: what an indicator's figures are read
// from is what it names, typed, in the catalog, not the words of its
// source text; the same indicator with that text reworded gives the same
// figures.
func TestFiguresDoNotHangOnTheSourceText(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	codes := f.e.h.Subtree("79")
	for _, id := range []string{"on_time_rate", "on_time_open_rate", "feedback_received", "procedure_satisfaction_rate", "records_approximate"} {
		d, ok := aggregate.Lookup(id)
		if !ok {
			t.Fatalf("no indicator %s", id)
		}
		reworded := d
		reworded.Source = "hồ sơ thủ tục hành chính (" + d.Source + ")"
		for _, r := range []Range{october(), {october().From, october().To.AddDate(0, 0, -3)}} {
			want, err := f.e.stepCounts(ctx, d, codes, r, Month)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.e.stepCounts(ctx, reworded, codes, r, Month)
			if err != nil {
				t.Fatal(err)
			}
			step := r.From.Unix()
			w, _ := d.Parts(want[step])
			g, _ := d.Parts(got[step])
			if describe(valueOf(g)) != describe(valueOf(w)) || w.Value == nil {
				t.Errorf("%s over %s..%s with its source text reworded: %v, want %v", id, r.From, r.To, describe(valueOf(g)), describe(valueOf(w)))
			}
		}
	}
}

func describe(v Value) [3]any { return [3]any{val(v.Value), val(v.Numerator), val(v.Denominator)} }
