package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/openioc/ioc/internal/chstore"
)

// tableSize is one table's active parts in system.parts.
type tableSize struct {
	table            string
	rows             uint64
	compressed, data uint64
}

// kindPrefixes attribute a table to a kind of record by its name's
// prefix: its raw table, history, state, rollups and their views'
// targets. The rest (the ingest journal, devices, …) is counted apart.
var kindPrefixes = map[string]string{"dossier_": "dossiers", "camera_": "camera-events", "sensor_": "sensor-readings"}

// printStorage prints, per kind, the bytes on disk per record stored by
// the project's paths (c, d, e), for docs/capacity.md. It reads the active
// parts as they stand: later merges pack them somewhat tighter, so the
// figures err high.
func printStorage(ctx context.Context, store *chstore.Store, kinds []kind) error {
	rows, err := store.Conn().Query(ctx, `SELECT table, sum(rows), sum(data_compressed_bytes), sum(data_uncompressed_bytes)
		FROM system.parts WHERE active AND database = ? AND substring(table, 1, 6) != 'plain_' GROUP BY table`, store.Database())
	if err != nil {
		return fmt.Errorf("read system.parts: %w", err)
	}
	defer rows.Close()
	var sizes []tableSize
	for rows.Next() {
		var s tableSize
		if err := rows.Scan(&s.table, &s.rows, &s.compressed, &s.data); err != nil {
			return fmt.Errorf("read system.parts: %w", err)
		}
		sizes = append(sizes, s)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read system.parts: %w", err)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i].table < sizes[j].table })
	byKind := map[string][]tableSize{}
	for _, s := range sizes {
		k := "other"
		for p, name := range kindPrefixes {
			if strings.HasPrefix(s.table, p) {
				k = name
			}
		}
		byKind[k] = append(byKind[k], s)
	}
	fmt.Println("\nstorage: bytes on disk per record stored (active parts, compressed), the project's tables by kind")
	fmt.Println("| kind | records | raw table | all its tables | uncompressed | largest tables |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | --- |")
	for _, k := range kinds {
		var records, raw, all, data uint64
		for _, s := range byKind[k.name] {
			all += s.compressed
			data += s.data
			if s.table == k.raw {
				records, raw = s.rows, s.compressed
			}
		}
		if records == 0 {
			continue
		}
		list := byKind[k.name]
		sort.Slice(list, func(i, j int) bool { return list[i].compressed > list[j].compressed })
		var top []string
		for _, s := range list[:min(3, len(list))] {
			top = append(top, fmt.Sprintf("%s %.1f", s.table, float64(s.compressed)/float64(records)))
		}
		fmt.Printf("| %s | %d | %.1f | %.1f | %.1f | %s |\n", k.name, records, float64(raw)/float64(records),
			float64(all)/float64(records), float64(data)/float64(records), strings.Join(top, ", "))
	}
	var other uint64
	for _, s := range byKind["other"] {
		other += s.compressed
	}
	fmt.Printf("other tables (journal, devices, …): %d bytes in all\n", other)
	return nil
}
