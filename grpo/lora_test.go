package grpo

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/model"
)

// TestGRPOLoRA: with use_peft and beta > 0, the reference is the policy
// with its adapters disabled (no second copy): kl starts at 0 (the
// adapters start at B = 0, so policy and reference agree) and grows as the
// adapters train, the known reward rises, and the output folder is a peft
// adapter.
func TestGRPOLoRA(t *testing.T) {
	sftDir, data := setup(t)
	out := t.TempDir()
	cfg := grpoConfig(sftDir, data, out)
	cfg.UsePEFT, cfg.LoraR, cfg.LoraTargetModules, cfg.LoraDropout = true, 8, []string{"all-linear"}, 0
	cfg.Beta, cfg.LearningRate = 0.02, 2e-3
	cfg.MaxSteps = 16
	if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	kl, r := series(t, out, "kl"), series(t, out, "reward")
	t.Logf("kl %.4f\nreward %.3f", kl, r)
	if len(kl) == 0 || math.Abs(kl[0]) > 1e-6 || !(kl[len(kl)-1] > 1e-6) {
		t.Errorf("kl %v: want 0 at the start (the policy without adapters is the reference), > 0 at the end", kl)
	}
	n := len(r)
	if n < 8 || !(mean(r[n-4:]) > mean(r[:4])) {
		t.Errorf("reward %v: want it to rise", r)
	}
	for _, f := range []string{model.AdapterConfigFile, model.AdapterWeightsFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("output lacks %s", f)
		}
	}
}
