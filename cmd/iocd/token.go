package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/term"

	"github.com/openioc/ioc/api"
	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/chstore"
	"github.com/openioc/ioc/internal/config"
	"github.com/openioc/ioc/internal/qrcode"
	"github.com/openioc/ioc/internal/redisconn"
)

// token issues, revokes and lists tokens:
//
//	iocd token --role viewer --area 26740 --ttl 24h   print a signed token (its id on stderr)
//	iocd token --kiosk s1 --area 79                  print a screen's kiosk token, its short URL and the URL's QR code
//	iocd token qr LINK                                print a kiosk link's QR code again
//	iocd token revoke --reason "…" ID|TOKEN           revoke a token on every node
//	iocd token revoked                                list the revoked tokens
func token(args []string, out, errOut io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "revoke":
			return revokeToken(args[1:], out)
		case "revoked":
			return listRevoked(args[1:], out)
		case "qr":
			return printQR(args[1:], out)
		}
	}
	f := config.New("iocd token")
	secret := f.Secret("jwt-secret", "IOC_JWT_SECRET", "signing secret (the server's IOC_JWT_SECRET)")
	secretFile := f.FlagSet.String("secret-file", "", "file holding the signing secret; default: IOC_JWT_SECRET, else $VAR/jwt-secret or var/jwt-secret (where make run keeps it)")
	hierarchy := f.String("hierarchy", "IOC_HIERARCHY", "vn-2025", "hierarchy the area codes belong to")
	geoDir := f.String("geo-dir", "IOC_GEO_DIR", "", "directory of imported hierarchies")
	role := f.FlagSet.String("role", "viewer", "admin, ingest, viewer or operator (a viewer that may also acknowledge and resolve alarms and register devices); kiosk with --kiosk")
	sub := f.FlagSet.String("sub", "", "subject: who the token is for (default: the role)")
	ttl := f.FlagSet.Duration("ttl", 24*time.Hour, "lifetime (a kiosk token's default: a year)")
	kiosk := f.FlagSet.String("kiosk", "", "issue a kiosk token for this screen id, and store its short link (/k/{code}) in ClickHouse")
	var qr qrFlag
	f.FlagSet.Var(&qr, "qr", "with --kiosk, print the link's QR code under it; default: when the output is a terminal (--qr=false: never)")
	clickhouse := clickHouseFlags(f)
	tz := timezoneFlag(f)
	publicURL := f.String("public-url", "IOC_PUBLIC_URL", "", "base URL the wall PCs reach the server at, for the kiosk link; empty: http://127.0.0.1 and the port of IOC_HTTP_ADDR")
	httpAddr := f.String("http-addr", "IOC_HTTP_ADDR", ":8080", "the server's listen address, for the kiosk link when IOC_PUBLIC_URL is empty")
	var areas []string
	f.FlagSet.Func("area", "unit code whose subtree the token covers; repeat or comma-separate; * for all", func(v string) error {
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
	key, err := signingSecret(*secretFile, *secret)
	if err != nil {
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
	if qr.set && qr.on && *kiosk == "" {
		return errors.New("--qr prints a kiosk link's QR code: give --kiosk SCREEN, or print a link's with iocd token qr LINK")
	}
	if *kiosk != "" {
		return kioskToken(*kiosk, *role, areas, *sub, *ttl, f, key, kioskPlace{clickhouse(*tz), *publicURL, *httpAddr}, qr.print(out), out, errOut)
	}
	switch r := auth.Role(*role); {
	case r == auth.Kiosk:
		return errors.New("a kiosk token is for one screen: issue it with --kiosk SCREEN (and --area)")
	case r != auth.Admin && slices.Contains(auth.Roles, r) && len(areas) == 0:
		article := "a"
		if strings.ContainsAny(string(r)[:1], "aeiou") {
			article = "an"
		}
		return fmt.Errorf("%s %s token needs --area (a unit code, or * for all): every token but an admin's is scoped", article, r)
	case r == auth.Admin && len(areas) == 0:
		areas = []string{auth.AllAreas}
	}
	now := time.Now()
	p := auth.Principal{Subject: *sub, Role: auth.Role(*role), Areas: areas, ID: auth.NewID()}
	tok, err := auth.Issue(key, p, *ttl, now)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(out, tok); err != nil {
		return err
	}
	_, err = fmt.Fprintf(errOut, "token id %s, expires %s; revoke it with: iocd token revoke --reason \"…\" %s\n",
		p.ID, now.Add(*ttl).UTC().Format(time.RFC3339), p.ID)
	return err
}

// kioskPlace is where a kiosk token's link is kept and what it points at.
type kioskPlace struct {
	clickhouse          chstore.Config
	publicURL, httpAddr string
}

// kioskToken issues a kiosk token for screen, stores its short link where
// the nodes open it, and prints the token, then the link, then (when qr)
// the link's QR code.
func kioskToken(screen, role string, areas []string, sub string, ttl time.Duration, f *config.FlagSet, key []byte, place kioskPlace, qr bool, out, errOut io.Writer) error {
	if role != string(auth.Viewer) && role != string(auth.Kiosk) { // viewer: the flag's default
		return fmt.Errorf("--kiosk issues a kiosk token; leave --role out (got %s)", role)
	}
	if !auth.ValidScreenID(screen) {
		return fmt.Errorf("--kiosk %q is not a screen id: 1 to 63 lower-case letters, digits and '-', as in the screen's document", screen)
	}
	if len(areas) == 0 {
		return errors.New("a kiosk token needs --area: the units its screen shows (the screen's areas), e.g. --area 79")
	}
	ttlSet := false
	f.FlagSet.Visit(func(fl *flag.Flag) { ttlSet = ttlSet || fl.Name == "ttl" })
	if !ttlSet {
		ttl = auth.DefaultKioskTTL
	}
	base := place.publicURL
	if base == "" {
		_, port, err := net.SplitHostPort(place.httpAddr)
		if err != nil {
			return fmt.Errorf("IOC_HTTP_ADDR %q: %w; or give --public-url", place.httpAddr, err)
		}
		base = "http://127.0.0.1:" + port
	} else if u, err := api.ParsePublicURL(base); err != nil {
		return fmt.Errorf("--public-url: %w", err)
	} else {
		base = u
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := chstore.Open(ctx, place.clickhouse, newLogger("warn", "text"))
	if err != nil {
		return fmt.Errorf("the kiosk link is kept in ClickHouse: %w", err)
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		return fmt.Errorf("bring the schema up to date: %w", err)
	}
	by := "iocd token --kiosk"
	if u, err := user.Current(); err == nil {
		by += " (" + u.Username + ")"
	}
	kt, err := auth.NewKiosks(key, auth.NewClickHouseKioskLinks(store), nil).Issue(ctx, screen, areas, sub, ttl, by)
	if err != nil {
		return err
	}
	link := base + "/k/" + kt.Code
	if _, err := fmt.Fprintf(out, "%s\n%s\n", kt.Token, link); err != nil {
		return err
	}
	if qr {
		if err := writeQR(out, link); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(errOut, "kiosk token %s for screen %s, expires %s; open the link on the screen (it stops working when the token is revoked: iocd token revoke --reason \"…\" %s)\n",
		kt.ID, screen, kt.ExpiresAt.Format(time.RFC3339), kt.ID)
	return err
}

// qrFlag is --qr. Unset, the QR code is printed when the output is a
// terminal, where a person may scan it, and not into a pipe or a file,
// where a script reads the token and the link line by line; --qr prints it
// anyway, --qr=false never.
type qrFlag struct{ set, on bool }

func (q *qrFlag) String() string {
	if q == nil || !q.set {
		return ""
	}
	return strconv.FormatBool(q.on)
}

func (q *qrFlag) Set(s string) error {
	on, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("--qr=%s: give --qr=true or --qr=false", s)
	}
	q.set, q.on = true, on
	return nil
}

func (q *qrFlag) IsBoolFlag() bool { return true }

// print says whether to print the QR code on out.
func (q *qrFlag) print(out io.Writer) bool {
	if q.set {
		return q.on
	}
	f, ok := out.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// writeQR writes link's QR code in half blocks, for a phone to scan off the
// terminal.
func writeQR(out io.Writer, link string) error {
	c, err := qrcode.New(link)
	if err != nil {
		return fmt.Errorf("the QR code of the kiosk link: %w", err)
	}
	_, err = io.WriteString(out, c.Terminal())
	return err
}

// printQR is iocd token qr LINK: a kiosk link's QR code again, whatever the
// output (make run prints the kept link's).
func printQR(args []string, out io.Writer) error {
	f := config.New("iocd token qr")
	if err := f.Parse(args); err != nil {
		return err
	}
	if f.FlagSet.NArg() != 1 || f.FlagSet.Arg(0) == "" {
		return errors.New("usage: iocd token qr LINK, with the kiosk link iocd token --kiosk printed, e.g. http://127.0.0.1:8080/k/7k3m9q2x4p")
	}
	return writeQR(out, f.FlagSet.Arg(0))
}

// signingSecret finds the secret tokens are signed with: --secret-file,
// else IOC_JWT_SECRET (or --jwt-secret), else the file make run keeps.
func signingSecret(file, value string) ([]byte, error) {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read the signing secret: %w", err)
		}
		b = bytes.TrimRight(b, "\r\n")
		if len(b) == 0 {
			return nil, fmt.Errorf("signing secret file %s is empty", name)
		}
		return b, nil
	}
	if file != "" {
		return read(file)
	}
	if value != "" {
		return []byte(value), nil
	}
	var tried []string
	if dir := os.Getenv("VAR"); dir != "" {
		tried = append(tried, filepath.Join(dir, "jwt-secret"))
	}
	tried = append(tried, filepath.Join("var", "jwt-secret"))
	for _, name := range tried {
		if _, err := os.Stat(name); err == nil {
			return read(name)
		}
	}
	return nil, fmt.Errorf("no signing secret: pass --secret-file, or set IOC_JWT_SECRET to the server's (make run keeps it in var/jwt-secret; not found at %s)",
		strings.Join(tried, " nor "))
}

// revocationFlags are the settings revoke and revoked share: where
// ClickHouse keeps the list, and the Redis that announces a revocation.
func revocationFlags(f *config.FlagSet) func(ctx context.Context) (*auth.Revocations, func(), error) {
	clickhouse := clickHouseFlags(f)
	tz := timezoneFlag(f)
	redisConn := redisconn.Flags(f, "Redis shared by the nodes, to announce a revocation at once; empty (and no sentinels): nodes apply it at their next refresh (5 s)")
	redisPrefix := f.String("redis-prefix", "IOC_REDIS_PREFIX", "ioc:", "prefix of the Redis channels")
	return func(ctx context.Context) (*auth.Revocations, func(), error) {
		logger := newLogger("warn", "text")
		store, err := chstore.Open(ctx, clickhouse(*tz), logger)
		if err != nil {
			return nil, nil, err
		}
		closers := []func(){func() { _ = store.Close() }}
		closeAll := func() {
			for _, c := range slices.Backward(closers) {
				c()
			}
		}
		if _, err := store.Migrate(ctx); err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("bring the schema up to date: %w", err)
		}
		var pub auth.Announcer
		if shared := redisConn(); shared.Enabled() {
			rdb, err := redisconn.Dial(ctx, shared)
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			closers = append(closers, func() { _ = rdb.Close() })
			rb, err := bus.NewRedis(rdb, bus.RedisConfig{Prefix: *redisPrefix}, logger, nil)
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			pub = rb
		}
		l := auth.NewRevocations(auth.RevocationsConfig{}, auth.NewClickHouseRevocations(store), pub, logger)
		if err := l.Load(ctx); err != nil {
			closeAll()
			return nil, nil, err
		}
		return l, closeAll, nil
	}
}

// revokeToken revokes a token by its id, or the token itself (whose id
// and expiry it reads; it need not be valid).
func revokeToken(args []string, out io.Writer) error {
	f := config.New("iocd token revoke")
	open := revocationFlags(f)
	reason := f.FlagSet.String("reason", "", "why, e.g. \"laptop lost\" (required)")
	by := f.FlagSet.String("by", "", "who revokes it (default: the user running the command)")
	if err := f.Parse(args); err != nil {
		return err
	}
	if f.FlagSet.NArg() != 1 {
		return errors.New("usage: iocd token revoke --reason \"…\" ID (or the token itself)")
	}
	r := auth.Revocation{ID: f.FlagSet.Arg(0), Reason: *reason, RevokedBy: *by}
	if strings.Count(r.ID, ".") == 2 {
		var c jwt.RegisteredClaims
		if _, _, err := jwt.NewParser().ParseUnverified(r.ID, &c); err != nil || c.ID == "" {
			return fmt.Errorf("the token given carries no id (it was issued before tokens had ids, and stays valid until it expires): %v", err)
		}
		r.ID = c.ID
		if c.ExpiresAt != nil {
			exp := c.ExpiresAt.Time.UTC()
			r.ExpiresAt = &exp
		}
	}
	if r.RevokedBy == "" {
		r.RevokedBy = "iocd token revoke"
		if u, err := user.Current(); err == nil {
			r.RevokedBy += " (" + u.Username + ")"
		}
	}
	if err := auth.CheckRevocation(r); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, closeAll, err := open(ctx)
	if err != nil {
		return err
	}
	defer closeAll()
	r, err = l.Revoke(ctx, r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "token %s revoked at %s by %s: %s\n", r.ID, r.RevokedAt.Format(time.RFC3339), r.RevokedBy, r.Reason)
	return err
}

// listRevoked prints the revoked tokens, newest first.
func listRevoked(args []string, out io.Writer) error {
	f := config.New("iocd token revoked")
	open := revocationFlags(f)
	format := f.FlagSet.String("format", "text", "text or json")
	if err := f.Parse(args); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("--format %q: use text or json", *format)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, closeAll, err := open(ctx)
	if err != nil {
		return err
	}
	defer closeAll()
	list := l.List()
	if *format == "json" {
		return json.NewEncoder(out).Encode(map[string]any{"count": len(list), "revocations": list})
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tREVOKED AT\tBY\tREASON\tEXPIRES")
	for _, r := range list {
		exp := "unknown"
		if r.ExpiresAt != nil {
			exp = r.ExpiresAt.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.RevokedAt.Format(time.RFC3339), r.RevokedBy, r.Reason, exp)
	}
	return w.Flush()
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
