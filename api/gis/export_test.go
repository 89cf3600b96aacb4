package gis

// The wire shapes and limits the HTTP tests (package gis_test, which serve
// the layers through the API server) read answers with.
type (
	LayerCatalog      = layerCatalog
	LayerInfo         = layerInfo
	TileJSONBody      = tileJSONBody
	OGCLandingBody    = ogcLandingBody
	OGCCollectionBody = ogcCollectionBody
	OGCLink           = ogcLink
)

const (
	TileMaxZoom    = tileMaxZoom
	OGCMaxLimit    = ogcMaxLimit
	CRS84          = crs84
	ConfCore       = confCore
	ConfGeoJSON    = confGeoJSON
	ConfQueryables = confQueryables
	ConfQueryParam = confQueryParam
	TypeSchema     = typeSchema
	RelQueryables  = relQueryables
)
