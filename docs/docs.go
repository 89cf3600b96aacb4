// Package docs carries the API descriptions: openapi.yaml (the REST routes,
// OpenAPI 3.1) and asyncapi.yaml (the live websocket, AsyncAPI), embedded in
// the binary so that a node serves the description of the API it runs.
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml: the OpenAPI 3.1 document of the REST API.
//
//go:embed openapi.yaml
var OpenAPI []byte

// AsyncAPI is docs/asyncapi.yaml: the AsyncAPI document of the live websocket.
//
//go:embed asyncapi.yaml
var AsyncAPI []byte
