package ingest

import "github.com/openioc/ioc/ingest/ngsild"

// decodeNGSILD takes the readings out of an NGSI-LD notification with
// ngsild.Decode, and each entity's problems as one RecordError, capped as a
// record's are.
func decodeNGSILD(raw []byte) ([]ngsild.Reading, []RecordError, error) {
	readings, refused, err := ngsild.Decode(raw)
	if err != nil {
		return nil, nil, err
	}
	var errs []RecordError
	for _, e := range refused {
		var p problems
		for _, msg := range e.Problems {
			p.add("%s", msg)
		}
		errs = append(errs, recordError(e.Entity, p.err()))
	}
	return readings, errs, nil
}

// ngsiReadingWire is a notification's reading as a sensor reading sent on
// the wire, which validation takes like any other.
func ngsiReadingWire(r ngsild.Reading) SensorReadingWire {
	v := r.Value
	return SensorReadingWire{
		SensorID: r.SensorID, Kind: r.Kind, Value: &v, Unit: r.Unit, ObservedAt: r.ObservedAt,
		Lat: r.Lat, Lon: r.Lon, AlertLevel: r.AlertLevel, DangerLevel: r.DangerLevel, DatasetID: r.DatasetID,
	}
}
