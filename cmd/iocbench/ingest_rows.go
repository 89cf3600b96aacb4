package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/paulmach/orb"

	"github.com/openioc/ioc/dossier"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/ingest"
)

// The ingest benchmark's records: the same ones go through every path, in
// the wire form (HTTP bodies and import files), as validated records (the
// writer) and as the rows the writer stores (the plain inserts).

// kind is one stream of records the benchmark measures.
type kind struct {
	name     string // as `iocd import` names it
	endpoint string // HTTP ingest route
	raw      string // the project's raw table
}

var benchKinds = []kind{
	{"dossiers", "/api/v1/ingest/dossiers", "dossier_history"},
	{"camera-events", "/api/v1/ingest/camera-events", "camera_events"},
	{"sensor-readings", "/api/v1/ingest/sensor-readings", "sensor_readings"},
}

// site is a device's place: a point inside a commune.
type site struct {
	area     string
	lat, lon float64
}

// benchPlaces are the communes of Ho Chi Minh City and a point inside
// each, found by the same spatial index ingest places devices with.
type benchPlaces struct {
	communes []string
	sites    []site
}

func newBenchPlaces() (*benchPlaces, error) {
	reg, err := geo.Builtin()
	if err != nil {
		return nil, err
	}
	h, ok := reg.Hierarchy(hierarchyName)
	if !ok {
		return nil, fmt.Errorf("hierarchy %s is not built in", hierarchyName)
	}
	p := &benchPlaces{communes: h.ChildCodes("79")}
	r := rand.New(rand.NewPCG(7, 7))
	for _, code := range p.communes {
		b, ok := h.Bound(code)
		if !ok {
			continue
		}
		for range 200 {
			pt := orb.Point{b.Min[0] + r.Float64()*(b.Max[0]-b.Min[0]), b.Min[1] + r.Float64()*(b.Max[1]-b.Min[1])}
			if units := h.Locate(pt); len(units) > 0 && units[len(units)-1].Code == code {
				p.sites = append(p.sites, site{area: code, lat: pt[1], lon: pt[0]})
				break
			}
		}
	}
	if len(p.sites) == 0 {
		return nil, fmt.Errorf("no point found inside the communes of Ho Chi Minh City")
	}
	return p, nil
}

// records are n records of one kind, in each form a path needs.
type records struct {
	n      int
	wire   []any // encoded as the HTTP API and `iocd import` take them
	dossie []ingest.Dossier
	derive []ingest.Derived
	camera []ingest.CameraEvent
	reads  []ingest.Reading
}

// ndjson encodes records from..to of the wire form, one per line.
func (r *records) ndjson(from, to int) []byte {
	var out []byte
	for _, w := range r.wire[from:to] {
		b, err := json.Marshal(w)
		if err != nil {
			panic(err) // the generator's own types
		}
		out = append(append(out, b...), '\n')
	}
	return out
}

const devicesPerKind = 200

var (
	benchProcedures = []string{"1.004227", "1.001234", "2.000125", "1.012345", "2.001876", "1.000456", "2.010101", "1.003030"}
	benchSectors    = []string{"land", "civil_status", "construction", "business", "transport", "labour", "justice", "health"}
	benchCameraType = []string{"traffic_violation", "congestion", "illegal_parking", "plate_read", "wrong_way", "crowd"}
	benchSeverity   = []string{"info", "info", "warning", "critical"}
)

