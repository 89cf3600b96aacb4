package redisconn_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/openioc/ioc/internal/redisconn"
	"github.com/openioc/ioc/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// Through sentinels, a client keeps writing and its subscription keeps
// receiving after the master is killed: the sentinels promote the
// replica and the client follows them there. A client of the old
// master's address alone (the negative control) cannot.
func TestFailoverClientFollowsTheNewMaster(t *testing.T) {
	s := testenv.StartSentinels(t)
	ctx := context.Background()
	rdb, err := redisconn.Dial(ctx, redisconn.Config{SentinelAddrs: s.Addrs(), SentinelMaster: s.Master})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	plain := redis.NewClient(&redis.Options{Addr: s.Primary.Addr, MaxRetries: -1})
	defer plain.Close()
	if err := rdb.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatalf("set through the sentinels: %v", err)
	}
	sub := rdb.Subscribe(ctx, "ch")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	msgs := sub.Channel()
	replica := redis.NewClient(&redis.Options{Addr: s.Replica.Addr})
	defer replica.Close()
	// The replica has the write before the master goes.
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		v, err := replica.Get(ctx, "k").Result()
		return v == "before", fmt.Sprintf("replica holds %q (%v)", v, err)
	})

	s.Primary.Kill()

	var n int
	testenv.Eventually(t, 60*time.Second, func() (bool, string) {
		n++
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := rdb.Set(c, "k", fmt.Sprint("after-", n), 0).Err(); err != nil {
			return false, "set after the kill: " + err.Error()
		}
		if err := rdb.Publish(c, "ch", fmt.Sprint("m-", n)).Err(); err != nil {
			return false, "publish after the kill: " + err.Error()
		}
		select {
		case m := <-msgs:
			return strings.HasPrefix(m.Payload, "m-"), "received " + m.Payload
		case <-c.Done():
			return false, "the subscription received nothing published after the failover"
		}
	})
	v, err := replica.Get(ctx, "k").Result()
	if err != nil || !strings.HasPrefix(v, "after-") {
		t.Errorf("the promoted replica holds %q (%v), want the write made after the failover", v, err)
	}
	if err := plain.Set(ctx, "k", "plain", 0).Err(); err == nil {
		t.Errorf("negative control: a client of the dead master's address wrote after the kill")
	}
}

func TestConfigRefusesAnAddressAndSentinels(t *testing.T) {
	for _, tc := range []struct {
		c    redisconn.Config
		want string
	}{
		{redisconn.Config{Addr: "a:1", SentinelAddrs: []string{"b:2"}}, "set the sentinels alone"},
		{redisconn.Config{SentinelAddrs: []string{"b"}}, "want host:port"},
		{redisconn.Config{Addr: "a:1"}, ""},
	} {
		err := tc.c.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: got %v, want %q", tc.c, err, tc.want)
		}
	}
	if got := (redisconn.Config{SentinelAddrs: []string{"b:2", "c:3"}}).String(); got != `master "ioc" of sentinels b:2,c:3 (IOC_REDIS_SENTINEL_ADDRS)` {
		t.Errorf("String: got %s", got)
	}
}
