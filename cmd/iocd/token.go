package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/config"
)

// token prints a signed token: iocd token --role viewer --area 26740 --ttl 24h.
func token(args []string, out io.Writer) error {
	f := config.New("iocd token")
	secret := f.Secret("jwt-secret", "IOC_JWT_SECRET", "signing secret")
	hierarchy := f.String("hierarchy", "IOC_HIERARCHY", "vn-2025", "hierarchy the area codes belong to")
	geoDir := f.String("geo-dir", "IOC_GEO_DIR", "", "directory of imported hierarchies")
	role := f.FlagSet.String("role", "viewer", "admin, ingest, viewer or operator (a viewer that may also acknowledge and resolve alarms)")
	sub := f.FlagSet.String("sub", "", "subject: who the token is for (default: the role)")
	ttl := f.FlagSet.Duration("ttl", 24*time.Hour, "lifetime")
	var areas []string
	f.FlagSet.Func("area", "unit code whose subtree the token may read; repeat or comma-separate; * for all", func(v string) error {
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				areas = append(areas, a)
			}
		}
		return nil
	})
	if err := f.Parse(args); err != nil {
		return err
	}
	units, err := loadUnits(*geoDir)
	if err != nil {
		return err
	}
	h, ok := units.Hierarchy(*hierarchy)
	if !ok {
		return fmt.Errorf("unknown hierarchy %q", *hierarchy)
	}
	for _, a := range areas {
		if _, ok := h.Unit(a); !ok && a != auth.AllAreas {
			return fmt.Errorf("area %q is not a unit of %s", a, h.Name())
		}
	}
	switch r := auth.Role(*role); {
	case (r == auth.Viewer || r == auth.Operator) && len(areas) == 0:
		return fmt.Errorf("a %s token needs --area (a unit code, or * for all)", r)
	case r == auth.Admin && len(areas) == 0:
		areas = []string{auth.AllAreas}
	}
	tok, err := auth.Issue([]byte(*secret), auth.Principal{Subject: *sub, Role: auth.Role(*role), Areas: areas}, *ttl, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, tok)
	return err
}

// migrate applies the schema and exits, for operators who migrate before
// rolling out nodes.
func migrate(args []string) error {
	f := config.New("iocd migrate")
	clickhouse := clickHouseFlags(f)
	tz := timezoneFlag(f)
	if err := f.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logger := newLogger("info", "text")
	cfg := clickhouse(*tz)
	store, err := chstore.Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	applied, err := store.Migrate(ctx)
	if err != nil {
		return err
	}
	logger.Info("schema is current", "applied", applied, "database", cfg.Database)
	return nil
}
