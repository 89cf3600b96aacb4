package devservices

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// capDACOverride is CAP_DAC_OVERRIDE (linux/capability.h).
const capDACOverride = 1

// StartPostgres starts a PostgreSQL server of Debian's postgresql package
// (the highest version under /usr/lib/postgresql, or initdb and postgres
// found in PATH) with its cluster in opts.Dir/data, created by initdb on
// first start: superuser postgres, trust authentication, UTF-8. It
// listens on loopback only, its Unix socket in the data directory, and
// runs without fsync: a server for development and tests, never for data
// that must survive a crash. It waits until a client can connect; clients
// connect to PostgresURL(s).
func StartPostgres(ctx context.Context, opts Options) (*Server, error) {
	initdb, postgres, err := postgresBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := prepareDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	attr, err := postgresUser()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		args := []string{"-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--no-instructions"}
		// C.UTF-8 is built into Debian 12's C library; C elsewhere.
		if _, err := os.Stat("/usr/lib/locale/C.utf8"); err == nil {
			args = append(args, "--locale=C.UTF-8")
		} else {
			args = append(args, "--no-locale")
		}
		cmd := exec.CommandContext(ctx, initdb, args...)
		cmd.Dir = "/" // see postgresUser
		cmd.SysProcAttr = attr()
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("initdb %s: %w\n%s", data, err, out)
		}
	}
	// A Unix socket's path has at most 107 bytes: past that, TCP alone.
	sockets := data
	if len(data)+len("/.s.PGSQL.65535") > 107 {
		sockets = ""
	}
	return onFreePort(opts, func(port int) (*Server, error) {
		cmd := exec.Command(postgres, "-D", data, "-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+sockets,
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "shared_buffers=32MB") // one of several servers on a small machine
		cmd.Dir = "/" // it enters the data directory itself; see postgresUser
		cmd.SysProcAttr = attr()
		s, err := startCmd(opts, "postgres", fmt.Sprintf("127.0.0.1:%d", port), dir, cmd)
		if err != nil {
			return nil, err
		}
		url := PostgresURL(s)
		ping := func() error {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			c, err := pgx.Connect(pctx, url)
			if err != nil {
				return err
			}
			defer c.Close(context.Background())
			return c.Ping(pctx)
		}
		if err := s.waitReady(ctx, ping, filepath.Join(dir, "postgres.out")); err != nil {
			return nil, err
		}
		return s, nil
	})
}

// PostgresURL is the URL a client connects to a PostgreSQL server with:
// the superuser postgres on the database postgres, without TLS.
func PostgresURL(s *Server) string {
	return "postgres://postgres@" + s.Addr + "/postgres?sslmode=disable"
}

// postgresBinaries finds initdb and postgres: Debian installs each
// version's under /usr/lib/postgresql/<version>/bin, off PATH.
func postgresBinaries() (initdb, postgres string, err error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return int(version(b)*1000 - version(a)*1000) }) // highest first
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return filepath.Join(d, "initdb"), filepath.Join(d, "postgres"), nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		// The postgres next to initdb, of the same version: a symlink in
		// PATH leads to Debian's directory.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			if pg := filepath.Join(filepath.Dir(real), "postgres"); isExec(pg) {
				return real, pg, nil
			}
		}
		if pg, err := exec.LookPath("postgres"); err == nil {
			return p, pg, nil
		}
	}
	return "", "", errors.New("PostgreSQL's initdb and postgres not found: install PostgreSQL (Debian/Ubuntu: apt-get install postgresql), or run scripts/install-deps.sh")
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// postgresUser says whom initdb and postgres run as. Both refuse to run as
// root, and tests and make run in containers do run as root: there they
// run as Debian's postgres user (made by the postgresql package), or
// nobody, with CAP_DAC_OVERRIDE as an ambient capability. The capability
// lets them into directories only root may enter (t.TempDir's parent is
// 0700), so the caller's directories need no changed owner or mode, and
// nothing is needed besides the kernel: runuser or setpriv would still
// need the directories opened up, and sudo may be missing. The capability
// takes effect only once the program runs, so they start in / and enter
// their directories themselves. The data directory that initdb creates is
// the user's own, as postgres requires. Any other user runs them as
// itself.
func postgresUser() (func() *syscall.SysProcAttr, error) {
	if os.Geteuid() != 0 {
		return func() *syscall.SysProcAttr { return nil }, nil
	}
	var u *user.User
	var err error
	for _, name := range []string{"postgres", "nobody"} {
		if u, err = user.Lookup(name); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL refuses to run as root, and neither the user postgres nor nobody exists to run it as: install Debian's postgresql package, which makes postgres: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %s has uid %q and gid %q: want numbers", u.Username, u.Uid, u.Gid)
	}
	return func() *syscall.SysProcAttr {
		return &syscall.SysProcAttr{
			Credential:  &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}},
			AmbientCaps: []uintptr{capDACOverride},
		}
	}, nil
}
