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

// TestSkipStage: a stage finished with the same configuration is skipped
// (a resumed sweep), one with another configuration, or whose input stage
// was retrained in this call, runs again. Fake runs, no training.
func TestSkipStage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dpo")
	raw := []byte("seed: 42\nbeta: 0.1\n")
	os.MkdirAll(filepath.Join(dir, "checkpoint-60"), 0o755)
	os.WriteFile(filepath.Join(dir, "rl_config.yaml"), raw, 0o644)
	os.WriteFile(filepath.Join(dir, "trainer_state.json"), []byte(`{"global_step": 60}`), 0o644)
	os.WriteFile(filepath.Join(dir, "checkpoint-60", "rl_state.json"), []byte(`{}`), 0o644)
	if skip, why := skipStage("dpo", dir, raw, map[string]bool{}, false); !skip {
		t.Errorf("finished stage not skipped: %s", why)
	}
	if skip, why := skipStage("dpo", dir, raw, map[string]bool{"sft": true}, false); skip || !strings.Contains(why, "sft") {
		t.Errorf("stage whose SFT was retrained: skip %v (%s)", skip, why)
	}
	if skip, _ := skipStage("dpo", dir, []byte("seed: 43\nbeta: 0.1\n"), map[string]bool{}, false); skip {
		t.Error("stage of another seed skipped")
	}
	if skip, _ := skipStage("dpo", dir, raw, map[string]bool{"reward": true}, false); !skip {
		t.Error("dpo does not start from the reward model, yet its retraining unskipped it")
	}
	if skip, _ := skipStage("dpo", dir, raw, map[string]bool{}, true); skip {
		t.Error("--only dpo did not rerun dpo")
	}
}
