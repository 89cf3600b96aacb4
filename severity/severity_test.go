package severity

import "testing"

func TestRankOrdersTheScale(t *testing.T) {
	if !(Rank(Info) < Rank(Warning) && Rank(Warning) < Rank(Critical)) {
		t.Errorf("ranks info %d, warning %d, critical %d: want mildest lowest", Rank(Info), Rank(Warning), Rank(Critical))
	}
	for _, s := range []string{"", "Critical", "fatal"} {
		if Known(s) || Rank(s) != -1 {
			t.Errorf("%q: known %v, rank %d; want unknown, -1", s, Known(s), Rank(s))
		}
	}
}
