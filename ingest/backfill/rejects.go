package backfill

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Reject is one line of the rejects file: a record that was not stored,
// where it is, why (the problems the ingest API gives, one by one), and its
// text as it stands in the file.
type Reject struct {
	File string `json:"file"`
	Line int64  `json:"line"`
	// Record is a CSV record's number after the header row (a quoted
	// cell may span lines); NDJSON has a record per line.
	Record   int64    `json:"record,omitempty"`
	Problems []string `json:"problems"`
	Raw      string   `json:"raw"`
}

// rejectsFile appends rejects to a file created when the first is written.
type rejectsFile struct {
	path string
	f    *os.File
	w    *bufio.Writer
	n    int64 // its length, written and buffered
}

// openRejects opens the rejects file at path cut back to keep bytes: what
// the import's state recorded, or 0 for a new import.
func openRejects(path string, keep int64) (*rejectsFile, error) {
	r := &rejectsFile{path: path, n: keep}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && keep == 0:
		return r, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("the rejects file %s is gone, with the %d bytes of rejects listed before the interruption: restore it to resume, or run again with --restart", path, keep)
	case err != nil:
		return nil, fmt.Errorf("rejects file: %w", err)
	case st.Size() < keep:
		return nil, fmt.Errorf("the rejects file %s holds %d bytes, fewer than the %d listed before the interruption: restore it to resume, or run again with --restart", path, st.Size(), keep)
	}
	if err := r.openFile(); err != nil {
		return nil, err
	}
	// What the interrupted import listed after its last saved state is
	// listed again as its records are read again.
	if err := r.f.Truncate(keep); err != nil {
		r.f.Close()
		return nil, fmt.Errorf("cut the rejects file %s back to where the import stopped: %w", path, err)
	}
	if _, err := r.f.Seek(keep, io.SeekStart); err != nil {
		r.f.Close()
		return nil, fmt.Errorf("rejects file %s: %w", path, err)
	}
	return r, nil
}

func (r *rejectsFile) openFile() error {
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open the rejects file: %w", err)
	}
	r.f, r.w = f, bufio.NewWriterSize(f, 64<<10)
	return nil
}

func (r *rejectsFile) write(rej Reject) error {
	if r.f == nil {
		if err := r.openFile(); err != nil {
			return err
		}
		if err := r.f.Truncate(0); err != nil {
			return fmt.Errorf("rejects file %s: %w", r.path, err)
		}
	}
	b, err := json.Marshal(rej)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if _, err := r.w.Write(b); err != nil {
		return fmt.Errorf("write to the rejects file %s: %w", r.path, err)
	}
	r.n += int64(len(b))
	return nil
}

// sync makes what was written durable and returns the file's length.
func (r *rejectsFile) sync() (int64, error) {
	if r.f == nil {
		return r.n, nil
	}
	if err := r.w.Flush(); err != nil {
		return 0, fmt.Errorf("write to the rejects file %s: %w", r.path, err)
	}
	if err := r.f.Sync(); err != nil {
		return 0, fmt.Errorf("sync the rejects file %s: %w", r.path, err)
	}
	return r.n, nil
}

func (r *rejectsFile) close() error {
	if r.f == nil {
		return nil
	}
	_, err := r.sync()
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	return err
}
