package rollup

import (
	"math"

	"github.com/openioc/ioc/dossier"
)

// Sums are what the rows of one cell add up to, as read: signed sums of
// the rollups (a correction is a negative row, so nothing is clamped here;
// the figures do that), the readings' maxima, and citizen feedback.
type Sums struct {
	// Flow is the dossier measures, balances included: over a range, the
	// change of the open and late-open balances in it.
	Flow dossier.Measures
	// Cameras counts camera events by type and severity.
	Cameras map[CameraKey]int64
	// PM25 and WaterLevel are the readings of the kinds the figures show.
	PM25, WaterLevel Readings
	Feedback         Feedback
}

// CameraKey is the type and severity of camera events.
type CameraKey struct{ Type, Severity string }

// Readings are sensor readings of one kind: their count and sum from the
// summing rollup, their maximum from the maxima's.
type Readings struct {
	Sum    float64
	N      int64
	Max    float64
	HasMax bool // a maximum was read: readings counted before their maximum have none
}

// Feedback counts citizen feedback: items received in the cell, items
// resolved in it (on time, rated, rated satisfied), and the dossiers
// complained about among those received.
type Feedback struct {
	Received, Resolved, OnTime, Rated, Satisfied, Complaints uint64
}

// readingKinds are the sensor kinds the figures show, and where they go.
var readingKinds = map[string]func(*Sums) *Readings{
	"pm25":        func(s *Sums) *Readings { return &s.PM25 },
	"water_level": func(s *Sums) *Readings { return &s.WaterLevel },
}

// Add sums o into s.
func (s *Sums) Add(o *Sums) {
	if o == nil {
		return
	}
	s.Flow.Add(o.Flow)
	for k, n := range o.Cameras {
		if s.Cameras == nil {
			s.Cameras = map[CameraKey]int64{}
		}
		s.Cameras[k] += n
	}
	s.PM25.add(o.PM25)
	s.WaterLevel.add(o.WaterLevel)
	f := &s.Feedback
	f.Received, f.Resolved, f.OnTime = f.Received+o.Feedback.Received, f.Resolved+o.Feedback.Resolved, f.OnTime+o.Feedback.OnTime
	f.Rated, f.Satisfied, f.Complaints = f.Rated+o.Feedback.Rated, f.Satisfied+o.Feedback.Satisfied, f.Complaints+o.Feedback.Complaints
}

func (r *Readings) add(o Readings) {
	r.Sum += o.Sum
	r.N += o.N
	if o.HasMax && (!r.HasMax || o.Max > r.Max) {
		r.Max, r.HasMax = o.Max, true
	}
}

// Equal says whether two cells' sums are the same, floating-point sums
// within rounding (ClickHouse and this process add in different orders).
// Nil is all zero.
func (s *Sums) Equal(o *Sums) bool {
	var zero Sums
	if s == nil {
		s = &zero
	}
	if o == nil {
		o = &zero
	}
	if s.Flow != o.Flow || s.Feedback != o.Feedback || !s.PM25.equal(o.PM25) || !s.WaterLevel.equal(o.WaterLevel) {
		return false
	}
	for k, n := range s.Cameras {
		if o.Cameras[k] != n {
			return false
		}
	}
	for k, n := range o.Cameras {
		if s.Cameras[k] != n {
			return false
		}
	}
	return true
}

func (r Readings) equal(o Readings) bool {
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(a), math.Abs(b)) }
	return r.N == o.N && close(r.Sum, o.Sum) && r.HasMax == o.HasMax && (!r.HasMax || r.Max == o.Max)
}
