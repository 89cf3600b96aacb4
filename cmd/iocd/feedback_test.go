package main

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/internal/testenv"
)

// The feedback route needs the ingest right, stores the sample, and takes
// the same items again as replacements rather than duplicates.
func TestFeedbackSampleIsStoredAndResendsReplace(t *testing.T) {
	cfg := testConfig(t)
	n := startNode(t, cfg)
	sample := shiftedFeedbackSample(t)
	var r ingestReply
	viewer := issueTokenAs(t, "analyst", auth.Viewer, "79")
	if code := n.post("/api/v1/ingest/feedback", viewer, "application/json", sample, &r); code != 403 {
		t.Errorf("viewer: got %d, want 403", code)
	}
	for i := range 2 {
		r = ingestReply{}
		if code := n.post("/api/v1/ingest/feedback", adminToken, "application/json", sample, &r); code != 202 ||
			r.Accepted != 3 || r.Rejected != 0 || r.Duplicates != 0 {
			t.Fatalf("post %d: got %d %+v, want 202 with 3 accepted, none rejected or duplicate", i+1, code, r)
		}
	}
	store := testenv.StoreOn(t, cfg.ClickHouse.Database)
	var items uint64
	if err := store.Conn().QueryRow(context.Background(), "SELECT count() FROM "+store.Database()+".feedback FINAL").Scan(&items); err != nil {
		t.Fatal(err)
	}
	if items != 3 {
		t.Errorf("got %d items in feedback FINAL, want 3", items)
	}
	if got := n.metric(`ioc_ingest_records_total{kind="feedback",outcome="accepted"}`); got != 6 {
		t.Errorf("got %v feedback records accepted in /metrics, want 6", got)
	}
}

// shiftedFeedbackSample is the feedback sample moved so that its latest
// change lies a day before now: the server refuses times ahead of its clock.
func shiftedFeedbackSample(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../ingest/testdata/feedback.json")
	if err != nil {
		t.Fatal(err)
	}
	var recs []ingest.FeedbackRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		t.Fatal(err)
	}
	parse := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatalf("sample time %q: %v", s, err)
		}
		return v
	}
	var latest time.Time
	for _, r := range recs {
		for _, c := range r.StatusChanges {
			if at := parse(c.At); at.After(latest) {
				latest = at
			}
		}
	}
	by := time.Now().Add(-24 * time.Hour).Sub(latest).Truncate(time.Second)
	shift := func(s *string) {
		if *s != "" {
			*s = parse(*s).Add(by).In(hcm).Format(time.RFC3339)
		}
	}
	for i := range recs {
		shift(&recs[i].ReceivedAt)
		shift(&recs[i].DueAt)
		for j := range recs[i].StatusChanges {
			shift(&recs[i].StatusChanges[j].At)
		}
	}
	out, err := json.Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
