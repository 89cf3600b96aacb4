// Package config binds command-line flags to IOC_* environment variables:
// every setting can be given either way, and a flag wins over the variable.
// Secrets can also come from a file named by the variable with _FILE
// appended, and their values are never printed, not even by -h.
//
// Concurrency: a FlagSet is used by one goroutine during start-up.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// FlagSet is a flag.FlagSet whose defaults come from the environment.
type FlagSet struct {
	*flag.FlagSet
	errs []error
}

// New returns an empty set for the command called name.
func New(name string) *FlagSet {
	return &FlagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError)}
}

func (f *FlagSet) env(env string) (string, bool) {
	v, ok := os.LookupEnv(env)
	return v, ok && v != ""
}

func usage(u, env string) string { return fmt.Sprintf("%s (env %s)", u, env) }

// String defines a string setting.
func (f *FlagSet) String(name, env, def, u string) *string {
	if v, ok := f.env(env); ok {
		def = v
	}
	return f.FlagSet.String(name, def, usage(u, env))
}

// Secret defines a setting whose value must never be shown (a token, a
// secret, a password): -h says "set" when it has one, never what it is.
// It is read from env, or from the file named by env_FILE (e.g. a systemd
// credential), which must not be readable by group or others.
func (f *FlagSet) Secret(name, env, u string) *string {
	v := new(secretValue)
	if s, ok := f.env(env); ok {
		v.s = s
	} else if path, ok := f.env(env + "_FILE"); ok {
		s, err := readSecretFile(env+"_FILE", path)
		if err != nil {
			f.errs = append(f.errs, err)
		}
		v.s = s
	}
	u = fmt.Sprintf("%s (env %s or %s_FILE)", u, env, env)
	if v.s != "" {
		u += "; set"
	}
	f.FlagSet.Var(v, name, u)
	return &v.s
}

// secretValue hides its value from flag's defaults: String is what -h
// prints, and an empty one prints nothing.
type secretValue struct{ s string }

func (v *secretValue) String() string     { return "" }
func (v *secretValue) Set(s string) error { v.s = s; return nil }

// readSecretFile reads a secret from path, named by variable, without its
// trailing newline.
func readSecretFile(variable, path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s=%s: %w", variable, path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s=%s is readable by others (mode %04o): chmod 600 it, owned by the user iocd runs as", variable, path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s=%s: %w", variable, path, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// Int defines an integer setting.
func (f *FlagSet) Int(name, env string, def int, u string) *int {
	if v, ok := f.env(env); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: want an integer", env, v))
		} else {
			def = n
		}
	}
	return f.FlagSet.Int(name, def, usage(u, env))
}

// Float defines a decimal setting.
func (f *FlagSet) Float(name, env string, def float64, u string) *float64 {
	if v, ok := f.env(env); ok {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: want a number", env, v))
		} else {
			def = n
		}
	}
	return f.FlagSet.Float64(name, def, usage(u, env))
}

// Duration defines a duration setting such as 200ms or 5m.
func (f *FlagSet) Duration(name, env string, def time.Duration, u string) *time.Duration {
	if v, ok := f.env(env); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: want a duration such as 200ms, 5s or 5m", env, v))
		} else {
			def = d
		}
	}
	return f.FlagSet.Duration(name, def, usage(u, env))
}

// Parse reads args; it reports malformed environment values too.
func (f *FlagSet) Parse(args []string) error {
	if err := f.FlagSet.Parse(args); err != nil {
		return err
	}
	return errors.Join(f.errs...)
}
