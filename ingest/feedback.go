package ingest

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// FeedbackRecord is one item of citizen feedback (a 1022 hotline call, a
// portal complaint) as sent on the wire (POST /api/v1/ingest/feedback): the
// item's whole state as known now. Sending the same feedback_id again with
// more status changes or a rating replaces the earlier state. Times are RFC
// 3339 strings with an offset.
type FeedbackRecord struct {
	FeedbackID    string                 `json:"feedback_id"`
	AreaCode      string                 `json:"area_code"`
	Hierarchy     string                 `json:"hierarchy,omitempty"`
	Category      string                 `json:"category"`
	Channel       string                 `json:"channel,omitempty"`
	DossierID     string                 `json:"dossier_id,omitempty"`
	ReceivedAt    string                 `json:"received_at"`
	DueAt         string                 `json:"due_at,omitempty"`
	StatusChanges []FeedbackStatusChange `json:"status_changes,omitempty"`
	Rating        string                 `json:"rating,omitempty"`
}

// FeedbackStatusChange is one step of a feedback item, as sent.
type FeedbackStatusChange struct {
	Status string `json:"status"`
	At     string `json:"at"`
}

// Values the feedback wire contract allows.
var (
	FeedbackCategories = []string{"procedure", "environment", "traffic", "urban_order", "security", "utilities", "health", "education", "other"}
	FeedbackChannels   = []string{"hotline", "portal", "app", "email", "in_person"}
	FeedbackStatuses   = []string{"received", "assigned", "processing", "resolved", "closed"}
	FeedbackRatings    = []string{"satisfied", "dissatisfied"}
)

const (
	defaultFeedbackChannel = "hotline"
	// maxFeedbackChanges bounds one item's history; a real one has a handful.
	maxFeedbackChanges = 64
)

// Feedback is a validated feedback item, ready to store.
type Feedback struct {
	FeedbackID string
	Hierarchy  string
	AreaCode   string
	Category   string
	Channel    string
	DossierID  string
	ReceivedAt time.Time // UTC, whole seconds
	DueAt      *time.Time
	// Status is the latest status: that of the last change, received when
	// there is none.
	Status string
	// ResolvedAt is the first change to resolved or closed.
	ResolvedAt *time.Time
	Rating     string
	Changes    []FeedbackChange // in time order
	// Version orders the states of one item: the unix time of the latest
	// change, or of received_at when there is none.
	Version uint64
	// Recorded is the unit as sent when it belongs to an older hierarchy
	// and was placed in the current one; Approximate says the crosswalk
	// could only guess. The item is stored under the current unit only.
	Recorded    *Placement
	Approximate bool
}

// FeedbackChange is a validated status change.
type FeedbackChange struct {
	Status string
	At     time.Time // UTC, whole seconds
}

