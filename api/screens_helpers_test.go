package api

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/openioc/ioc/api/auth"
	"github.com/openioc/ioc/geo"
	"github.com/openioc/ioc/internal/bus"
	"github.com/openioc/ioc/internal/lease"
	"github.com/openioc/ioc/wall"
)

// screenOf is the screen the tests give each unit: "s-" and its code.
func screenOf(code string) string { return "s-" + code }

// testScreens returns walls (not running: the documents are read once)
// over a screen per unit of units, each showing dashboard "d" over its
// unit, on b.
func testScreens(t testing.TB, h *geo.Hierarchy, b wall.Bus, units ...string) (*wall.Walls, *wall.MemoryDocuments) {
	t.Helper()
	docs := wall.NewMemoryDocuments()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(docs.Put(wall.KindDashboard, json.RawMessage(`{"id":"d","area":"$area","window":"today"}`)))
	for _, u := range units {
		must(docs.Put(wall.KindScreen, json.RawMessage(fmt.Sprintf(`{"id":%q,"areas":[%q],"dashboard":"d"}`, screenOf(u), u))))
	}
	if b == nil {
		b = bus.NewMemory()
	}
	w, err := wall.New(wall.Config{Build: "test"}, docs, h, b, lease.NewLocal(), nil, nil)
	must(err)
	must(w.Load(context.Background()))
	return w, docs
}

// countedScreens counts the writes the screens were asked to make.
type countedScreens struct {
	Screens
	w *writes
}

func (c countedScreens) Command(ctx context.Context, cmd wall.Command) ([]string, error) {
	out, err := c.Screens.Command(ctx, cmd)
	if err == nil {
		c.w.add("screen command")
	}
	return out, err
}

func (c countedScreens) Seen(ctx context.Context, r wall.Report) error {
	err := c.Screens.Seen(ctx, r)
	if err == nil {
		c.w.add("screen report")
	}
	return err
}

// countedLinks counts the kiosk links stored.
type countedLinks struct {
	auth.KioskLinkStore
	w *writes
}

func (c countedLinks) AddKioskLink(ctx context.Context, l auth.KioskLink) error {
	c.w.add("kiosk token")
	return c.KioskLinkStore.AddKioskLink(ctx, l)
}
