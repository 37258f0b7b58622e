package dpo

import (
	"context"
	"math"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/preference/preftest"
)

// TestDPOLoRA: with use_peft, DPO trains adapters and its reference is the
// policy with the adapters disabled (TRL's behaviour, no second copy): the
// losses equal those of the same run with a separately loaded reference
// (ref_model = the SFT model) step for step; eval loss starts at ln 2 and
// falls, held-out reward accuracy rises above chance, and the output is a
// peft adapter over the SFT model.
func TestDPOLoRA(t *testing.T) {
	sftDir, _ := preftest.SFTModel(t)
	data := pairData(t)
	var runs [2][]float64
	var out string
	var evalLoss, evalAcc []float64
	for i, sep := range []bool{false, true} {
		cfg := baseConfig(t, sftDir, data)
		cfg.UsePEFT, cfg.LoraR, cfg.LoraTargetModules, cfg.LoraDropout = true, 8, []string{"all-linear"}, 0
		cfg.LearningRate = 5e-4
		cfg.MaxSteps, cfg.LoggingSteps = 24, 1
		cfg.EvalStrategy, cfg.EvalSteps, cfg.EvalOnStart = "steps", 12, true
		if sep {
			cfg.RefModel = sftDir
		} else {
			out = cfg.OutputDir
		}
		if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err != nil {
			t.Fatal(err)
		}
		h := preftest.LogHistory(t, cfg.OutputDir)
		runs[i] = preftest.Series(h, "loss")
		if !sep {
			evalLoss, evalAcc = preftest.Series(h, "eval_loss"), preftest.Series(h, "eval_rewards/accuracies")
		}
	}
	t.Logf("eval_loss %v, eval_rewards/accuracies %v", evalLoss, evalAcc)
	if len(runs[0]) != 24 || len(runs[1]) != 24 || len(evalLoss) != 3 {
		t.Fatalf("logged %d and %d losses and %d eval losses, want 24, 24, 3", len(runs[0]), len(runs[1]), len(evalLoss))
	}
	if math.Abs(evalLoss[0]-math.Ln2) > 1e-5 || !(evalLoss[2] < evalLoss[0]) || !(evalAcc[2] > 0.5) {
		t.Errorf("eval_loss %v (want from ln 2, falling), accuracies %v (want > 0.5 at the end)", evalLoss, evalAcc)
	}
	for s := range runs[0] {
		if math.Abs(runs[0][s]-runs[1][s]) > 1e-5 {
			t.Errorf("step %d: loss %.7f with the adapter-disabled reference, %.7f with a loaded copy", s+1, runs[0][s], runs[1][s])
		}
	}
	m, _, err := checkpoint.Load(out, model.LoadOptions{})
	if err != nil {
		t.Fatalf("load the DPO adapter: %v", err)
	}
	defer m.Free()
	if !m.HasAdapters() || m.Head != model.LMHead {
		t.Errorf("DPO LoRA output: adapters %v, head %v", m.HasAdapters(), m.Head)
	}
}
