package ingest

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/internal/testenv"
)

// validFeedback is a hotline call about burning rubbish, resolved and rated
// before testNow (2026-11-22 09:30 in Ho Chi Minh City).
func validFeedback() FeedbackRecord {
	return FeedbackRecord{
		FeedbackID: "1022-79-000123", AreaCode: "26740", Category: "environment", Channel: "hotline",
		ReceivedAt: "2026-11-20T08:00:00+07:00", DueAt: "2026-11-27T17:00:00+07:00",
		StatusChanges: []FeedbackStatusChange{
			{"received", "2026-11-20T08:00:00+07:00"},
			{"processing", "2026-11-20T10:30:00+07:00"},
			{"resolved", "2026-11-22T09:00:00+07:00"},
		},
		Rating: "satisfied",
	}
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestValidateFeedbackAccepts(t *testing.T) {
	tests := []struct {
		name   string
		change func(*FeedbackRecord)
		check  func(t *testing.T, f Feedback)
	}{
		{"resolved and rated", func(*FeedbackRecord) {}, func(t *testing.T, f Feedback) {
			if f.Hierarchy != "vn-2025" || f.AreaCode != "26740" || f.Recorded != nil {
				t.Errorf("unit: got %s %s (recorded %v), want vn-2025 26740 as sent", f.Hierarchy, f.AreaCode, f.Recorded)
			}
			if got, want := f.ReceivedAt, utc("2026-11-20T01:00:00Z"); !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("received_at: got %v, want %v in UTC", got, want)
			}
			if f.Status != "resolved" {
				t.Errorf("status: got %q, want the latest change's resolved", f.Status)
			}
			if want := utc("2026-11-22T02:00:00Z"); f.ResolvedAt == nil || !f.ResolvedAt.Equal(want) {
				t.Errorf("resolved_at: got %v, want %v", f.ResolvedAt, want)
			}
			if got, want := f.Version, uint64(utc("2026-11-22T02:00:00Z").Unix()); got != want {
				t.Errorf("version: got %d, want %d (the latest change)", got, want)
			}
			if len(f.Changes) != 3 || f.Changes[1].Status != "processing" || !f.Changes[1].At.Equal(utc("2026-11-20T03:30:00Z")) {
				t.Errorf("changes: got %+v, want received, processing at 03:30Z, resolved", f.Changes)
			}
			if f.DueAt == nil || f.Rating != "satisfied" {
				t.Errorf("due_at %v and rating %q: want both kept", f.DueAt, f.Rating)
			}
		}},
		{"just received, defaults", func(f *FeedbackRecord) {
			f.Channel, f.DueAt, f.StatusChanges, f.Rating = "", "", nil, ""
		}, func(t *testing.T, f Feedback) {
			if f.Channel != "hotline" {
				t.Errorf("channel: got %q, want the default hotline", f.Channel)
			}
			if f.Status != "received" || f.ResolvedAt != nil || f.DueAt != nil || f.Rating != "" {
				t.Errorf("got status %q, resolved_at %v, due_at %v, rating %q; want received and nothing else", f.Status, f.ResolvedAt, f.DueAt, f.Rating)
			}
			if got, want := f.Version, uint64(f.ReceivedAt.Unix()); got != want {
				t.Errorf("version: got %d, want received_at's %d", got, want)
			}
		}},
		{"closed after resolved keeps the first resolution", func(f *FeedbackRecord) {
			f.StatusChanges = append(f.StatusChanges, FeedbackStatusChange{"closed", "2026-11-22T09:20:00+07:00"})
		}, func(t *testing.T, f Feedback) {
			if f.Status != "closed" || f.ResolvedAt == nil || !f.ResolvedAt.Equal(utc("2026-11-22T02:00:00Z")) {
				t.Errorf("got status %q resolved_at %v, want closed with resolved_at at the resolution", f.Status, f.ResolvedAt)
			}
		}},
		{"changes in the same second", func(f *FeedbackRecord) {
			f.StatusChanges = []FeedbackStatusChange{{"received", f.ReceivedAt}, {"assigned", f.ReceivedAt}}
		}, func(t *testing.T, f Feedback) {
			if f.Status != "assigned" {
				t.Errorf("status: got %q, want assigned", f.Status)
			}
		}},
		{"procedure complaint names its dossier", func(f *FeedbackRecord) {
			f.Category, f.Channel, f.DossierID = "procedure", "portal", "000.00.79.H29-251120-0007"
		}, func(t *testing.T, f Feedback) {
			if f.DossierID != "000.00.79.H29-251120-0007" || f.Channel != "portal" {
				t.Errorf("got dossier_id %q channel %q, want them kept", f.DossierID, f.Channel)
			}
		}},
		{"old unit placed in today's", func(f *FeedbackRecord) {
			f.Hierarchy, f.AreaCode = "vn-2024", "26734" // Tân Định went whole into 26737
		}, func(t *testing.T, f Feedback) {
			if f.Hierarchy != "vn-2025" || f.AreaCode != "26737" || f.Approximate ||
				f.Recorded == nil || *f.Recorded != (Placement{"vn-2024", "26734"}) {
				t.Errorf("got %s %s approximate %v recorded %v, want vn-2025 26737 exactly, recorded as vn-2024 26734",
					f.Hierarchy, f.AreaCode, f.Approximate, f.Recorded)
			}
		}},
		{"up to the future limit", func(f *FeedbackRecord) {
			f.StatusChanges = append(f.StatusChanges, FeedbackStatusChange{"closed", "2026-11-22T09:34:59+07:00"})
		}, func(*testing.T, Feedback) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validFeedback()
			tt.change(&r)
			f, err := testRules.ValidateFeedback(r, testNow)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			tt.check(t, f)
		})
	}
}

