package demo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckOnly: an unknown --only stage, or one whose earlier stage's
// model is missing, is refused before anything runs, naming what to do.
func TestCheckOnly(t *testing.T) {
	out := t.TempDir()
	dir := func(n string) string { return filepath.Join(out, n) }
	if err := checkOnly([]string{"nosuch"}, dir); err == nil || !strings.Contains(err.Error(), "base, sft, reward, ppo, dpo, orpo") {
		t.Errorf("unknown stage: %v", err)
	}
	if err := checkOnly([]string{"ppo"}, dir); err == nil || !strings.Contains(err.Error(), dir("sft")) {
		t.Errorf("ppo without sft: %v", err)
	}
	if err := checkOnly([]string{"base", "sft"}, dir); err != nil {
		t.Errorf("base and sft together: %v", err)
	}
	for _, n := range []string{"sft", "reward"} {
		os.MkdirAll(dir(n), 0o755)
		os.WriteFile(filepath.Join(dir(n), "config.json"), []byte("{}"), 0o644)
	}
	if err := checkOnly([]string{"ppo", "dpo"}, dir); err != nil {
		t.Errorf("ppo and dpo with their inputs there: %v", err)
	}
	if err := checkOnly(nil, dir); err != nil {
		t.Errorf("the whole demo: %v", err)
	}
}
