package main

// What a wall screen sees of live figures when several nodes share Redis,
// and when Redis fails under them.

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/openioc/ioc/internal/testenv"
)

// logged is one message a screen received, with when.
type logged struct {
	at       time.Time
	Type     string          `json:"type"`
	Topic    string          `json:"topic"`
	Version  string          `json:"version"`
	Base     string          `json:"base"`
	Epoch    string          `json:"epoch"`
	Offset   uint64          `json:"offset"`
	Gap      bool            `json:"gap"`
	Data     json.RawMessage `json:"data"`
	Error    string          `json:"error"`
	Retrying bool            `json:"retrying"`
}

// screen is a websocket client that keeps every message it receives, read
// on its own goroutine until the connection closes.
type screen struct {
	name string
	conn *websocket.Conn
	done chan struct{}

	mu  sync.Mutex
	log []logged
	err error // why reading stopped
}

func openScreen(t *testing.T, n *node, name string, topics ...string) *screen {
	t.Helper()
	url := "ws" + strings.TrimPrefix(n.base, "http") + "/api/v1/live?access_token=" + adminToken
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("screen %s: dial %s: %v", name, url, err)
	}
	s := &screen{name: name, conn: c, done: make(chan struct{})}
	go s.read()
	t.Cleanup(func() {
		c.Close()
		<-s.done
	})
	for _, topic := range topics {
		if err := c.WriteJSON(map[string]string{"op": "subscribe", "topic": topic}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *screen) read() {
	defer close(s.done)
	for {
		_, raw, err := s.conn.ReadMessage()
		if err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		m := logged{at: time.Now()}
		if err := json.Unmarshal(raw, &m); err != nil {
			m.Type, m.Error = "undecodable", fmt.Sprintf("%q: %v", raw, err)
		}
		s.mu.Lock()
		s.log = append(s.log, m)
		s.mu.Unlock()
	}
}

func (s *screen) messages() []logged {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// waitFor polls the screen's log until cond holds, failing after d.
func (s *screen) waitFor(t *testing.T, d time.Duration, what string, cond func([]logged) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ms := s.messages()
		if cond(ms) {
			return
		}
		if time.Now().After(deadline) {
			s.mu.Lock()
			err := s.err
			s.mu.Unlock()
			t.Fatalf("screen %s: %s: not within %v (read error: %v); its last messages:\n%s", s.name, what, d, err, tailOf(ms, 10))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func tailOf(ms []logged, n int) string {
	var b strings.Builder
	for _, m := range ms[max(0, len(ms)-n):] {
		fmt.Fprintf(&b, "  %s %s %s v=%s at=%s:%d %s %s\n", m.at.Format("15:04:05.000"), m.Type, m.Topic, m.Version, m.Epoch, m.Offset, m.Error, figuresOf(m))
	}
	return b.String()
}

// figures are the dossiers received per unit a message shows: the unit's
// own on kpi/ topics, each child's on map/ topics.
func figures(m logged) map[string]float64 {
	var d struct {
		Area     string                                   `json:"area"`
		KPIs     map[string]any                           `json:"kpis"`
		Children map[string]struct{ KPIs map[string]any } `json:"children"`
	}
	if json.Unmarshal(m.Data, &d) != nil {
		return nil
	}
	out := map[string]float64{}
	if d.KPIs != nil {
		out[d.Area] = num(d.KPIs["dossiers_received"])
	}
	for code, c := range d.Children {
		out[code] = num(c.KPIs["dossiers_received"])
	}
	return out
}

func figuresOf(m logged) string {
	f := figures(m)
	if len(f) > 3 {
		return fmt.Sprintf("(%d units)", len(f))
	}
	return fmt.Sprint(f)
}

// checkNeverBackwards fails the test if, on any topic of the log, a figure
// of dossiers received shrinks (the test only ever adds dossiers), or a
// version is older than one before it, or an update repeats one.
func checkNeverBackwards(t *testing.T, s *screen) {
	t.Helper()
	ms := s.messages()
	byTopic := map[string][]logged{}
	for _, m := range ms {
		if m.Type == "snapshot" || m.Type == "update" {
			byTopic[m.Topic] = append(byTopic[m.Topic], m)
		}
	}
	unversioned := map[string]bool{}
	for topic, log := range byTopic {
		if strings.HasPrefix(topic, "events/") {
			continue // a stream: no versions, nothing to go back on
		}
		high := map[string]float64{}
		for i, m := range log {
			for unit, v := range figures(m) {
				if v < high[unit] {
					t.Errorf("screen %s, %s: %s went back from %v to %v at message %d:\n%s",
						s.name, topic, unit, high[unit], v, i, tailOf(log[max(0, i-3):i+1], 4))
				}
				high[unit] = max(high[unit], v)
			}
			if m.Version == "" {
				if !unversioned[topic] {
					t.Errorf("screen %s, %s: message %d has no version", s.name, topic, i)
				}
				unversioned[topic] = true
				continue
			}
			if i == 0 {
				continue
			}
			prev := log[i-1].Version
			if m.Version < prev || m.Version == prev && m.Type != "snapshot" {
				t.Errorf("screen %s, %s: version %s after %s at message %d (%s)", s.name, topic, m.Version, prev, i, m.Type)
			}
		}
	}
}

// Observed on two nodes sharing Redis: a screen saw dossiers_received go
// 21 then 20 with the same as_of, because both nodes computed and published
// the figures and the older computation arrived last.
func TestScreensNeverSeeFiguresGoBackwardsWithTwoNodes(t *testing.T) {
	cfg := testConfig(t)
	cfg.Redis.Addr = testenv.RedisAddr(t)
	// Frequent refreshes of every unit race with the recomputations that
	// follow each stored batch: a refresh computes first and reaches the
	// province's topics last.
	cfg.RefreshInterval = 100 * time.Millisecond
	a, b := startNode(t, cfg), startNode(t, cfg)
	waitLive(t, a)
	waitLive(t, b)
	// 24h windows: a today window would start again at midnight, and
	// figures going back then would be right.
	topics := []string{"kpi/79/24h", "kpi/26740/24h", "kpi/26743/24h", "map/79/24h"}
	screens := []*screen{openScreen(t, a, "on A", topics...), openScreen(t, b, "on B", topics...)}
	for _, s := range screens {
		s.waitFor(t, 20*time.Second, "a snapshot of every topic", func(ms []logged) bool {
			n := 0
			for _, m := range ms {
				if m.Type == "snapshot" {
					n++
				}
			}
			return n == len(topics)
		})
	}

	// Both nodes take dossiers at once, from several clients each, so that
	// their recomputations interleave.
	const workers, perWorker = 4, 20
	start := time.Now()
	var wg sync.WaitGroup
	for i, n := range []*node{a, b} {
		for w := range workers {
			wg.Go(func() {
				for j := range perWorker {
					area := []string{"26740", "26743"}[j%2]
					id := fmt.Sprintf("n%d-%d-%d", i, w, j)
					// A node that lost its write lease on a busy machine
					// answers 503, acknowledging nothing: sent again.
					if code, r := n.ingestAcknowledged(time.Minute, event(id, "d-"+id, area, "received", "online", time.Minute)); code != 202 || r.Accepted != 1 {
						t.Errorf("ingest %s on node %d: got %d %+v", id, i, code, r)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	const perNode = workers * perWorker
	t.Logf("ingested %d dossiers on each node in %v", perNode, time.Since(start))
	for _, s := range screens {
		s.waitFor(t, 30*time.Second, "the final figures", func(ms []logged) bool {
			last := map[string]float64{}
			for _, m := range ms {
				if m.Topic == "kpi/79/24h" {
					last = figures(m)
				}
			}
			return last["79"] == 2*perNode
		})
		checkNeverBackwards(t, s)
	}
}

// After Redis restarts (empty: it keeps nothing on disk), the nodes'
// subscriptions come back but what was published meanwhile is lost.
// Within 5s of Redis answering, every screen must be current again: the
// figures published by the node that takes over (newer versions than any
// before), and on the events ticker a snapshot saying the stream's history
// was lost; figures must go on from there, never back.
func TestEveryScreenIsCurrentWithin5sOfRedisAnsweringAgain(t *testing.T) {
	redisSrv := testenv.StartRedis(t)
	env := processEnv(t)
	env["IOC_REDIS_ADDR"] = redisSrv.Addr
	env["IOC_LEASE_TTL"] = "1s"
	pa, pb := startProcess(t, "a", env), startProcess(t, "b", env)
	a, b := pa.node(), pb.node()
	topics := []string{"alarms/79", "devices/79", "kpi/79/24h", "kpi/26740/24h", "map/79/24h", "events/79"}
	figureTopics := topics[2:5]
	screens := []*screen{openScreen(t, a, "on A", topics...), openScreen(t, b, "on B", topics...)}
	for _, s := range screens {
		s.waitFor(t, 30*time.Second, "a snapshot of every topic", func(ms []logged) bool {
			return countSnapshots(ms) == len(topics)
		})
	}
	if code, _ := a.ingest(event("r1", "d1", "26740", "received", "online", time.Minute)); code != 202 {
		t.Fatalf("ingest before the restart: %d", code)
	}
	for _, s := range screens {
		s.waitFor(t, 30*time.Second, "the first dossier", func(ms []logged) bool { return lastFigure(ms, "kpi/79/24h", "79") == 1 })
	}

	redisSrv.Kill()
	// Both nodes notice: their readiness says Redis is gone.
	for _, p := range []*process{pa, pb} {
		testenv.Eventually(t, 30*time.Second, func() (bool, string) {
			return !p.ready(t.Context()), p.name + " still ready after Redis was killed"
		})
	}
	before := make([]int, len(screens))
	newest := make([]map[string]string, len(screens))
	for i, s := range screens {
		ms := s.messages()
		before[i] = len(ms)
		newest[i] = map[string]string{}
		for _, m := range ms {
			newest[i][m.Topic] = max(newest[i][m.Topic], m.Version)
		}
	}
	redisSrv = testenv.RestartRedis(t, redisSrv)
	up := time.Now()

	for i, s := range screens {
		s.waitFor(t, time.Until(up.Add(5*time.Second)), "newer figures on every figure topic and a gap snapshot of the ticker within 5s of Redis answering", func(ms []logged) bool {
			newer := map[string]bool{}
			gap := false
			for _, m := range ms[before[i]:] {
				if m.Version > newest[i][m.Topic] {
					newer[m.Topic] = true
				}
				gap = gap || m.Topic == "events/79" && m.Type == "snapshot" && m.Gap
			}
			for _, topic := range figureTopics {
				if !newer[topic] {
					return false
				}
			}
			return gap
		})
	}
	t.Logf("every screen current %v after Redis answered", time.Since(up))

	// Figures go on: a dossier taken by either node after the restart
	// reaches both screens, with versions newer than any before.
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		code, _ := b.ingest(event("r2", "d2", "26743", "received", "online", time.Minute))
		return code == 202, fmt.Sprintf("ingest after the restart: %d", code)
	})
	for _, s := range screens {
		s.waitFor(t, 30*time.Second, "the dossier taken after the restart", func(ms []logged) bool { return lastFigure(ms, "kpi/79/24h", "79") == 2 })
		checkNeverBackwards(t, s)
	}
}

// With Redis behind sentinels, killing its master is a failover, not an
// outage: the sentinels promote the replica, both nodes follow them there,
// and screens on either node go on receiving figures, never backwards,
// with every dossier acknowledged counted once.
func TestScreensFollowARedisFailover(t *testing.T) {
	sentinels := testenv.StartSentinels(t)
	env := processEnv(t)
	env["IOC_REDIS_SENTINEL_ADDRS"] = strings.Join(sentinels.Addrs(), ",")
	env["IOC_REDIS_SENTINEL_MASTER"] = sentinels.Master
	env["IOC_LEASE_TTL"] = "1s"
	pa, pb := startProcess(t, "a", env), startProcess(t, "b", env)
	a, b := pa.node(), pb.node()
	topics := []string{"alarms/79", "kpi/79/24h", "map/79/24h"}
	screens := []*screen{openScreen(t, a, "on A", topics...), openScreen(t, b, "on B", topics...)}
	for _, s := range screens {
		s.waitFor(t, 30*time.Second, "a snapshot of every topic", func(ms []logged) bool { return countSnapshots(ms) == len(topics) })
	}
	if code, _ := a.ingest(event("f1", "d1", "26740", "received", "online", time.Minute)); code != 202 {
		t.Fatalf("ingest before the failover: %d", code)
	}
	for _, s := range screens {
		s.waitFor(t, 30*time.Second, "the first dossier", func(ms []logged) bool { return lastFigure(ms, "kpi/79/24h", "79") == 1 })
	}

	sentinels.Primary.Kill()
	killed := time.Now()
	// Ingest goes on through the failover: a refusal (503) acknowledges
	// nothing, and the client sends again.
	testenv.Eventually(t, 60*time.Second, func() (bool, string) {
		code, _ := b.ingest(event("f2", "d2", "26743", "received", "online", time.Minute))
		return code == 202, fmt.Sprintf("ingest after the master was killed: %d", code)
	})
	for _, s := range screens {
		s.waitFor(t, 60*time.Second, "the dossier taken after the failover", func(ms []logged) bool { return lastFigure(ms, "kpi/79/24h", "79") == 2 })
		checkNeverBackwards(t, s)
	}
	t.Logf("both screens current %v after the master was killed", time.Since(killed).Round(time.Millisecond))
	for _, n := range []*node{a, b} {
		if got := num(n.kpis("79", "24h").KPIs["dossiers_received"]); got != 2 {
			t.Errorf("%s: dossiers received %v, want the 2 acknowledged", n.base, got)
		}
	}
	for _, p := range []*process{pa, pb} {
		testenv.Eventually(t, 30*time.Second, func() (bool, string) {
			return p.ready(t.Context()), p.name + " not ready after the failover"
		})
	}
}

// countSnapshots counts the topics that received a snapshot.
func countSnapshots(ms []logged) int {
	topics := map[string]bool{}
	for _, m := range ms {
		if m.Type == "snapshot" {
			topics[m.Topic] = true
		}
	}
	return len(topics)
}

// lastFigure is dossiers received of unit in the last message of topic.
func lastFigure(ms []logged, topic, unit string) float64 {
	f := -1.0
	for _, m := range ms {
		if m.Topic == topic {
			f = figures(m)[unit]
		}
	}
	return f
}

// waitLive waits until the node is ready, live figures included: before
// the first publication of every topic, a subscription gets figures
// computed on the spot and then the same figures again as an update.
func waitLive(t *testing.T, n *node) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var r struct {
			Status string            `json:"status"`
			Checks map[string]string `json:"checks"`
		}
		if n.get("/readyz", "", &r) == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not ready after 60s: %v", r.Checks)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