func TestValidateFeedbackRejects(t *testing.T) {
	at := func(i int, s string) func(*FeedbackRecord) {
		return func(f *FeedbackRecord) { f.StatusChanges[i].At = s }
	}
	tests := []struct {
		name   string
		change func(*FeedbackRecord)
		want   string
	}{
		{"no id", func(f *FeedbackRecord) { f.FeedbackID = "" }, "feedback_id is required"},
		{"blank area", func(f *FeedbackRecord) { f.AreaCode = " " }, "area_code is required"},
		{"no category", func(f *FeedbackRecord) { f.Category = "" }, "category is required"},
		{"no received_at", func(f *FeedbackRecord) { f.ReceivedAt = "" }, "received_at is required"},
		{"long id", func(f *FeedbackRecord) { f.FeedbackID = strings.Repeat("x", 129) }, "feedback_id is 129 bytes long; the limit is 128"},
		{"bad dossier_id", func(f *FeedbackRecord) { f.DossierID = "\xff" }, "dossier_id is not valid UTF-8"},
		{"unknown category", func(f *FeedbackRecord) { f.Category = "noise" },
			`category "noise" is not one of procedure, environment, traffic, urban_order, security, utilities, health, education, other`},
		{"unknown channel", func(f *FeedbackRecord) { f.Channel = "fax" },
			`channel "fax" is not one of hotline, portal, app, email, in_person (or leave it out for hotline)`},
		{"unknown rating", func(f *FeedbackRecord) { f.Rating = "5 stars" }, `rating "5 stars" is not one of satisfied, dissatisfied`},
		{"unknown hierarchy", func(f *FeedbackRecord) { f.Hierarchy = "vn-1999" }, `hierarchy "vn-1999" is unknown; leave it out to use vn-2025`},
		{"old code under today's hierarchy", func(f *FeedbackRecord) { f.AreaCode = "26734" }, `area_code "26734" is not a unit of vn-2025`},
		{"received_at without offset", func(f *FeedbackRecord) { f.ReceivedAt = "2026-11-20T08:00:00" },
			`received_at "2026-11-20T08:00:00" is not an RFC 3339 time with offset`},
		{"received_at ahead", func(f *FeedbackRecord) { f.ReceivedAt = "2026-11-22T09:36:00+07:00" },
			"received_at 2026-11-22T09:36:00+07:00 is 6m0s in the future; the limit is 5m0s"},
		{"due_at malformed", func(f *FeedbackRecord) { f.DueAt = "next week" }, `due_at "next week" is not an RFC 3339 time`},
		{"due_at out of range", func(f *FeedbackRecord) { f.DueAt = "2200-01-01T00:00:00Z" }, "due_at 2200-01-01T00:00:00Z is out of range"},
		{"due before received", func(f *FeedbackRecord) { f.DueAt = "2026-11-19T17:00:00+07:00" },
			"due_at 2026-11-19T17:00:00+07:00 is before received_at 2026-11-20T08:00:00+07:00"},
		{"change without status", func(f *FeedbackRecord) { f.StatusChanges[1].Status = "" }, "status_changes[1].status is required"},
		{"change without time", at(2, ""), "status_changes[2].at is required"},
		{"unknown status", func(f *FeedbackRecord) { f.StatusChanges[2].Status = "done" },
			`status_changes[2].status "done" is not one of received, assigned, processing, resolved, closed`},
		{"change time malformed", at(1, "20/11/2026 10:30"), `status_changes[1].at "20/11/2026 10:30" is not an RFC 3339 time`},
		{"change ahead", at(2, "2026-11-22T09:40:00+07:00"), "status_changes[2].at 2026-11-22T09:40:00+07:00 is 10m0s in the future"},
		{"change before received", at(0, "2026-11-20T07:59:59+07:00"),
			"status_changes[0].at 2026-11-20T07:59:59+07:00 is before received_at 2026-11-20T08:00:00+07:00"},
		{"changes out of order", at(2, "2026-11-20T10:00:00+07:00"),
			"status_changes[2].at 2026-11-20T10:00:00+07:00 is before the change before it (2026-11-20T10:30:00+07:00); list status_changes in time order"},
		{"too many changes", func(f *FeedbackRecord) {
			f.StatusChanges = slices.Repeat([]FeedbackStatusChange{{"processing", f.ReceivedAt}}, 65)
		}, "status_changes holds 65 changes; the limit is 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validFeedback()
			tt.change(&r)
			_, err := testRules.ValidateFeedback(r, testNow)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// The sample in testdata is what the README points senders at: every record
// in it must pass.
func TestFeedbackSampleIsValid(t *testing.T) {
	b, err := os.ReadFile("testdata/feedback.json")
	if err != nil {
		t.Fatal(err)
	}
	recs, errs, err := decodeRecords[FeedbackRecord](b, false)
	if err != nil || len(errs) > 0 {
		t.Fatalf("decode: got %v %v, want the sample to decode", err, errs)
	}
	if len(recs) != 3 {
		t.Fatalf("got %d records, want 3", len(recs))
	}
	// The sample's times are in early November 2026; validate it as of the 22nd.
	now := testNow
	for _, r := range recs {
		if _, err := testRules.ValidateFeedback(r.value, now); err != nil {
			t.Errorf("record %d (%s): %v", r.index, r.value.FeedbackID, err)
		}
	}
}

// FuzzDecodeFeedback checks that no body makes the decoder panic, and that
// every record is accounted for exactly once: decoded or refused by index.
func FuzzDecodeFeedback(f *testing.F) {
	f.Add([]byte(`[{"feedback_id":"a","status_changes":[{"status":"received","at":"2026-11-20T08:00:00+07:00"}]}]`), false)
	f.Add([]byte("{\"feedback_id\":\"a\"}\n{\"feedback_id\":\"b\",\"rating\":\"satisfied\"}\n"), true)
	f.Add([]byte(`[1,"x",{"status_changes":"resolved"},{"status_changes":[7]},null]`), false)
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		checkAccounted(t, body, ndjson, decodeRecords[FeedbackRecord])
		checkStreamed[FeedbackRecord](t, body, ndjson)
	})
}

// storedFeedback is a row of feedback FINAL.
type storedFeedback struct {
	Status     string
	ResolvedAt *time.Time
	Rating     string
	Changes    []string
	Version    uint64
}

func readFeedback(t *testing.T, store *chstore.Store, id string) []storedFeedback {
	t.Helper()
	rows, err := store.Conn().Query(context.Background(), `SELECT toString(status), resolved_at, toString(rating), change_status, version
		FROM `+store.Database()+`.feedback FINAL WHERE feedback_id = ?`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedFeedback
	for rows.Next() {
		var s storedFeedback
		if err := rows.Scan(&s.Status, &s.ResolvedAt, &s.Rating, &s.Changes, &s.Version); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// A resent item replaces the stored one through the pipeline and the
// batch writer: one row, the latest state, never a duplicate.
func TestFeedbackResendReplacesTheStoredState(t *testing.T) {
	store := testenv.Store(t)
	w, err := NewFeedbackWriter(BatchConfig{MaxAge: 10 * time.Millisecond}, WriterDeps{Store: store, Leases: lease.NewLocal(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	svc := NewPipeline(PipelineConfig{}, testRules, Writers{Feedback: w}, nil, prometheus.NewRegistry())

	// The rules take testNow as "now" only in Validate; the pipeline uses the
	// wall clock, so the records are stamped relative to it.
	base := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	ts := func(d time.Duration) string { return base.Add(d).Format(time.RFC3339) }
	record := func(id string, statuses []string, rating string) string {
		r := FeedbackRecord{FeedbackID: id, AreaCode: "26740", Category: "environment", ReceivedAt: ts(0), DueAt: ts(120 * time.Hour), Rating: rating}
		for i, s := range statuses {
			r.StatusChanges = append(r.StatusChanges, FeedbackStatusChange{s, ts(time.Duration(i) * time.Hour)})
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	post := func(body string, wantAccepted int) {
		t.Helper()
		r, err := svc.Feedback(context.Background(), strings.NewReader(body), true)
		if err != nil || r.Accepted != wantAccepted || r.Duplicates != 0 || r.Rejected != 0 {
			t.Fatalf("got %v %+v, want %d accepted, no duplicates or rejections", err, r, wantAccepted)
		}
	}
	resolvedAt := base.Add(2 * time.Hour)
	received := storedFeedback{Status: "received", Changes: []string{"received"}, Version: uint64(base.Unix())}
	resolved := func(rating string) storedFeedback {
		return storedFeedback{Status: "resolved", ResolvedAt: &resolvedAt, Rating: rating,
			Changes: []string{"received", "processing", "resolved"}, Version: uint64(resolvedAt.Unix())}
	}
	// Each step posts one body and checks the item's row after it.
	steps := []struct {
		name string
		id   string
		body []string // NDJSON lines
		want storedFeedback
	}{
		{"received", "fb-1", []string{record("fb-1", []string{"received"}, "")}, received},
		{"resolved and rated", "fb-1", []string{record("fb-1", []string{"received", "processing", "resolved"}, "satisfied")}, resolved("satisfied")},
		// An older state arriving late does not undo the newer one.
		{"stale resend", "fb-1", []string{record("fb-1", []string{"received", "processing"}, "")}, resolved("satisfied")},
		// Same changes, same version: the later insert wins.
		{"rating changed", "fb-1", []string{record("fb-1", []string{"received", "processing", "resolved"}, "dissatisfied")}, resolved("dissatisfied")},
		{"same state again", "fb-1", []string{record("fb-1", []string{"received", "processing", "resolved"}, "dissatisfied")}, resolved("dissatisfied")},
		// Several states of one item in one batch: the latest is stored.
		{"states in one body", "fb-2", []string{
			record("fb-2", []string{"received", "processing"}, ""),
			record("fb-2", []string{"received", "processing", "resolved"}, "satisfied"),
			record("fb-2", []string{"received"}, ""),
		}, resolved("satisfied")},
	}
	for _, st := range steps {
		post(strings.Join(st.body, "\n"), len(st.body))
		got := readFeedback(t, store, st.id)
		if len(got) != 1 {
			t.Fatalf("%s: got %d rows of %s in feedback FINAL, want 1", st.name, len(got), st.id)
		}
		g := got[0]
		sameResolved := (g.ResolvedAt == nil) == (st.want.ResolvedAt == nil) &&
			(g.ResolvedAt == nil || g.ResolvedAt.Equal(*st.want.ResolvedAt))
		if g.Status != st.want.Status || g.Rating != st.want.Rating || g.Version != st.want.Version ||
			!slices.Equal(g.Changes, st.want.Changes) || !sameResolved {
			t.Errorf("%s: got %+v (resolved_at %v), want %+v (resolved_at %v)", st.name, g, g.ResolvedAt, st.want, st.want.ResolvedAt)
		}
	}
	// Merging keeps the same rows as FINAL does. OPTIMIZE does nothing,
	// silently, while a background merge holds some of the parts: retry.
	var n uint64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err := store.Conn().Exec(context.Background(), "OPTIMIZE TABLE "+store.Database()+".feedback FINAL"); err != nil {
			t.Fatal(err)
		}
		if err := store.Conn().QueryRow(context.Background(), "SELECT count() FROM "+store.Database()+".feedback").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n <= 2 || time.Now().After(deadline) {
			break
		}
	}
	if n != 2 {
		t.Errorf("after merging: got %d rows, want 2 (one per item)", n)
	}
	if got := readFeedback(t, store, "fb-1"); len(got) != 1 || got[0].Rating != "dissatisfied" {
		t.Errorf("after merging: got %+v, want fb-1 with the last rating, dissatisfied", got)
	}
	if got := testutil.ToFloat64(svc.records.WithLabelValues("feedback", "accepted")); got != 8 {
		t.Errorf("got ioc_ingest_records_total{kind=feedback,outcome=accepted} %v, want 8", got)
	}
	if got := testutil.ToFloat64(svc.records.WithLabelValues("feedback", "duplicate")); got != 0 {
		t.Errorf("got ioc_ingest_records_total{kind=feedback,outcome=duplicate} %v, want 0", got)
	}
}
