package main

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/openioc/ioc/dossier"
)

func testUniverse(t testing.TB) *universe {
	t.Helper()
	u, err := newUniverse(1)
	if err != nil {
		t.Fatal(err)
	}
	if len(u.communes) != 3321 || len(u.provinces) != 34 || len(u.procedures) != 40 {
		t.Fatalf("%d communes, %d provinces, %d procedures", len(u.communes), len(u.provinces), len(u.procedures))
	}
	return u
}

// The stored changes of a dossier sum to what its whole history derives,
// and a dossier drawn twice is the same.
func TestPlansAreDeterministicAndDeltasSum(t *testing.T) {
	u := testUniverse(t)
	src := rand.NewPCG(0, 0)
	r := rand.New(src)
	shapes := map[string]int{}
	for idx := int64(0); idx < 20000; idx++ {
		d := int(idx % int64(dataDays))
		p := u.newPlan(src, r, idx, d, nil)
		again := u.newPlan(src, r, idx, d, nil)
		if !reflect.DeepEqual(p, again) {
			t.Fatalf("dossier %d drawn twice differs", idx)
		}
		for i := 1; i < len(p.steps); i++ {
			if !p.steps[i].At.After(p.steps[i-1].At) {
				t.Fatalf("dossier %d: steps out of order: %v", idx, p.steps)
			}
		}
		p.materialize()
		var sum dossier.Measures
		byKey := map[dossier.Key]dossier.Measures{}
		for i := range p.events {
			for _, c := range p.delta(i) {
				m := byKey[c.Key]
				m.Add(c.Measures)
				byKey[c.Key] = m
				sum.Add(c.Measures)
			}
		}
		for _, c := range dossier.Derive(p.events) {
			m := byKey[c.Key]
			if m != c.Measures {
				t.Fatalf("dossier %d: deltas sum to %+v at %v, Derive gives %+v", idx, m, c.T, c.Measures)
			}
			delete(byKey, c.Key)
		}
		for k, m := range byKey {
			if m != (dossier.Measures{}) {
				t.Fatalf("dossier %d: deltas leave %+v at %v", idx, m, k.T)
			}
		}
		last := p.events[len(p.events)-1].Status
		shapes[last]++
	}
	t.Logf("last statuses: %v", shapes)
}

func TestDossiersFor(t *testing.T) {
	u := testUniverse(t)
	for _, events := range []int64{1000, 200000} {
		n := u.dossiersFor(events)
		got := u.countEvents(n)
		if got < events || got > events+events/5000+100 {
			t.Errorf("%d events: %d dossiers store %d", events, n, got)
		}
	}
}

func BenchmarkDelta(b *testing.B) {
	u := testUniverse(b)
	src := rand.NewPCG(0, 0)
	r := rand.New(src)
	var plans []plan
	events := 0
	for idx := int64(0); idx < 1000; idx++ {
		p := u.newPlan(src, r, idx, int(idx%400), nil)
		p.materialize()
		plans = append(plans, p)
		events += len(p.events)
	}
	b.ResetTimer()
	for range b.N {
		for k := range plans {
			p := &plans[k]
			for i := range p.events {
				p.delta(i)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
}
