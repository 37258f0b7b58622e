package ppo

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
)

// TestPPOLoRA: with use_peft the policy trains LoRA adapters and the
// reference is the policy with them disabled (no copy): objective/kl is 0
// in the first update (the adapters start at B = 0) and grows after, and
// the output folder is a peft adapter; the value model trains in full.
func TestPPOLoRA(t *testing.T) {
	sftDir, data := setup(t)
	out := t.TempDir()
	cfg := ppoConfig(sftDir, data, out)
	cfg.UsePEFT, cfg.LoraR, cfg.LoraTargetModules, cfg.LoraDropout = true, 8, []string{"all-linear"}, 0
	cfg.LearningRate, cfg.TotalEpisodes = 2e-3, 32*4
	if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	es, err := metrics.ReadFile(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var kl []float64
	for _, e := range es {
		if v, ok := e.Values["objective/kl"]; ok {
			kl = append(kl, v)
		}
	}
	t.Logf("objective/kl per update: %.5f", kl)
	if len(kl) < 3 || math.Abs(kl[0]) > 1e-6 || !(math.Abs(kl[len(kl)-1]) > 1e-6) {
		t.Errorf("objective/kl %v: want 0 at the first update (policy = reference), nonzero later", kl)
	}
	for _, f := range []string{model.AdapterConfigFile, model.AdapterWeightsFile, "value_model/model.safetensors"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("output lacks %s", f)
		}
	}
}