// makeRecords draws n records of k whose ids start with prefix, stamped in
// the hour before now.
func makeRecords(k kind, p *benchPlaces, prefix string, n int, now time.Time) *records {
	r := &records{n: n}
	start := now.Add(-time.Hour).Truncate(time.Second)
	at := func(i int) time.Time {
		return start.Add(time.Duration(i) * time.Hour / time.Duration(n+1)).Truncate(time.Second)
	}
	switch k.name {
	case "dossiers":
		// Dossiers of three events (received, processing, resolved), each
		// dossier's events next to each other as a source system sends them.
		var events []dossier.Event
		var derived []dossier.Contribution
		for i := range n {
			d, step := i/3, i%3
			area := p.communes[d%len(p.communes)]
			proc, sector := benchProcedures[d%len(benchProcedures)], benchSectors[d%len(benchSectors)]
			channel := "online"
			if d%5 == 0 {
				channel = "in_person"
			}
			received := at(d * 3)
			due := received.Add(5 * 24 * time.Hour)
			status := []string{"received", "processing", "resolved"}[step]
			occurred := at(i)
			id, dossierID := prefix+strconv.Itoa(i), prefix+"d"+strconv.Itoa(d)
			r.wire = append(r.wire, ingest.DossierEvent{EventID: id, DossierID: dossierID, ProcedureCode: proc, Sector: sector,
				AreaCode: area, Channel: channel, Status: status, OccurredAt: occurred.Format(time.RFC3339),
				ReceivedAt: received.Format(time.RFC3339), DueAt: due.Format(time.RFC3339), Digitized: d%2 == 0, FeeRequired: d%3 == 0})
			rec, due2 := received.UTC(), due.UTC()
			row := ingest.Dossier{EventID: id, DossierID: dossierID, ProcedureCode: proc, Sector: sector, Hierarchy: hierarchyName,
				AreaCode: area, Channel: channel, Status: status, OccurredAt: occurred.UTC(), ReceivedAt: &rec, DueAt: &due2,
				Digitized: d%2 == 0, FeeRequired: d%3 == 0}
			r.dossie = append(r.dossie, row)
			if step == 0 {
				events, derived = events[:0], nil
			}
			events = append(events, dossier.Event{EventID: id, Area: area, Status: status, OccurredAt: row.OccurredAt,
				ReceivedAt: row.ReceivedAt, DueAt: row.DueAt, Channel: channel, Sector: sector, Procedure: proc,
				Digitized: row.Digitized, FeeRequired: row.FeeRequired})
			after := dossier.Derive(events)
			r.derive = append(r.derive, ingest.Derived{Record: row, Delta: dossier.Delta(derived, after)})
			derived = after
		}
	case "camera-events":
		for i := range n {
			dev := i % devicesPerKind
			s := p.sites[dev%len(p.sites)]
			id, cam := prefix+strconv.Itoa(i), "BENCH-CAM-"+strconv.Itoa(dev)
			typ, sev := benchCameraType[i%len(benchCameraType)], benchSeverity[i%len(benchSeverity)]
			lat, lon := s.lat, s.lon
			var attrs map[string]any
			if typ == "plate_read" {
				attrs = map[string]any{"plate": "51A-" + strconv.Itoa(10000+i%90000)}
			}
			r.wire = append(r.wire, ingest.CameraEventWire{EventID: id, CameraID: cam, Type: typ, Severity: sev, Lat: &lat, Lon: &lon,
				OccurredAt: at(i).Format(time.RFC3339), Attrs: attrs})
			a := "{}"
			if attrs != nil {
				b, _ := json.Marshal(attrs)
				a = string(b)
			}
			r.camera = append(r.camera, ingest.CameraEvent{EventID: id, CameraID: cam, Type: typ, Severity: sev, Hierarchy: hierarchyName,
				AreaCode: s.area, Lat: lat, Lon: lon, OccurredAt: at(i).UTC(), Attrs: a})
		}
	case "sensor-readings":
		for i := range n {
			dev := i % devicesPerKind
			s := p.sites[(dev+7)%len(p.sites)]
			id, sensor := prefix+strconv.Itoa(i), "BENCH-SENSOR-"+strconv.Itoa(dev)
			kind, unit, v := "pm25", "ug/m3", 10+float64(i%700)/10
			if dev%4 == 0 {
				kind, unit, v = "water_level", "m", 0.5+float64(i%300)/100
			}
			lat, lon, value := s.lat, s.lon, v
			r.wire = append(r.wire, ingest.SensorReadingWire{EventID: id, SensorID: sensor, Kind: kind, Value: &value, Unit: unit,
				Lat: &lat, Lon: &lon, ObservedAt: at(i).Format(time.RFC3339)})
			r.reads = append(r.reads, ingest.Reading{EventID: id, SensorID: sensor, Kind: kind, Value: v, Unit: unit, Hierarchy: hierarchyName,
				AreaCode: s.area, Lat: lat, Lon: lon, ObservedAt: at(i).UTC()})
		}
	}
	return r
}
