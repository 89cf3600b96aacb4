package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/openioc/ioc/geo"
)

var testRules = func() Rules {
	reg, err := geo.Builtin()
	if err != nil {
		panic(err)
	}
	return Rules{Hierarchy: "vn-2025", Areas: reg, MaxFuture: 5 * time.Minute}
}()

var testNow = time.Date(2026, 11, 22, 2, 30, 0, 0, time.UTC) // 09:30 in Ho Chi Minh City

func validEvent() DossierEvent {
	return DossierEvent{
		EventID: "hcm-000123-4", DossierID: "000.00.79.H29-251122-0001", ProcedureCode: "1.004227",
		Sector: "land", AreaCode: "26740", Channel: "online", Status: "resolved",
		OccurredAt: "2026-11-22T09:15:00+07:00", ReceivedAt: "2026-11-20T08:00:00+07:00",
		DueAt: "2026-11-25T17:00:00+07:00", OnlineLevel: "full", Digitized: true,
	}
}

func TestValidateAccepts(t *testing.T) {
	d, err := testRules.Validate(validEvent(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.OccurredAt, time.Date(2026, 11, 22, 2, 15, 0, 0, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("occurred_at: got %v, want %v in UTC", got, want)
	}
	if d.Hierarchy != "vn-2025" {
		t.Errorf("hierarchy: got %q, want the deployment's vn-2025", d.Hierarchy)
	}
	if d.DueAt == nil || d.ReceivedAt == nil {
		t.Error("due_at and received_at should be kept")
	}
	// Terminal statuses may leave the due date out.
	e := validEvent()
	e.Status, e.DueAt = "withdrawn", ""
	if _, err := testRules.Validate(e, testNow); err != nil {
		t.Errorf("withdrawn without due_at: %v", err)
	}
	// Up to the future limit is fine (clock skew).
	e = validEvent()
	e.OccurredAt = "2026-11-22T09:34:59+07:00"
	if _, err := testRules.Validate(e, testNow); err != nil {
		t.Errorf("4m59s ahead: %v", err)
	}
	// A province-level desk files under the province itself.
	e = validEvent()
	e.AreaCode = "79"
	if _, err := testRules.Validate(e, testNow); err != nil {
		t.Errorf("province-level dossier: %v", err)
	}
}

func TestValidateRejects(t *testing.T) {
	f := func(change func(*DossierEvent), want string) {
		t.Helper()
		e := validEvent()
		change(&e)
		_, err := testRules.Validate(e, testNow)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got error %v, want one containing %q", err, want)
		}
	}
	f(func(e *DossierEvent) { e.EventID = "" }, "event_id is required")
	f(func(e *DossierEvent) { e.DossierID = " " }, "dossier_id is required")
	f(func(e *DossierEvent) { e.AreaCode = "" }, "area_code is required")
	f(func(e *DossierEvent) { e.OccurredAt = "" }, "occurred_at is required")
	f(func(e *DossierEvent) { e.Status = "done" }, `status "done" is not one of received, processing, supplement_requested, resolved, returned, rejected, withdrawn`)
	f(func(e *DossierEvent) { e.Channel = "fax" }, `channel "fax" is not one of online, in_person, postal`)
	f(func(e *DossierEvent) { e.OnlineLevel = "level4" }, `online_level "level4"`)
	f(func(e *DossierEvent) { e.AreaCode = "26734" }, `area_code "26734" is not a unit of vn-2025`)
	f(func(e *DossierEvent) { e.Hierarchy = "vn-1999" }, `hierarchy "vn-1999" is unknown`)
	f(func(e *DossierEvent) { e.Hierarchy, e.AreaCode = "vn-2024", "99999" }, `area_code "99999" is not a unit of vn-2024`)
	f(func(e *DossierEvent) { e.Lat = ptr(10.77) }, "lat and lon go together")
	f(func(e *DossierEvent) { e.Lat, e.Lon = ptr(91), ptr(106.7) }, "lat 91 is out of range")
	f(func(e *DossierEvent) { e.Lat, e.Lon = ptr(10.7), ptr(-181) }, "lon -181 is out of range")
	f(func(e *DossierEvent) { e.OccurredAt = "2026-11-22 09:15:00" }, `occurred_at "2026-11-22 09:15:00" is not an RFC 3339 time with offset`)
	f(func(e *DossierEvent) { e.OccurredAt = "2026-11-22T09:15:00" }, "not an RFC 3339 time with offset")
	f(func(e *DossierEvent) { e.OccurredAt = "2026-11-22T09:36:00+07:00" }, "6m0s in the future; the limit is 5m0s")
	f(func(e *DossierEvent) { e.OccurredAt = "1960-01-01T00:00:00Z" }, "out of range")
	f(func(e *DossierEvent) { e.DueAt = "2200-01-01T00:00:00Z" }, "due_at 2200-01-01T00:00:00Z is out of range")
	f(func(e *DossierEvent) { e.ReceivedAt = "2026-11-23T08:00:00+07:00" }, "received_at 2026-11-23T08:00:00+07:00 is after occurred_at")
	f(func(e *DossierEvent) { e.DueAt = "" }, "due_at is required when status is resolved")
	f(func(e *DossierEvent) { e.Status, e.DueAt = "received", "" }, "due_at is required when status is received")
	f(func(e *DossierEvent) { e.EventID = strings.Repeat("x", 129) }, "event_id is 129 bytes long; the limit is 128")
	f(func(e *DossierEvent) { e.Sector = "\xff" }, "sector is not valid UTF-8")
}

func TestDecodeRecords(t *testing.T) {
	type want struct {
		ok     []int
		errs   map[int]string
		failed string
	}
	f := func(body string, ndjson bool, w want) {
		t.Helper()
		recs, errs, err := decodeRecords[DossierEvent]([]byte(body), ndjson)
		if w.failed != "" {
			if err == nil || !strings.Contains(err.Error(), w.failed) {
				t.Errorf("%q: got error %v, want %q", body, err, w.failed)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		var got []int
		for _, r := range recs {
			got = append(got, r.index)
		}
		if len(got) != len(w.ok) {
			t.Errorf("%q: decoded indexes %v, want %v", body, got, w.ok)
		}
		for i := range min(len(got), len(w.ok)) {
			if got[i] != w.ok[i] {
				t.Errorf("%q: decoded indexes %v, want %v", body, got, w.ok)
				break
			}
		}
		if len(errs) != len(w.errs) {
			t.Errorf("%q: got errors %v, want %v", body, errs, w.errs)
		}
		for _, e := range errs {
			if !strings.Contains(e.Error, w.errs[e.Index]) || w.errs[e.Index] == "" {
				t.Errorf("%q: error at %d is %q, want it to contain %q", body, e.Index, e.Error, w.errs[e.Index])
			}
		}
	}
	f(`[{"event_id":"a"},{"event_id":"b"}]`, false, want{ok: []int{0, 1}})
	f(`[{"event_id":"a"}, 7, {"digitized":"yes"}, {"event_id":"d"}]`, false, want{
		ok:   []int{0, 3},
		errs: map[int]string{1: "record is \"7\", want a JSON object", 2: "digitized must be a boolean (true or false), got a JSON string"},
	})
	f("{\"event_id\":\"a\"}\n\n{broken\r\n{\"event_id\":\"c\"}\n", false, want{
		ok: []int{0, 2}, errs: map[int]string{1: "malformed JSON at byte 2"},
	})
	f(`[{"event_id":"a"}]`, true, want{failed: "Content-Type is application/x-ndjson but the body does not start with a JSON object"})
	f(`{"event_id":"a"}`, true, want{ok: []int{0}})
	f(``, false, want{failed: "the body is empty"})
	f(`  `, false, want{failed: "the body is empty"})
	f(`[{"event_id":"a"},`, false, want{failed: "body cannot be parsed"})
	f(`hello`, false, want{failed: `want a JSON array or NDJSON objects, got "hello"`})
	f("{nope\n{nope", false, want{failed: "no line is a JSON object"})
	f(`[{"event_id":"a"}] [1]`, false, want{failed: "the body goes on after the JSON array"})
	f(`[{"event_id":"a"} {"event_id":"b"}]`, false, want{failed: "malformed JSON at byte"})
	// A line longer than the reader's buffer is one record.
	long := `{"event_id":"` + strings.Repeat("x", 200<<10) + `"}`
	f("{\"event_id\":\"a\"}\n"+long+"\n"+long, false, want{ok: []int{0, 1, 2}})
}

// decodeStream stops at the record past the limit, whichever the format,
// and reads from any reader as from a buffer.
func TestDecodeStreamBoundsRecords(t *testing.T) {
	for _, body := range []string{"{}\n{}\n\n{}\n", "[{},{},{}]", "[{}, 7, {}]"} {
		for limit, wantErr := range map[int]bool{0: false, 2: true, 3: false} {
			n := 0
			err := decodeStream(iotest.OneByteReader(strings.NewReader(body)), false, limit, func(int, DossierEvent, error) { n++ })
			var many *TooManyRecordsError
			if got := errors.As(err, &many); got != wantErr || (!wantErr && (err != nil || n != 3)) {
				t.Errorf("%q with limit %d: got %d records and %v, want too many: %v", body, limit, n, err, wantErr)
			}
			if wantErr && (n != limit || !strings.Contains(err.Error(), fmt.Sprintf("more than %d records (the IOC_INGEST_MAX_RECORDS limit)", limit))) {
				t.Errorf("%q with limit %d: got %d records before %v, want the limit's records and a message naming it", body, limit, n, err)
			}
		}
	}
	// A read error ends decoding with that error, not a 400.
	boom := errors.New("boom")
	err := decodeStream(io.MultiReader(strings.NewReader("{}\n{"), iotest.ErrReader(boom)), false, 0, func(int, DossierEvent, error) {})
	if !errors.Is(err, boom) || errors.Is(err, ErrUnparseable) {
		t.Errorf("NDJSON: got %v, want the read error", err)
	}
	err = decodeStream(io.MultiReader(strings.NewReader("[{},"), iotest.ErrReader(boom)), false, 0, func(int, DossierEvent, error) {})
	if !errors.Is(err, boom) || errors.Is(err, ErrUnparseable) {
		t.Errorf("array: got %v, want the read error", err)
	}
}

// FuzzDecodeDossiers checks that no body makes the decoder panic, and that
// every record is accounted for exactly once: decoded or refused by index.
func FuzzDecodeDossiers(f *testing.F) {
	f.Add([]byte(`[{"event_id":"a","status":"received"}]`), false)
	f.Add([]byte("{\"event_id\":\"a\"}\n{\"event_id\":\"b\"}\n"), true)
	f.Add([]byte(`[1,"x",{"digitized":"yes"},null]`), false)
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		checkAccounted(t, body, ndjson, decodeRecords[DossierEvent])
		checkStreamed[DossierEvent](t, body, ndjson)
	})
}

func ptr(v float64) *float64 { return &v }

// Records filed under vn-2024 units count under today's vn-2025 units and
// keep their recorded unit; hierarchies without a crosswalk stay as sent.
func TestValidatePlacesOldUnits(t *testing.T) {
	type want struct {
		hierarchy, area string
		approximate     bool
		recorded        *Placement
	}
	f := func(hierarchy, area string, lat, lon *float64, w want) {
		t.Helper()
		e := validEvent()
		e.Hierarchy, e.AreaCode, e.Lat, e.Lon = hierarchy, area, lat, lon
		d, err := testRules.Validate(e, testNow)
		if err != nil {
			t.Fatalf("%s %s: %v", hierarchy, area, err)
		}
		got := want{d.Hierarchy, d.AreaCode, d.Approximate, d.Recorded}
		if got.hierarchy != w.hierarchy || got.area != w.area || got.approximate != w.approximate ||
			(got.recorded == nil) != (w.recorded == nil) || (w.recorded != nil && *got.recorded != *w.recorded) {
			t.Errorf("%s %s: got %+v (recorded %v), want %+v (recorded %v)", hierarchy, area, got, got.recorded, w, w.recorded)
		}
	}
	old := func(code string) *Placement { return &Placement{"vn-2024", code} }
	// Tân Định went whole into Phường Tân Định (26737).
	f("vn-2024", "26734", nil, nil, want{"vn-2025", "26737", false, old("26734")})
	// Ngọc Hà was split between Ba Đình (00004) and Ngọc Hà (00008): a
	// position settles it, and without one the designated successor takes it.
	f("vn-2024", "00016", ptr(21.0367), ptr(105.8346), want{"vn-2025", "00004", false, old("00016")})
	f("vn-2024", "00016", nil, nil, want{"vn-2025", "00008", true, old("00016")})
	// A position outside every successor cannot settle it either.
	f("vn-2024", "00016", ptr(10.7769), ptr(106.7009), want{"vn-2025", "00008", true, old("00016")})
	// District 1's desk counts under Ho Chi Minh City itself.
	f("vn-2024", "760", nil, nil, want{"vn-2025", "79", false, old("760")})
	// Kobe's Chūō-ku has no crosswalk to vn-2025.
	f("jp-2021", "28110", nil, nil, want{"jp-2021", "28110", false, nil})
}

// checkAccounted decodes body and fails t unless every record is decoded
// or refused by index, exactly once.
// checkStreamed checks that decoding body a byte at a time gives what
// decoding it whole gives, and that a limit of one record less than it holds
// stops it.
func checkStreamed[T any](t *testing.T, body []byte, ndjson bool) {
	t.Helper()
	type rec struct {
		index int
		err   string
	}
	run := func(r io.Reader, limit int) ([]rec, error) {
		var out []rec
		err := decodeStream(r, ndjson, limit, func(i int, _ T, e error) {
			s := ""
			if e != nil {
				s = e.Error()
			}
			out = append(out, rec{i, s})
		})
		return out, err
	}
	whole, werr := run(bytes.NewReader(body), 0)
	bytewise, berr := run(iotest.OneByteReader(bytes.NewReader(body)), 0)
	if (werr == nil) != (berr == nil) || (werr != nil && werr.Error() != berr.Error()) || !slices.Equal(whole, bytewise) {
		t.Fatalf("whole: %v %v; a byte at a time: %v %v", whole, werr, bytewise, berr)
	}
	if werr != nil || len(whole) == 0 {
		return
	}
	_, err := run(bytes.NewReader(body), len(whole)-1)
	var many *TooManyRecordsError
	if len(whole) > 1 && !errors.As(err, &many) {
		t.Fatalf("%d records with a limit of %d: got %v, want too many", len(whole), len(whole)-1, err)
	}
}

func checkAccounted[T any](t *testing.T, body []byte, ndjson bool, decode func([]byte, bool) ([]decoded[T], []RecordError, error)) {
	t.Helper()
	recs, errs, err := decode(body, ndjson)
	if err != nil {
		if recs != nil || errs != nil {
			t.Fatalf("failed decode returned records %d and errors %d", len(recs), len(errs))
		}
		return
	}
	seen := map[int]bool{}
	for _, r := range recs {
		if seen[r.index] {
			t.Fatalf("index %d reported twice", r.index)
		}
		seen[r.index] = true
	}
	for _, e := range errs {
		if seen[e.Index] || e.Error == "" {
			t.Fatalf("index %d reported twice or without a reason", e.Index)
		}
		seen[e.Index] = true
	}
	for i := range len(seen) {
		if !seen[i] {
			t.Fatalf("record %d of %d is neither decoded nor refused", i, len(seen))
		}
	}
}

// A record's refusal lists every problem at once, in a stable order, and
// leaves out problems that only follow from another: a missing status does
// not also make due_at required, an overlong area_code is not also an
// unknown unit.
func TestValidateReportsEveryProblem(t *testing.T) {
	e := validEvent()
	e.DossierID, e.Status, e.OccurredAt, e.DueAt = "", "recieved", "2026-11-22T09:15:00", ""
	e.Channel, e.Lat = "fax", ptr(10.7)
	_, err := testRules.Validate(e, testNow)
	var inv *InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("got %v, want an *InvalidError", err)
	}
	want := []string{
		"dossier_id is required",
		`status "recieved" is not one of`,
		`channel "fax" is not one of`,
		"lat and lon go together",
		`occurred_at "2026-11-22T09:15:00" is not an RFC 3339 time with offset`,
	}
	if len(inv.Problems) != len(want) {
		t.Fatalf("got problems %q, want %d: %q", inv.Problems, len(want), want)
	}
	for i := range want {
		if !strings.Contains(inv.Problems[i], want[i]) {
			t.Errorf("problem %d: got %q, want it to say %q", i, inv.Problems[i], want[i])
		}
	}
	if err.Error() != strings.Join(inv.Problems, "; ") {
		t.Errorf("error %q is not the problems joined", err)
	}

	e = validEvent()
	e.Status, e.DueAt, e.AreaCode = "", "", strings.Repeat("7", 129)
	_, err = testRules.Validate(e, testNow)
	if !errors.As(err, &inv) || len(inv.Problems) != 2 || inv.Problems[0] != "status is required" || !strings.Contains(inv.Problems[1], "area_code is 129 bytes long") {
		t.Errorf("missing status and overlong area_code: got %v, want those two problems alone", err)
	}
}

