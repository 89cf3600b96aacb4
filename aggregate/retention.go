package aggregate

import (
	"context"
	"strconv"
)

// dropExpiredMinutes drops the daily partitions of the minute rollup that
// are older than the retention: 18.16 has no TTL, so the application prunes.
func (a *Aggregator) dropExpiredMinutes(ctx context.Context) {
	cutoff, _ := strconv.Atoi(a.now().Add(-a.cfg.MinuteRetention).UTC().Format("20060102"))
	rows, err := a.q.conn.Query(ctx, `SELECT DISTINCT partition FROM system.parts
		WHERE database = ? AND table = 'dossier_flow_minute' AND active`, a.q.db)
	if err != nil {
		if ctx.Err() == nil {
			a.logger.Warn("list minute rollup partitions", "err", err)
		}
		return
	}
	var old []int
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			a.logger.Warn("list minute rollup partitions", "err", err)
			break
		}
		// Only whole yyyymmdd numbers are ever put into SQL text.
		if day, err := strconv.Atoi(p); err == nil && day < cutoff {
			old = append(old, day)
		}
	}
	rows.Close()
	for _, day := range old {
		if err := a.q.conn.Exec(ctx, "ALTER TABLE "+a.q.db+".dossier_flow_minute DROP PARTITION "+strconv.Itoa(day)); err != nil {
			a.logger.Warn("drop minute rollup partition", "partition", day, "err", err)
			continue
		}
		a.logger.Info("dropped expired minute rollup partition", "partition", day)
	}
}
