package api

import (
	"net/http"
	"strings"
	"testing"
)

// TestOGCPagingBounds: paging parameters a client could overflow the page
// arithmetic with are refused with their range, not answered with a 500.
func TestOGCPagingBounds(t *testing.T) {
	s, _, _ := newLiveServer(t)
	for _, collection := range []string{"vn-2025.commune", "cameras", "camera-events.density"} {
		base := "/ogc/collections/" + collection + "/items?"
		if collection == "camera-events.density" {
			base += "bbox=106.6,10.7,106.8,10.9&"
		}
		wantError(t, get(t, s, base+"offset=9223372036854775807", gisAdmin), http.StatusBadRequest, "offset")
		r := get(t, s, base+"offset=9223372036854775807", gisAdmin)
		if !strings.Contains(string(r.body), "0 to 2147483647") {
			t.Errorf("%s: the refusal %s does not give offset's range", collection, r.body)
		}
		wantError(t, get(t, s, base+"offset=-1", gisAdmin), http.StatusBadRequest, "offset")
		wantError(t, get(t, s, base+"limit=-9223372036854775808", gisAdmin), http.StatusBadRequest, "1 to 1000")
		// Larger than the cap, even past int64: served as the cap.
		for _, limit := range []string{"9223372036854775807", "99999999999999999999999"} {
			fc := decodeFC(t, get(t, s, base+"limit="+limit+"&offset=2147483647", gisAdmin))
			if *fc.NumberReturned != 0 {
				t.Errorf("%s: limit %s past the end: got %d features", collection, limit, *fc.NumberReturned)
			}
		}
	}
}
