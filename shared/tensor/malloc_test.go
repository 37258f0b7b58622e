package tensor

import (
	"strings"
	"testing"
)

// TestTuneMalloc: the modes apply, RL_MALLOC overrides the caller's, a
// user's own glibc settings are left alone, and a bad mode is an error
// naming RL_MALLOC.
func TestTuneMalloc(t *testing.T) {
	for mode, want := range map[string]string{"heap": "no mmap'd chunks", "threshold": "32 MB", "default": "glibc defaults"} {
		got, err := TuneMalloc(mode)
		if err != nil || !strings.Contains(got, want) {
			t.Errorf("TuneMalloc(%q) = %q, %v; want %q", mode, got, err, want)
		}
	}
	t.Setenv("RL_MALLOC", "default")
	if got, _ := TuneMalloc("heap"); got != "glibc defaults" {
		t.Errorf("RL_MALLOC=default: %q", got)
	}
	t.Setenv("RL_MALLOC", "fast")
	if _, err := TuneMalloc("heap"); err == nil || !strings.Contains(err.Error(), "RL_MALLOC") {
		t.Errorf("RL_MALLOC=fast: %v, want an error naming RL_MALLOC", err)
	}
	t.Setenv("RL_MALLOC", "")
	t.Setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1")
	if got, _ := TuneMalloc("heap"); !strings.Contains(got, "GLIBC_TUNABLES") {
		t.Errorf("with GLIBC_TUNABLES: %q, want it left alone", got)
	}
}
