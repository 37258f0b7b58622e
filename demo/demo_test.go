package demo

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/tensor"
)

// TestQuickDemoRaisesGold runs the shortened demo end to end and checks
// that the gold metric on held-out prompts rises from base to SFT and from
// SFT to each of PPO, DPO, ORPO, KTO and CPO, that the GRPO and RLOO
// stages (learned and gold reward) ran and were measured, and that the
// comparison is written (Markdown and HTML).
func TestQuickDemoRaisesGold(t *testing.T) {
	if testing.Short() {
		t.Skip("the quick demo takes a few minutes")
	}
	tensor.SetNumThreads(0)
	t.Setenv("RL_CACHE_DIR", t.TempDir())
	out := t.TempDir()
	res, err := Run(context.Background(), Options{OutputDir: out, Quick: true}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	gold := map[string]float64{}
	for _, s := range res.Stages {
		gold[s.Name] = s.Gold.Mean
		t.Logf("%-5s gold %.3f well-formed %.2f", s.Name, s.Gold.Mean, s.Gold.WellFormed)
	}
	for _, c := range [][2]string{{"base", "sft"}, {"sft", "ppo"}, {"sft", "dpo"}, {"sft", "orpo"}, {"sft", "kto"}, {"sft", "cpo"}} {
		if !(gold[c[1]] > gold[c[0]]) {
			t.Errorf("gold did not rise from %s (%.3f) to %s (%.3f)", c[0], gold[c[0]], c[1], gold[c[1]])
		}
	}
	for _, f := range []string{"comparison/comparison.md", "comparison/comparison.html", "comparison/gold.png", "kto/gold.json", "cpo/gold.json", "ppo/gold.json", "grpo/gold.json", "rloo/gold.json", "grpo_gold/gold.json", "rloo_gold/gold.json", "reward/model.safetensors"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("demo output lacks %s", f)
		}
	}
}
