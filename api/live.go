package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gofiber/websocket/v2"

	"github.com/openioc/ioc/aggregate"
	"github.com/openioc/ioc/api/auth"
)

func (s *Server) live(c *websocket.Conn) {
	p, _ := c.Locals(principalKey).(auth.Principal)
	_ = s.hub.Serve(c.Conn, p)
}

// topics tells the hub which topics exist, who may read them and what they
// hold now.
type topics struct{ s *Server }

type kpiTopic struct {
	area   string
	window aggregate.Window
}

func parseTopic(topic string) (kpiTopic, error) {
	parts := strings.Split(topic, "/")
	if parts[0] != "kpi" || len(parts) < 2 || len(parts) > 3 || parts[1] == "" {
		return kpiTopic{}, fmt.Errorf("unknown topic %q: topics are kpi/{area} (today) and kpi/{area}/{window} with window 24h, 7d or 30d", topic)
	}
	t := kpiTopic{area: parts[1], window: aggregate.Today}
	if len(parts) == 3 {
		w, err := aggregate.ParseWindow(parts[2])
		if err != nil || parts[2] == "" {
			return kpiTopic{}, fmt.Errorf("topic %q: unknown window %q: use today, 24h, 7d or 30d", topic, parts[2])
		}
		t.window = w
	}
	return t, nil
}

func (t topics) Resolve(p auth.Principal, topic string) (string, error) {
	kt, err := parseTopic(topic)
	if err != nil {
		return "", err
	}
	h := t.s.d.KPIs.Hierarchy()
	if _, ok := h.Unit(kt.area); !ok {
		return "", fmt.Errorf("unknown area %q in %s", kt.area, h.Name())
	}
	if !p.MayRead(h, kt.area) {
		return "", fmt.Errorf("your token does not cover area %s", kt.area)
	}
	return kt.window.Topic(kt.area), nil
}

func (t topics) Current(ctx context.Context, topic string) ([]byte, error) {
	kt, err := parseTopic(topic)
	if err != nil {
		return nil, err
	}
	snap, err := t.s.d.KPIs.Snapshot(ctx, t.s.d.KPIs.Hierarchy().Name(), kt.area, kt.window)
	if err != nil {
		return nil, err
	}
	return json.Marshal(snap)
}
