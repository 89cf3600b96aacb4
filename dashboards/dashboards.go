// Package dashboards holds the wall-display definitions and the built-in web
// clients, as static assets embedded in the binary (control rooms are often
// air-gapped: nothing is fetched from outside): the single-unit page at the
// root, and under wall/ the wall page, which draws a dashboard definition
// on a screen or follows a kiosk screen's state, and its editor (native ES
// modules, no build step).
//
// Concurrency: the assets are read-only and safe for concurrent use.
package dashboards

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Assets is the web clients' files, index.html at the root, the wall's
// under wall/.
func Assets() http.FileSystem {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return http.FS(sub)
}