// ValidateFeedback checks f and returns the item to store, or an
// *InvalidError listing every problem, each saying what is wrong and how to
// fix it.
func (r Rules) ValidateFeedback(f FeedbackRecord, now time.Time) (Feedback, error) {
	fb := Feedback{FeedbackID: f.FeedbackID, Hierarchy: f.Hierarchy, AreaCode: f.AreaCode, Category: f.Category,
		Channel: f.Channel, DossierID: f.DossierID, Rating: f.Rating}
	var p problems
	p.require(map[string]string{"feedback_id": f.FeedbackID, "area_code": f.AreaCode, "category": f.Category, "received_at": f.ReceivedAt},
		"feedback_id", "area_code", "category", "received_at")
	p.checkIDs(map[string]string{"feedback_id": f.FeedbackID, "dossier_id": f.DossierID, "area_code": f.AreaCode, "hierarchy": f.Hierarchy},
		"feedback_id", "dossier_id", "area_code", "hierarchy")
	if p.ok("category") && !slices.Contains(FeedbackCategories, f.Category) {
		p.fail("category", "category %q is not one of %s", f.Category, strings.Join(FeedbackCategories, ", "))
	}
	if fb.Channel == "" {
		fb.Channel = defaultFeedbackChannel
	}
	if !slices.Contains(FeedbackChannels, fb.Channel) {
		p.fail("channel", "channel %q is not one of %s (or leave it out for %s)", f.Channel, strings.Join(FeedbackChannels, ", "), defaultFeedbackChannel)
	}
	if f.Rating != "" && !slices.Contains(FeedbackRatings, f.Rating) {
		p.fail("rating", "rating %q is not one of %s (or leave it out while the citizen has not rated)", f.Rating, strings.Join(FeedbackRatings, ", "))
	}
	if p.ok("area_code", "hierarchy") {
		if h, err := r.checkUnit(fb.Hierarchy, fb.AreaCode); err != nil {
			p.fail("area_code", "%v", err)
		} else {
			placed, recorded, approximate, err := r.placeUnit(h, fb.AreaCode, nil)
			if err != nil {
				p.fail("area_code", "%v", err)
			}
			fb.Hierarchy, fb.AreaCode, fb.Recorded, fb.Approximate = placed.Hierarchy, placed.AreaCode, recorded, approximate
		}
	}
	if p.ok("received_at") {
		t, err := r.eventTime("received_at", f.ReceivedAt, now)
		if err != nil {
			p.fail("received_at", "%v", err)
		}
		fb.ReceivedAt = t
	}
	// due_at lies ahead by nature: only its form and range are checked.
	if f.DueAt != "" {
		t, err := parseTime("due_at", f.DueAt)
		switch {
		case err != nil:
			p.fail("due_at", "%v", err)
		case p.ok("received_at") && t.Before(fb.ReceivedAt):
			p.fail("due_at", "due_at %s is before received_at %s; send the deadline the item must be resolved by", f.DueAt, f.ReceivedAt)
		default:
			fb.DueAt = &t
		}
	}
	if n := len(f.StatusChanges); n > maxFeedbackChanges {
		p.fail("status_changes", "status_changes holds %d changes; the limit is %d", n, maxFeedbackChanges)
		return fb, p.err()
	}
	fb.Status = "received"
	last, lastOK := fb.ReceivedAt, p.ok("received_at")
	for i, c := range f.StatusChanges {
		field := fmt.Sprintf("status_changes[%d]", i)
		var cp problems
		cp.require(map[string]string{field + ".status": c.Status, field + ".at": c.At}, field+".status", field+".at")
		if cp.ok(field+".status") && !slices.Contains(FeedbackStatuses, c.Status) {
			cp.fail(field+".status", "%s.status %q is not one of %s", field, c.Status, strings.Join(FeedbackStatuses, ", "))
		}
		var at time.Time
		if cp.ok(field + ".at") {
			t, err := r.eventTime(field+".at", c.At, now)
			switch {
			case err != nil:
				cp.fail(field+".at", "%v", err)
			case p.ok("received_at") && t.Before(fb.ReceivedAt):
				cp.fail(field+".at", "%s.at %s is before received_at %s; nothing happens to an item before it is received", field, c.At, f.ReceivedAt)
			case lastOK && t.Before(last):
				cp.fail(field+".at", "%s.at %s is before the change before it (%s); list status_changes in time order", field, c.At, f.StatusChanges[i-1].At)
			}
			at = t
		}
		// A change whose time is bad cannot order the next one.
		if lastOK = cp.ok(field + ".at"); lastOK {
			last = at
		}
		if err := cp.err(); err != nil {
			p.markBad("status_changes")
			p.addErr(err)
			continue
		}
		fb.Changes = append(fb.Changes, FeedbackChange{Status: c.Status, At: at})
		fb.Status = c.Status
		if fb.ResolvedAt == nil && (c.Status == "resolved" || c.Status == "closed") {
			fb.ResolvedAt = &at
		}
	}
	fb.Version = uint64(last.Unix())
	return fb, p.err()
}
