// Package redisconn owns how a process reaches the Redis its nodes share:
// one server at an address, or the master that a group of Redis Sentinels
// names, followed through a failover. Its settings (flags and IOC_REDIS_*
// variables) are declared here once, for iocd and each subcommand that
// speaks to the nodes' Redis.
//
// A failover is to the bus what a Redis restart is: a replica promoted
// before it received the last writes lacks them, as an empty Redis does.
// The bus's resync and the leases' fencing tokens, which already survive a
// restart, therefore cover a failover too.
//
// Concurrency: a Config is a value; the client New returns is safe for
// concurrent use, as go-redis's clients are.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/openioc/ioc/internal/config"
)

// DefaultMaster is the master name the sentinels are asked for when
// IOC_REDIS_SENTINEL_MASTER is not set.
const DefaultMaster = "ioc"

// Config says where Redis is. The zero value is no Redis at all.
type Config struct {
	// Addr is one Redis server's host:port.
	Addr string
	// Password is Redis's (the master's and its replicas').
	Password string
	// SentinelAddrs are the host:port of the sentinels to ask for the
	// master; set instead of Addr.
	SentinelAddrs []string
	// SentinelMaster is the name the sentinels monitor the master under;
	// empty is DefaultMaster.
	SentinelMaster string
	// SentinelPassword is the sentinels' own, if they require one.
	SentinelPassword string
}

// Enabled reports whether a Redis is configured.
func (c Config) Enabled() bool { return c.Addr != "" || len(c.SentinelAddrs) > 0 }

func (c Config) master() string {
	if c.SentinelMaster == "" {
		return DefaultMaster
	}
	return c.SentinelMaster
}

// String says where Redis is, for logs and errors (never the passwords).
func (c Config) String() string {
	if len(c.SentinelAddrs) > 0 {
		return fmt.Sprintf("master %q of sentinels %s (IOC_REDIS_SENTINEL_ADDRS)", c.master(), strings.Join(c.SentinelAddrs, ","))
	}
	return c.Addr + " (IOC_REDIS_ADDR)"
}

// Validate refuses both an address and sentinels: which one is meant
// would be a guess.
func (c Config) Validate() error {
	if c.Addr != "" && len(c.SentinelAddrs) > 0 {
		return errors.New("both IOC_REDIS_ADDR and IOC_REDIS_SENTINEL_ADDRS are set: set the sentinels alone, and they name the master")
	}
	for _, a := range c.SentinelAddrs {
		if !strings.Contains(a, ":") {
			return fmt.Errorf("sentinel address %q in IOC_REDIS_SENTINEL_ADDRS: want host:port, e.g. 10.0.0.5:26379", a)
		}
	}
	return nil
}

// New returns the client for c: with sentinels, go-redis's failover
// client, which asks them for the master, follows their announcement of
// a new one, and redials its connections and subscriptions there.
func New(c Config) *redis.Client {
	if len(c.SentinelAddrs) > 0 {
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:       c.master(),
			SentinelAddrs:    c.SentinelAddrs,
			SentinelPassword: c.SentinelPassword,
			Password:         c.Password,
		})
	}
	return redis.NewClient(&redis.Options{Addr: c.Addr, Password: c.Password})
}

// Dial validates c, builds its client and checks that Redis answers; the
// error says where it looked.
func Dial(ctx context.Context, c Config) (*redis.Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	rdb := New(c)
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("connect to redis at %s: %w", c, err)
	}
	return rdb, nil
}

// Flags declares the Redis settings on f: addrHelp says what the address
// is for in this command (and what leaving it empty does). The function
// it returns gives the parsed Config, once f is parsed.
func Flags(f *config.FlagSet, addrHelp string) func() Config {
	addr := f.String("redis-addr", "IOC_REDIS_ADDR", "", addrHelp)
	pass := f.Secret("redis-password", "IOC_REDIS_PASSWORD", "Redis password")
	sentinels := f.String("redis-sentinel-addrs", "IOC_REDIS_SENTINEL_ADDRS", "", "comma-separated host:port of Redis Sentinels that name the master, instead of --redis-addr")
	master := f.String("redis-sentinel-master", "IOC_REDIS_SENTINEL_MASTER", DefaultMaster, "the name the sentinels monitor the master under")
	sentinelPass := f.Secret("redis-sentinel-password", "IOC_REDIS_SENTINEL_PASSWORD", "the sentinels' own password, if they require one")
	return func() Config {
		c := Config{Addr: *addr, Password: *pass, SentinelMaster: *master, SentinelPassword: *sentinelPass}
		for _, a := range strings.Split(*sentinels, ",") {
			if a = strings.TrimSpace(a); a != "" {
				c.SentinelAddrs = append(c.SentinelAddrs, a)
			}
		}
		return c
	}
}
