package report

import "testing"

// TestRelationshipStatisticsMatchAPublishedReference: Anscombe's first
// quartet (Anscombe 1973, "Graphs in Statistical Analysis") has Pearson's
// r 0.816, the line y = 3.00 + 0.500·x, R² 0.67 and Spearman's ρ 0.818.
func TestRelationshipStatisticsMatchAPublishedReference(t *testing.T) {
	x := []float64{10, 8, 13, 9, 11, 14, 6, 4, 12, 7, 5}
	y := []float64{8.04, 6.95, 7.58, 8.81, 8.33, 9.96, 7.24, 4.26, 10.84, 4.82, 5.68}
	near := func(what string, got *float64, want, tol float64) {
		t.Helper()
		if got == nil || *got < want-tol || *got > want+tol {
			t.Errorf("%s: got %v, want %v ± %v", what, val(got), want, tol)
		}
	}
	near("pearson", pearson(x, y), 0.816, 0.001)
	near("spearman", pearson(ranks(x), ranks(y)), 0.818, 0.001)
	l, ok := leastSquares(x, y)
	if !ok {
		t.Fatal("no line")
	}
	near("slope", &l.Slope, 0.5, 0.001)
	near("intercept", &l.Intercept, 3.0, 0.001)
	near("r2", &l.R2, 0.667, 0.001)

	// Ties share the mean of their ranks.
	if got := ranks([]float64{5, 1, 5, 3}); got[0] != 3.5 || got[1] != 1 || got[2] != 3.5 || got[3] != 2 {
		t.Errorf("ranks with a tie: got %v, want [3.5 1 3.5 2]", got)
	}
	// Too few units, or one figure the same everywhere: no statistics
	// rather than a made-up one.
	if pearson([]float64{1, 2}, []float64{3, 4}) != nil || pearson([]float64{1, 2, 3}, []float64{7, 7, 7}) != nil {
		t.Error("a correlation of two units, or of a constant, is not null")
	}
	if _, ok := leastSquares([]float64{2, 2, 2}, []float64{1, 2, 3}); ok {
		t.Error("a line through an x that does not vary")
	}
}
