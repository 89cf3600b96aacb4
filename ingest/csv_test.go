package ingest

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// A header names wire fields as JSON does, ignoring case, spaces and a
// spreadsheet's byte-order mark; other columns are ignored, a field named
// twice or no field at all is refused; and a record becomes the wire
// record a JSON object with the same fields gives.
func TestCSVColumnsReadAsTheWireFormat(t *testing.T) {
	cols, err := NewCSVColumns(KindCameraEvents, []string{"\uFEFFEvent_ID", " camera_id ", "note", "lat", "LON", "digitized", "attrs", "type"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cols.Ignored, []string{"note", "digitized"}) {
		t.Errorf("ignored %q, want note and digitized (not a camera event's field)", cols.Ignored)
	}
	got, err := cols.decode.(*csvFields[CameraEventWire]).decode(cols.columns,
		[]string{"e1", "CAM-1", "whatever", " 10.5 ", "106.7", "yes", `{"plate":"51F-123.45","n":2}`, ""})
	if err != nil {
		t.Fatal(err)
	}
	var want CameraEventWire
	if err := json.Unmarshal([]byte(`{"event_id":"e1","camera_id":"CAM-1","lat":10.5,"lon":106.7,"attrs":{"plate":"51F-123.45","n":2}}`), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %+v, want %+v", got, want)
	}

	dcols, err := NewCSVColumns(KindDossiers, []string{"event_id", "digitized", "lat", "paid_online"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = dcols.decode.(*csvFields[DossierEvent]).decode(dcols.columns, []string{"e1", "maybe", "north", "1"})
	var te *fieldTypeError
	if !errors.As(err, &te) || !te.fields["digitized"] || !te.fields["lat"] || te.fields["paid_online"] || len(te.Problems) != 2 {
		t.Errorf("cells of the wrong type: got %v, want digitized and lat named, together", err)
	}
	if _, err := dcols.decode.(*csvFields[DossierEvent]).decode(dcols.columns, []string{"e1", "true"}); err == nil ||
		!strings.Contains(err.Error(), "the record has 2 cells and the header 4 columns; quote a cell that holds a comma") {
		t.Errorf("a short record: got %v", err)
	}

	for _, c := range []struct {
		header []string
		want   string
	}{
		{[]string{"event_id", "EVENT_ID"}, `the header names "EVENT_ID" twice (columns 1 and 2)`},
		{[]string{"a", "b"}, "no column of the header row is a field of dossier events; the first row must name fields such as"},
	} {
		if _, err := NewCSVColumns(KindDossiers, c.header); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("header %q: got %v, want %q", c.header, err, c.want)
		}
	}
	if _, err := NewCSVColumns("dossier", []string{"event_id"}); err == nil || !strings.Contains(err.Error(), "use dossiers, camera-events, sensor-readings") {
		t.Errorf("an unknown kind: got %v", err)
	}
}

// FuzzCSVColumns checks the CSV decoder on any header and record of each
// kind: it never panics; a refused header has a field twice or none; a
// record whose cells do not line up is refused for that; a cell of the
// wrong type is reported under its field, which has a cell; and a record
// it takes, written out again cell by cell as the format says (text as
// is, true/false, numbers, attrs as JSON), reads back the same.
func FuzzCSVColumns(f *testing.F) {
	f.Add(uint8(0), "event_id,dossier_id,area_code,status,digitized,lat", "e1,d1,26740,received,1, 10.5")
	f.Add(uint8(0), "\uFEFFevent_id,Event_Id", "a,b")
	f.Add(uint8(1), "event_id,camera_id,type,lat,lon,attrs", `e,c,congestion,10.7,106.7,{"plate":"51F"}`)
	f.Add(uint8(1), "attrs,note", `null,x`)
	f.Add(uint8(2), "sensor_id,kind,value,alert_level,observed_at", "s,pm25,NaN,-1e400,2026-11-22T09:15:00+07:00")
	f.Add(uint8(2), "value", "0x1p-2")
	f.Fuzz(func(t *testing.T, k uint8, header, record string) {
		kind := ImportKinds[int(k)%len(ImportKinds)]
		h, cells := strings.Split(header, ","), strings.Split(record, ",")
		cols, err := NewCSVColumns(kind, h)
		if err != nil {
			if !strings.Contains(err.Error(), "twice") && !strings.Contains(err.Error(), "no column of the header row") {
				t.Fatalf("header %q refused for another reason: %v", header, err)
			}
			return
		}
		switch kind {
		case KindDossiers:
			checkCSV[DossierEvent](t, cols, h, cells)
		case KindCameraEvents:
			checkCSV[CameraEventWire](t, cols, h, cells)
		default:
			checkCSV[SensorReadingWire](t, cols, h, cells)
		}
	})
}

func checkCSV[W any](t *testing.T, cols *CSVColumns, header, cells []string) {
	t.Helper()
	dec := cols.decode.(*csvFields[W])
	w, err := dec.decode(cols.columns, cells)
	var te *fieldTypeError
	switch {
	case len(cells) != len(header):
		if err == nil || !strings.Contains(err.Error(), "cells and the header") {
			t.Fatalf("%d cells under %d columns: got %v", len(cells), len(header), err)
		}
		return
	case errors.As(err, &te):
		for name := range te.fields {
			found := false
			for i, f := range dec.cols {
				found = found || f != nil && strings.ToLower(f.name) == name && cells[i] != ""
			}
			if !found {
				t.Fatalf("%q reported with a cell of the wrong type, and none has one: %v", name, err)
			}
		}
		return
	case err != nil:
		t.Fatalf("%q under %q: %v", cells, header, err)
	}
	// Written out again, cell by cell.
	v := reflect.ValueOf(w)
	again := make([]string, len(cells))
	for i, f := range dec.cols {
		if f == nil {
			again[i] = cells[i] // ignored either way
			continue
		}
		fv := v.Field(f.index)
		switch f.kind {
		case csvText:
			again[i] = fv.String()
		case csvFlag:
			if fv.Bool() {
				again[i] = "true"
			}
		case csvNumber:
			if fv.IsNil() {
				continue
			}
			x := fv.Elem().Float()
			if math.IsNaN(x) {
				return // NaN equals nothing, itself included; validation refuses it
			}
			again[i] = strconv.FormatFloat(x, 'g', -1, 64)
		case csvObject:
			if fv.IsNil() {
				continue
			}
			b, err := json.Marshal(fv.Interface())
			if err != nil {
				t.Fatalf("attrs %v: %v", fv.Interface(), err)
			}
			again[i] = string(b)
		}
	}
	back, err := dec.decode(cols.columns, again)
	if err != nil {
		t.Fatalf("%q (from %q) does not read back: %v", again, cells, err)
	}
	if !reflect.DeepEqual(w, back) {
		t.Fatalf("%q reads as %+v; written out again as %q it reads as %+v", cells, w, again, back)
	}
}
