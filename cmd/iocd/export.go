package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/openioc/ioc/ingest"
	"github.com/openioc/ioc/internal/config"
)

// exportCommand runs iocd export until it ends or SIGINT/SIGTERM stops it.
func exportCommand(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return exportRecords(ctx, args, os.Stdout, os.Stderr)
}

// exportRecords writes the stored records of a kind as NDJSON of their
// wire form:
//
//	iocd export dossiers|camera-events|sensor-readings [flags] [FILE]
//
// to FILE (gzip-compressed when it ends in .gz) or to stdout, so that
// iocd import reads them into another store: from one server into a
// cluster, e.g.
//
//	iocd export dossiers | IOC_CLICKHOUSE_CLUSTER=ioc … iocd import dossiers --state move.state -
//
// It reads the store (ingest.Export) and changes nothing, not even the
// schema.
func exportRecords(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := config.New("iocd export")
	f.SetOutput(flagOutput)
	f.Usage = func() {
		fmt.Fprintf(f.Output(), "Usage: iocd export dossiers|camera-events|sensor-readings [flags] [FILE]\n\n"+
			"Writes the stored records of a kind as NDJSON in the ingest API's wire format, each once, to FILE\n"+
			"(gzip-compressed when its name ends in .gz) or to stdout: what iocd import reads into another store,\n"+
			"e.g. from one server into a cluster (see the README's Scaling out). Changes nothing where it reads.\n"+
			"Flags come before the file:\n\n")
		f.PrintDefaults()
	}
	clickhouse := clickHouseFlags(f)
	tz := timezoneFlag(f)
	startup := f.Duration("startup-timeout", "IOC_STARTUP_TIMEOUT", 60*time.Second, "how long to wait for ClickHouse at start")
	makeLogger := loggerFlags(f)
	kind, files, err := kindAndFiles(f, args)
	if err != nil {
		return err
	}
	switch {
	case kind == "":
		return fmt.Errorf("say what to export: iocd export %s [flags] [FILE]", strings.Join(ingest.ImportKinds, "|"))
	case !slices.Contains(ingest.ImportKinds, kind):
		return fmt.Errorf("iocd export takes %s, not %q: iocd export %s [flags] [FILE]", strings.Join(ingest.ImportKinds, ", "), kind, strings.Join(ingest.ImportKinds, "|"))
	case len(files) > 1:
		return fmt.Errorf("iocd export writes one file, and got %d (%s): name one, or none for stdout", len(files), strings.Join(files, ", "))
	}
	logger := makeLogger(stderr)

	startCtx, cancelStart := context.WithTimeout(ctx, *startup)
	defer cancelStart()
	store, err := openStore(startCtx, clickhouse(*tz), logger.With("component", "chstore"))
	if err != nil {
		return err
	}
	defer store.Close()
	cancelStart()

	out, name := stdout, "stdout"
	var file *os.File
	if len(files) == 1 && files[0] != "-" {
		if file, err = os.Create(files[0]); err != nil {
			return fmt.Errorf("create the export file: %w", err)
		}
		defer file.Close()
		out, name = file, files[0]
	}
	buf := bufio.NewWriterSize(out, 1<<20)
	w := io.Writer(buf)
	var zw *gzip.Writer
	if strings.HasSuffix(name, ".gz") {
		zw = gzip.NewWriter(buf)
		w = zw
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	n, err := ingest.Export(ctx, store.Conn(), store.Database(), kind, func(r any) error { return enc.Encode(r) })
	if err != nil {
		return fmt.Errorf("export %s after %d records: %w", kind, n, err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	if err := buf.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if file != nil {
		if err := file.Close(); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	logger.Info("exported", "kind", kind, "records", n, "to", name)
	return nil
}
