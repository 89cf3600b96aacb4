package wire

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	if got := Clip("HCM-AQ-012"); got != "HCM-AQ-012" {
		t.Errorf("short text: got %q, want it whole", got)
	}
	long := strings.Repeat("a", 99) + "Đ" + strings.Repeat("b", 50) // Đ straddles the limit
	got := Clip(long)
	if !utf8.ValidString(got) || got != strings.Repeat("a", 99)+"…" {
		t.Errorf("long text: got %q, want its first 99 bytes and … without a cut rune", got)
	}
}

func TestPreview(t *testing.T) {
	if got, want := Preview([]byte(`pm25=5`)), `"pm25=5"`; got != want {
		t.Errorf("short bytes: got %s, want %s", got, want)
	}
	if got, want := Preview([]byte(strings.Repeat("x", 41))), `"`+strings.Repeat("x", 40)+`"…`; got != want {
		t.Errorf("long bytes: got %s, want %s", got, want)
	}
}

func TestJSONError(t *testing.T) {
	var v struct {
		Value float64 `json:"value"`
	}
	tests := []struct{ raw, want string }{
		{`{"value":`, "malformed JSON at byte"},
		{`{"value":"x"}`, "value must be a number, got a JSON string"},
		{`[1]`, "want struct"},
	}
	for _, tt := range tests {
		err := json.Unmarshal([]byte(tt.raw), &v)
		if got := JSONError(err, []byte(tt.raw)); !strings.Contains(got, tt.want) {
			t.Errorf("%s: got %q, want one that says %q", tt.raw, got, tt.want)
		}
	}
}
