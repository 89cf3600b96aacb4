// Package dashboards owns the wall's definitions as data and the built-in web
// clients.
//
// The definitions are JSON documents of four kinds: dashboards (widgets on a
// grid of cells), playlists (dashboards in turn), walls (screens in a grid)
// and screens (one display each). This package holds their Go types,
// Validate, which reports every wrong field with its JSON path and how to fix
// it (checked against the server's catalog and units, and the documents that
// exist, given as interfaces: the package imports nothing of the project),
// the canonical form documents are stored and compared in, the export file
// and the folder format of IOC_DASHBOARDS_DIR, and the defaults for
// province 79 (defaults/*.json). docs/dashboard.schema.json states the same
// rules for editors; its tests keep the two in step. Storing versions is
// internal/chstore's, serving them the api package's.
//
// The web clients are static assets embedded in the binary (control rooms
// are often air-gapped: nothing is fetched from outside), native ES modules
// with no build step: the single-unit page at the root (app.js, its pure
// parts under page/), and under wall/ the wall page, which draws a
// dashboard definition on a screen or follows a kiosk screen's state, and
// its editor. The single-unit page imports the wall's modules for what the
// two share (REST, the live connection, map projection, colour ramps,
// words and numbers); live.js, a classic script both load first, holds the
// live protocol's decisions and the topic grammar.
//
// Concurrency: everything here is either pure or read-only, and safe for
// concurrent use.
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