// Fields of the wrong JSON type are each reported, with what validation
// finds in the rest of the record, but not "required" for those fields.
func TestTypeErrorsComeWithTheRecordsOtherProblems(t *testing.T) {
	raw := []byte(`{"event_id":"a","dossier_id":"d","area_code":"26740","channel":"fax","status":5,"occurred_at":"2026-11-22T09:15:00+07:00","due_at":"2026-11-25T17:00:00+07:00","digitized":"yes","lat":"10.7","lon":106.7}`)
	var v DossierEvent
	err := decodeOne(raw, &v)
	var te *fieldTypeError
	if !errors.As(err, &te) {
		t.Fatalf("got %v, want a *fieldTypeError", err)
	}
	_, verr := testRules.Validate(v, testNow)
	merged := withTypeErrors(te, verr)
	var inv *InvalidError
	if !errors.As(merged, &inv) {
		t.Fatalf("got %v, want an *InvalidError", merged)
	}
	want := []string{
		"digitized must be a boolean (true or false), got a JSON string",
		"lat must be a number, got a JSON string",
		"status must be a string, got a JSON number",
		`channel "fax" is not one of`,
	}
	if len(inv.Problems) != len(want) {
		t.Fatalf("got problems %q, want %d: %q", inv.Problems, len(want), want)
	}
	for i := range want {
		if !strings.Contains(inv.Problems[i], want[i]) {
			t.Errorf("problem %d: got %q, want it to say %q", i, inv.Problems[i], want[i])
		}
	}
	if e := recordError(3, merged); e.Index != 3 || len(e.Problems) != 4 || e.Error != strings.Join(e.Problems, "; ") {
		t.Errorf("record error: got %+v", e)
	}
}

