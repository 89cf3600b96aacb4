package config

import (
	"strings"
	"testing"
	"time"
)

func TestEnvDefaultsAndFlagsWin(t *testing.T) {
	t.Setenv("IOC_T_ADDR", ":9090")
	t.Setenv("IOC_T_N", "7")
	t.Setenv("IOC_T_D", "250ms")
	f := New("t")
	addr := f.String("addr", "IOC_T_ADDR", ":8080", "listen address")
	n := f.Int("n", "IOC_T_N", 1, "count")
	d := f.Duration("d", "IOC_T_D", time.Second, "age")
	r := f.Float("r", "IOC_T_R", 2.5, "rate")
	if err := f.Parse([]string{"-n", "9"}); err != nil {
		t.Fatal(err)
	}
	if *addr != ":9090" || *n != 9 || *d != 250*time.Millisecond || *r != 2.5 {
		t.Errorf("got addr %q n %d d %v r %v, want :9090 9 250ms 2.5", *addr, *n, *d, *r)
	}
	if u := f.Lookup("addr").Usage; !strings.Contains(u, "env IOC_T_ADDR") {
		t.Errorf("usage %q does not name the variable", u)
	}
}

func TestMalformedEnv(t *testing.T) {
	t.Setenv("IOC_T_N", "many")
	t.Setenv("IOC_T_D", "5")
	f := New("t")
	f.Int("n", "IOC_T_N", 1, "")
	f.Duration("d", "IOC_T_D", time.Second, "")
	err := f.Parse(nil)
	if err == nil || !strings.Contains(err.Error(), `IOC_T_N="many": want an integer`) || !strings.Contains(err.Error(), `IOC_T_D="5": want a duration`) {
		t.Errorf("got %v, want both variables named", err)
	}
}
