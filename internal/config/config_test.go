package config

import (
	"os"
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

// -h used to print secrets as flag defaults (the admin token, the JWT
// secret, passwords). A secret is shown as "set", never as its value.
func TestSecretNeverPrinted(t *testing.T) {
	t.Setenv("IOC_T_TOKEN", "s3cr3t-admin-token-value")
	f := New("t")
	var out strings.Builder
	f.SetOutput(&out)
	tok := f.Secret("token", "IOC_T_TOKEN", "bootstrap token")
	empty := f.Secret("password", "IOC_T_PASSWORD", "a password")
	if err := f.Parse([]string{"-h"}); err == nil {
		t.Fatal("-h: want flag.ErrHelp")
	}
	if strings.Contains(out.String(), "s3cr3t") {
		t.Errorf("-h printed the secret:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "IOC_T_TOKEN_FILE); set") || strings.Contains(out.String(), "IOC_T_PASSWORD_FILE); set") {
		t.Errorf("-h should say the token is set and the password not:\n%s", out.String())
	}
	if *tok != "s3cr3t-admin-token-value" || *empty != "" {
		t.Errorf("got %q and %q", *tok, *empty)
	}
}

func TestSecretFromFile(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/jwt"
	if err := os.WriteFile(path, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("IOC_T_JWT_FILE", path)
	f := New("t")
	jwt := f.Secret("jwt", "IOC_T_JWT", "")
	if err := f.Parse(nil); err != nil || *jwt != "from-a-file" {
		t.Fatalf("got %q, %v; want the file's content without its newline", *jwt, err)
	}
	// A flag still wins.
	f = New("t")
	jwt = f.Secret("jwt", "IOC_T_JWT", "")
	if err := f.Parse([]string{"-jwt", "from-flag"}); err != nil || *jwt != "from-flag" {
		t.Fatalf("got %q, %v; want the flag's value", *jwt, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	f = New("t")
	f.Secret("jwt", "IOC_T_JWT", "")
	if err := f.Parse(nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable secret file: got %v, want a refusal saying chmod 600", err)
	}
}
