package backfill

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// state is what an import has durably done, saved after every chunk
// acknowledged in order: per file the records of its leading part that are
// stored (or refused, and listed in the rejects file), and the rejects
// file's length at that point. A rerun with the same files goes on from
// there; what was sent after it is sent again and found stored.
type state struct {
	Version int    `json:"version"`
	Kind    string `json:"kind"`
	// Rejects is the rejects file, and RejectsBytes its length when the
	// state was saved: a rerun cuts it back to that, so that the records it
	// reads again are listed once.
	Rejects      string      `json:"rejects"`
	RejectsBytes int64       `json:"rejects_bytes"`
	Records      int64       `json:"records"` // in every file, read and acknowledged
	Stored       int64       `json:"stored"`
	Duplicates   int64       `json:"duplicates"`
	Rejected     int64       `json:"rejected"`
	Files        []fileState `json:"files"`
	StartedAt    time.Time   `json:"started_at"`
	UpdatedAt    time.Time   `json:"updated_at"`
	FinishedAt   *time.Time  `json:"finished_at,omitempty"`
}

const stateVersion = 1

// fileState is one input file: its identity and how far it is imported.
type fileState struct {
	Path       string `json:"path"`        // absolute; "-" for standard input
	Size       int64  `json:"size"`        // -1 for standard input
	HeadSHA256 string `json:"head_sha256"` // of its first MiB; empty for standard input
	Gzip       bool   `json:"gzip"`
	Format     string `json:"format"`
	Records    int64  `json:"records"` // leading records done
	Offset     int64  `json:"offset"`  // decompressed byte just past them
	Line       int64  `json:"line"`    // lines up to there
	// PrefixCRC32C is, for standard input, the CRC-32C of its first Offset
	// bytes (decompressed): a resumed import reads them again and checks
	// that the same stream is piped in.
	PrefixCRC32C uint32 `json:"prefix_crc32c,omitempty"`
	Pos          int64  `json:"pos"`  // bytes of the file read by then (compressed, for gzip), for the progress
	Done         bool   `json:"done"` // every record done
}

// done says whether every file is imported.
func (s *state) done() bool {
	for _, f := range s.Files {
		if !f.Done {
			return false
		}
	}
	return true
}

// defaultPaths are the state and rejects files of an import of files as
// kind when not given: in the current directory, named after the first
// file with a hash of the kind and every file's absolute path, so that
// the same command finds them again and another import does not.
func defaultPaths(kind string, files []input) (statePath, rejectsPath string) {
	h := sha256.New()
	h.Write([]byte(kind))
	for _, f := range files {
		h.Write([]byte{0})
		h.Write([]byte(f.abs))
	}
	base := fmt.Sprintf("%s.import-%s", stem(files[0].path), hex.EncodeToString(h.Sum(nil))[:8])
	return base + ".state.json", base + ".rejects.ndjson"
}

// rejectsNextTo is the rejects file beside a state file given by name.
func rejectsNextTo(statePath string) string {
	return strings.TrimSuffix(strings.TrimSuffix(statePath, ".json"), ".state") + ".rejects.ndjson"
}

// loadState reads the state at path; nil when there is none.
func loadState(path string) (*state, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the import's state: %w", err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil || s.Version != stateVersion {
		return nil, fmt.Errorf("%s is not the state of an import (of this version): give another --state, or --restart to start over", path)
	}
	return &s, nil
}

// save replaces the state at path, whole or not at all: written beside
// it, synced, renamed over it, and the directory synced.
func (s *state) save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("save the import's state: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save the import's state to %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// match checks that files are the files of s, unchanged, and says how to
// start over when they are not.
func (s *state) match(kind, statePath string, files []input) error {
	again := "; to import them anew, run the command again with --restart (records stored already are recognised and counted once)"
	if s.Kind != kind {
		return fmt.Errorf("%s is the state of an import of %s, not %s: give another --state%s", statePath, s.Kind, kind, again)
	}
	if len(s.Files) != len(files) {
		return fmt.Errorf("%s is the state of an import of %d files, not %d: give the same files in the same order to resume%s", statePath, len(s.Files), len(files), again)
	}
	for i, f := range files {
		was := s.Files[i]
		switch {
		case was.Path != f.abs:
			return fmt.Errorf("file %d was %s when the import began, not %s: give the same files in the same order to resume%s", i+1, was.Path, f.abs, again)
		// Standard input's content is checked as the records imported
		// before are read again (source.skipTo); compressed or not, its
		// decompressed offsets are the same.
		case !f.stdin && (was.Size != f.size || was.HeadSHA256 != f.head || was.Gzip != f.gzip):
			return fmt.Errorf("%s changed since the import began (%d bytes now, %d then, or other content): restore it to resume%s", f.path, f.size, was.Size, again)
		case was.Format != f.format:
			return fmt.Errorf("%s was read as %s when the import began, not %s: give the same --format to resume%s", f.path, was.Format, f.format, again)
		}
	}
	return nil
}

func newState(kind, rejects string, files []input, now time.Time) *state {
	s := &state{Version: stateVersion, Kind: kind, Rejects: rejects, StartedAt: now, UpdatedAt: now}
	for _, f := range files {
		s.Files = append(s.Files, fileState{Path: f.abs, Size: f.size, HeadSHA256: f.head, Gzip: f.gzip, Format: f.format})
	}
	return s
}
