package gis_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openioc/ioc/api/internal/apitest"
)

// limitRecorder sits in front of a server and records the limit of every
// request for the items of one collection.
type limitRecorder struct {
	mu     sync.Mutex
	limits []int
}

func recordLimits(t *testing.T, backend, collection string) (string, *limitRecorder) {
	t.Helper()
	target, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	rec := &limitRecorder{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ogc/collections/"+collection+"/items" {
			n, _ := strconv.Atoi(r.URL.Query().Get("limit"))
			rec.mu.Lock()
			rec.limits = append(rec.limits, n)
			rec.mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	return front.URL, rec
}

func (r *limitRecorder) take() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.limits
	r.limits = nil
	return out
}

// gdalOutput runs a GDAL program and returns what it printed on stdout
// and on stderr.
func gdalOutput(t *testing.T, name string, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "GDAL_HTTP_TIMEOUT=60", "CPL_DEBUG=OFF")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), stderr.String()
}

// TestGDALTypesAndPages: what the README tells a GIS user to run works as
// told. ogrinfo lists every collection, the live ones included, without an
// error and types the indicators as numbers; ogr2ogr reads all the
// communes, following next links in pages of 1000.
func TestGDALTypesAndPages(t *testing.T) {
	needGDAL(t)
	s, _, _ := newLiveServer(t)
	base, rec := recordLimits(t, apitest.Serve(t, s), "vn-2025.commune")
	src := "OAPIF:" + base + "/ogc?access_token=" + apitest.Admin

	list, stderr := gdalOutput(t, ogrinfo, "-ro", "-so", src)
	if strings.Contains(stderr, "ERROR") || !strings.Contains(list, "camera-events.density") || !strings.Contains(list, "vn-2025.commune.kpi") {
		t.Errorf("ogrinfo -so: stderr %q; listed:\n%s", stderr, list)
	}

	summary, stderr := gdalOutput(t, ogrinfo, "-ro", "-so", src, "vn-2025.commune.kpi")
	for _, want := range []string{"online_rate: Real", "on_time_rate: Real", "pm25_max: Real", "dossiers_received: Integer", "code: String", "as_of: DateTime"} {
		if !strings.Contains(summary, want) {
			t.Errorf("ogrinfo -so vn-2025.commune.kpi lacks %q (stderr %q):\n%.3000s", want, stderr, summary)
		}
	}

	rec.take()
	csv, _ := gdalOutput(t, "ogr2ogr", "-f", "CSV", "/vsistdout/", src, "vn-2025.commune", "-select", "code")
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	codes := map[string]bool{}
	for _, l := range lines[1:] {
		codes[strings.Trim(l, `"`)] = true
	}
	if len(lines)-1 != 3321 || len(codes) != 3321 {
		t.Errorf("ogr2ogr read %d rows, %d distinct codes; want 3321", len(lines)-1, len(codes))
	}
	limits := rec.take()
	t.Logf("ogr2ogr without PAGE_SIZE asked for pages of %v", limits)
	// GDAL 3.6 asks its own first page of 10 (and 10 more to sample the
	// fields); every page it reads by following next links holds 1000.
	if len(limits) > 6 {
		t.Errorf("ogr2ogr made %d requests for the communes (limits %v), want at most 6", len(limits), limits)
	}
	for i, l := range limits {
		if i >= len(limits)-4 && l < 1000 {
			t.Errorf("request %d of %v asked for %d features, want pages of 1000", i, limits, l)
		}
	}

	gdalOutput(t, "ogr2ogr", "-f", "CSV", "/vsistdout/", "-oo", "PAGE_SIZE=1000", src, "vn-2025.commune", "-select", "code")
	for _, l := range rec.take() {
		if l != 1000 {
			t.Errorf("with PAGE_SIZE=1000: a request asked for %d features", l)
		}
	}
}