// The refusals kept are the lowest indexes, whatever order they come in.
func TestRefusalsKeepTheLowestIndexes(t *testing.T) {
	r := refusals{max: 3}
	for _, i := range []int{9, 4, 7, 1, 8, 2, 6} {
		r.add(RecordError{Index: i, Error: "x"})
	}
	var got []int
	for _, e := range r.list() {
		got = append(got, e.Index)
	}
	if !slices.Equal(got, []int{1, 2, 4}) || r.total != 7 || r.omitted() != 4 {
		t.Errorf("got %v, %d in all, %d omitted; want [1 2 4], 7, 4", got, r.total, r.omitted())
	}
}

// FuzzDecodeFlat checks the fast path of record decoding against
// encoding/json: whenever it takes a record, json.Unmarshal takes it too
// and gives the same value, for each wire type.
func FuzzDecodeFlat(f *testing.F) {
	f.Add([]byte(`{"event_id":"a","dossier_id":"d","digitized":true,"lat":10.5,"lon":-1e-3,"x":[1,{"y":"\u0041"}]}`))
	f.Add([]byte(`{"camera_id":"c","attrs":{"plate":"51F"},"lat":null,"severity":null}`))
	f.Add([]byte(`{"sensor_id":"s","value":57.2,"Value":1,"kind":"pm25"}`))
	f.Add([]byte(`{"event_id":"a","event_id":"b"}`))
	f.Add([]byte(`{"event_id":"caf\u00e9","sector":"é"}`))
	f.Add([]byte(`{"value":01}`))
	f.Add([]byte(` { } `))
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkFlat[DossierEvent](t, raw)
		checkFlat[CameraEventWire](t, raw)
		checkFlat[SensorReadingWire](t, raw)
		checkFlat[FeedbackRecord](t, raw)
	})
}

func checkFlat[T any](t *testing.T, raw []byte) {
	t.Helper()
	var fast T
	if !decodeFlat(raw, &fast) {
		return
	}
	var slow T
	if err := json.Unmarshal(raw, &slow); err != nil {
		t.Fatalf("%T: the fast path took %q, which json.Unmarshal refuses: %v", fast, raw, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%T: %q decodes to %+v on the fast path, %+v with json.Unmarshal", fast, raw, fast, slow)
	}
}
