package dossier

// The values a dossier event may carry, as the wire contract allows them:
// ingest validates against them, the simulator and the documentation use
// them. Read-only.
var (
	// Statuses a dossier goes through.
	Statuses = []string{"received", "processing", "supplement_requested", "resolved", "returned", "rejected", "withdrawn"}
	// Channels a dossier is filed through.
	Channels = []string{"online", "in_person", "postal"}
	// OnlineLevels of an online dossier's public service.
	OnlineLevels = []string{"full", "partial"}
)
