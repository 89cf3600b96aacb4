// Package dashboards holds the wall-display definitions and the built-in web
// client, as static assets embedded in the binary (control rooms are often
// air-gapped: nothing is fetched from outside).
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

// Assets is the web client's files, index.html at the root.
func Assets() http.FileSystem {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return http.FS(sub)
}
