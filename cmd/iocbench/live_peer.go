package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/centrifugal/centrifuge"
)

// The peer of iocbench live: a minimal server on the centrifuge library
// (github.com/centrifugal/centrifuge), the library Centrifugo is built on,
// run as a process of its own (`iocbench live-peer`, not listed in the
// usage) so that its CPU time and memory can be read from /proc as iocd's
// are. It accepts any client on /connection/websocket (JSON protocol), any
// subscription, with positioning when history is on, and takes its
// publications from the Redis broker, where the load tool publishes them
// through a centrifuge node of its own.

// peerConfig is what the peer and the load tool's publisher share.
type peerConfig struct {
	redisAddr   string
	redisPrefix string
	history     int           // publications kept per channel; 0: no history (no offsets)
	historyTTL  time.Duration // how long the history outlives the last publication
}

func (pc peerConfig) args() []string {
	return []string{"-redis", pc.redisAddr, "-redis-prefix", pc.redisPrefix,
		"-history", fmt.Sprint(pc.history), "-history-ttl", pc.historyTTL.String()}
}

func (pc *peerConfig) flags(f *flag.FlagSet) {
	f.StringVar(&pc.redisAddr, "redis", "", "Redis address of the centrifuge broker")
	f.StringVar(&pc.redisPrefix, "redis-prefix", "iocbench-centrifuge", "prefix of the broker's Redis keys and channels")
	f.IntVar(&pc.history, "history", 100, "publications the broker keeps per channel, which gives them offsets; 0: none")
	f.DurationVar(&pc.historyTTL, "history-ttl", 10*time.Minute, "how long a channel's history outlives its last publication")
}

// newCentrifugeNode returns a running node on the Redis broker of pc; its
// log goes to the standard logger unless quiet is set.
func newCentrifugeNode(pc peerConfig, name string, logLevel centrifuge.LogLevel, quiet *atomic.Bool) (*centrifuge.Node, error) {
	node, err := centrifuge.New(centrifuge.Config{
		Name:     name,
		LogLevel: logLevel,
		LogHandler: func(e centrifuge.LogEntry) {
			if quiet == nil || !quiet.Load() {
				log.Printf("centrifuge: %s %v %v", e.Message, e.Fields, e.Error)
			}
		},
		// What Centrifugo offers for the same case: one read of a
		// channel's stream position for the subscribers arriving together.
		UseSingleFlight: true,
	})
	if err != nil {
		return nil, fmt.Errorf("new centrifuge node: %w", err)
	}
	shard, err := centrifuge.NewRedisShard(node, centrifuge.RedisShardConfig{Address: pc.redisAddr})
	if err != nil {
		return nil, fmt.Errorf("centrifuge redis shard %s: %w", pc.redisAddr, err)
	}
	broker, err := centrifuge.NewRedisBroker(node, centrifuge.RedisBrokerConfig{Prefix: pc.redisPrefix, Shards: []*centrifuge.RedisShard{shard}})
	if err != nil {
		return nil, fmt.Errorf("centrifuge redis broker: %w", err)
	}
	node.SetBroker(broker)
	if err := node.Run(); err != nil {
		return nil, fmt.Errorf("run centrifuge node: %w", err)
	}
	return node, nil
}

// runLivePeer serves until SIGTERM or SIGINT.
func runLivePeer(args []string) error {
	var pc peerConfig
	f := flag.NewFlagSet("iocbench live-peer", flag.ContinueOnError)
	addr := f.String("addr", "127.0.0.1:8000", "listen address")
	pc.flags(f)
	if err := f.Parse(args); err != nil {
		return err
	}
	if pc.redisAddr == "" {
		return errors.New("-redis is required: the broker's Redis address")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	node, err := newCentrifugeNode(pc, "iocbench-live-peer", centrifuge.LogLevelWarn, nil)
	if err != nil {
		return err
	}
	node.OnConnect(func(client *centrifuge.Client) {
		client.OnSubscribe(func(e centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
			cb(centrifuge.SubscribeReply{Options: centrifuge.SubscribeOptions{EnablePositioning: pc.history > 0}}, nil)
		})
	})
	ws := centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{})
	mux := http.NewServeMux()
	mux.Handle("/connection/websocket", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every client is the same anonymous user: the benchmark measures
		// delivery, not authentication.
		ws.ServeHTTP(w, r.WithContext(centrifuge.SetCredentials(r.Context(), &centrifuge.Credentials{})))
	}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = node.Shutdown(sctx)
	_ = srv.Shutdown(sctx)
	return nil
}

// centrifugePublisher publishes through a centrifuge node of the load tool
// on the peer's broker.
type centrifugePublisher struct {
	node  *centrifuge.Node
	pc    peerConfig
	quiet atomic.Bool // closing: Redis may go first, which is no news
}

func newCentrifugePublisher(pc peerConfig) (*centrifugePublisher, error) {
	p := &centrifugePublisher{pc: pc}
	node, err := newCentrifugeNode(pc, "iocbench-live-publisher", centrifuge.LogLevelError, &p.quiet)
	if err != nil {
		return nil, err
	}
	p.node = node
	return p, nil
}

func (p *centrifugePublisher) publish(_ context.Context, topic string, payload []byte) error {
	var opts []centrifuge.PublishOption
	if p.pc.history > 0 {
		opts = append(opts, centrifuge.WithHistory(p.pc.history, p.pc.historyTTL))
	}
	if _, err := p.node.Publish(topic, payload, opts...); err != nil {
		return fmt.Errorf("publish to centrifuge channel %s: %w", topic, err)
	}
	return nil
}

func (p *centrifugePublisher) close() {
	p.quiet.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.node.Shutdown(ctx)
}

// startPeer starts the peer process: argv, then the flags of pc and addr.
func startPeer(ctx context.Context, argv, env []string, addr, logFile string, pc peerConfig) (*benchNode, error) {
	args := append(append(argv[1:len(argv):len(argv)], "-addr", addr), pc.args()...)
	return startProcess(ctx, argv[0], args, env, logFile, "http://"+addr+"/healthz", "centrifuge peer", 0)
}
