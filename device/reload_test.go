package device

import "testing"

// A reload whose read began before this node stored a device (a sensor's
// first reading registers it while the periodic reload reads the table)
// keeps that device; one whose read began after trusts the store.
func TestReloadKeepsWhatWasStoredWhileItRead(t *testing.T) {
	r := &Registry{devices: map[string]Device{"CAM-1": {ID: "CAM-1"}}}
	r.mu.Lock()
	began := r.changes
	r.stored(Device{ID: "WL-T1"})
	r.mu.Unlock()

	r.replace(map[string]Device{"CAM-1": {ID: "CAM-1"}}, began) // read before WL-T1 was stored
	if _, ok := r.Device("WL-T1"); !ok {
		t.Fatal("a reload that read before the sensor was stored forgot it")
	}
	r.mu.RLock()
	after := r.changes
	r.mu.RUnlock()
	r.replace(map[string]Device{"CAM-1": {ID: "CAM-1"}}, after) // read after: the store is right
	if _, ok := r.Device("WL-T1"); ok {
		t.Error("a reload that read after the change kept a device the store does not have")
	}
	if len(r.changed) != 0 {
		t.Errorf("changes still remembered after a later reload: %v", r.changed)
	}
}
