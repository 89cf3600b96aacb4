package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// importLoad is how load stores the events when it goes through `iocd
// import dossiers -`: the binary, where ClickHouse is, and a directory for
// the import's state and rejects files.
type importLoad struct {
	iocd, addr, db, dir string
}

// loadByImport draws the same events as load, in the same order, and pipes
// them as NDJSON wire records into `iocd import dossiers -`: every event
// goes through the validation, duplicate check, derivation and rollups of
// live ingest. It returns how long the import took, from the first byte
// sent to the process's exit, which comes once every batch is finished.
func loadByImport(ctx context.Context, u *universe, cfg loadConfig, im importLoad, logger *slog.Logger) (time.Duration, error) {
	n := u.dossiersFor(cfg.events)
	state, rejects := filepath.Join(im.dir, "import.state.json"), filepath.Join(im.dir, "import.rejects.ndjson")
	for _, p := range []string{state, rejects} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
	}
	cmd := exec.CommandContext(ctx, im.iocd, "import", "dossiers", "--state", state, "--rejects", rejects, "-")
	cmd.Env = append(os.Environ(), "IOC_CLICKHOUSE_ADDR="+im.addr, "IOC_CLICKHOUSE_DATABASE="+im.db,
		"IOC_REDIS_ADDR=", "IOC_TIMEZONE="+zone.String(), "IOC_HIERARCHY="+hierarchyName, "IOC_LOG_LEVEL=warn")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s import: %w", im.iocd, err)
	}
	logger.Info("importing", "iocd", im.iocd, "events", cfg.events)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	batches := make(chan []item, 4)
	var wg sync.WaitGroup
	var werr error
	wg.Go(func() {
		w := bufio.NewWriterSize(stdin, 1<<20)
		var line []byte
		for b := range batches {
			if werr != nil {
				continue
			}
			for _, it := range b {
				line = appendWire(line[:0], it)
				if _, err := w.Write(line); err != nil {
					werr = fmt.Errorf("write to iocd import: %w", err)
					cancel(werr)
					break
				}
			}
		}
		if werr == nil {
			werr = w.Flush()
		}
		if err := stdin.Close(); werr == nil {
			werr = err
		}
	})
	cfg.noDeltas = true
	perr := produce(ctx, u, n, cfg, batches)
	close(batches)
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("iocd import: %w", err)
	}
	took := time.Since(start)
	if err := errors.Join(perr, werr); err != nil {
		return 0, err
	}
	if st, err := os.Stat(rejects); err == nil && st.Size() > 0 {
		return 0, fmt.Errorf("iocd import rejected generated events: see %s", rejects)
	}
	return took, nil
}

// appendWire appends item it as one NDJSON line of the dossier wire format.
// The generator's strings are plain ASCII codes, so they need no escaping.
func appendWire(b []byte, it item) []byte {
	e := it.p.events[it.i]
	str := func(b []byte, key, v string) []byte {
		b = append(b, `,"`...)
		b = append(b, key...)
		b = append(b, `":"`...)
		b = append(b, v...)
		return append(b, '"')
	}
	at := func(b []byte, key string, t time.Time) []byte {
		b = append(b, `,"`...)
		b = append(b, key...)
		b = append(b, `":"`...)
		b = t.In(zone).AppendFormat(b, time.RFC3339)
		return append(b, '"')
	}
	flag := func(b []byte, key string, v bool) []byte {
		if !v {
			return b
		}
		b = append(b, `,"`...)
		b = append(b, key...)
		return append(b, `":true`...)
	}
	b = append(b, `{"event_id":"`...)
	b = append(b, e.EventID...)
	b = append(b, '"')
	b = str(b, "dossier_id", dossierID(it.p.idx))
	b = str(b, "procedure_code", e.Procedure)
	b = str(b, "sector", e.Sector)
	b = str(b, "area_code", e.Area)
	b = str(b, "channel", e.Channel)
	b = str(b, "status", e.Status)
	b = at(b, "occurred_at", e.OccurredAt)
	if e.ReceivedAt != nil {
		b = at(b, "received_at", *e.ReceivedAt)
	}
	if e.DueAt != nil {
		b = at(b, "due_at", *e.DueAt)
	}
	if e.OnlineLevel != "" {
		b = str(b, "online_level", e.OnlineLevel)
	}
	b = flag(b, "digitized", e.Digitized)
	b = flag(b, "e_result", e.EResult)
	b = flag(b, "paid_online", e.PaidOnline)
	b = flag(b, "reused_data", e.ReusedData)
	b = flag(b, "fee_required", e.FeeRequired)
	return append(b, "}\n"...)
}

// metOrNot names whether a target holds.
func metOrNot(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}
