package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version is set at build time by make build (-ldflags "-X
// main.version=…", from git describe); empty, the module's version from
// the build information is used, which go install …@v1.2.3 records.
var version string

// buildInfo is what this binary is: its version, the commit it was built
// from and when that commit was made, and the Go that built it.
type buildInfo struct {
	Version, Revision, Time, GoVersion string
	Modified                           bool
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if ok {
		if b.Version == "" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.time":
				b.Time = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	return b
}

// printVersion answers iocd --version and iocd version.
func printVersion(out io.Writer) error {
	b := readBuildInfo()
	rev := b.Revision
	switch {
	case rev == "":
		rev = "unknown (built without VCS information; make build records it)"
	case b.Modified:
		rev += " (with uncommitted changes)"
	}
	if b.Time != "" {
		rev += ", committed " + b.Time
	}
	_, err := fmt.Fprintf(out, "iocd %s\nrevision %s\n%s %s/%s\n", b.Version, rev, b.GoVersion, runtime.GOOS, runtime.GOARCH)
	return err
}

// registerBuildInfo exports ioc_build_info{version,revision,goversion} 1,
// so that a dashboard shows which build every node runs.
func registerBuildInfo(reg prometheus.Registerer) {
	b := readBuildInfo()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ioc_build_info", Help: "The build of iocd this node runs; always 1.",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(b.Version, b.Revision, b.GoVersion).Set(1)
	reg.MustRegister(g)
}

// buildID names this build in the screens' states, so that a wall page
// of another build reloads itself: the commit (and whether it had
// uncommitted changes), else the version.
func buildID() string {
	b := readBuildInfo()
	if b.Revision == "" {
		return b.Version
	}
	id := b.Revision[:min(12, len(b.Revision))]
	if b.Modified {
		id += "-modified"
	}
	return id
}
