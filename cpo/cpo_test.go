package cpo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/preference/preftest"
)

// TestCPOEndToEnd: CPO from a fresh tiny-llama on arithmetic pairs lowers
// the held-out loss and ranks the right sum above the wrong one on more
// held-out pairs than before; the output loads as a causal LM.
//
//	go test ./cpo/ -run TestCPOEndToEnd -v
func TestCPOEndToEnd(t *testing.T) {
	base := preftest.BaseModel(t)
	for _, tc := range []struct {
		lossType string
		beta     float64
		steps    int
	}{
		{"sigmoid", 0.5, 30},
		{"alphapo", 2, 15},
	} {
		t.Run(tc.lossType, func(t *testing.T) {
			began := time.Now()
			data := t.TempDir()
			var train, test []int
			for i := range 200 {
				train = append(train, (i*37)%100)
			}
			for i := range 50 {
				test = append(test, (i*13+5)%100)
			}
			preftest.ArithmeticPairs(t, filepath.Join(data, "train.jsonl"), train, 1)
			preftest.ArithmeticPairs(t, filepath.Join(data, "test.jsonl"), test, 3)
			cfg := DefaultConfig()
			cfg.Model = base
			cfg.Dataset = data
			cfg.OutputDir = t.TempDir()
			cfg.LossType = tc.lossType
			cfg.Beta = tc.beta
			if tc.lossType == "alphapo" {
				cfg.Alpha = 0.25
			}
			cfg.PerDeviceTrainBatchSize = 16
			cfg.PerDeviceEvalBatchSize = 50
			cfg.LearningRate = 1e-3
			cfg.WarmupSteps = 3
			cfg.SaveStrategy = "no"
			cfg.MaxLength = 32
			cfg.MaxSteps = tc.steps
			cfg.EvalStrategy = "steps"
			cfg.EvalSteps = tc.steps
			cfg.EvalOnStart = true
			res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
			if err != nil {
				t.Fatal(err)
			}
			h := preftest.LogHistory(t, cfg.OutputDir)
			losses, accs := preftest.Series(h, "eval_loss"), preftest.Series(h, "eval_rewards/accuracies")
			t.Logf("%s: %v; eval_loss %v, eval_rewards/accuracies %v, eval_nll_loss %v, eval_rewards/margins %v", tc.lossType, time.Since(began),
				losses, accs, preftest.Series(h, "eval_nll_loss"), preftest.Series(h, "eval_rewards/margins"))
			if len(losses) != 2 || len(accs) != 2 {
				t.Fatalf("eval_loss logged %d times, rewards/accuracies %d, want 2", len(losses), len(accs))
			}
			if !(losses[1] < losses[0]) {
				t.Errorf("eval_loss went %v: it did not fall", losses)
			}
			if !(accs[1] > accs[0]) || !(accs[1] > 0.6) {
				t.Errorf("eval rewards/accuracies went %v, want a rise to > 0.6", accs)
			}
			for _, k := range []string{"nll_loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
				"logps/chosen", "logps/rejected", "logits/chosen", "logits/rejected", "eval_nll_loss", "eval_rewards/accuracies"} {
				if _, ok := res.LastMetrics[k]; !ok {
					t.Errorf("metric %s not logged", k)
				}
			}
			if tc.lossType == "alphapo" {
				if nll := preftest.Series(h, "eval_nll_loss"); nll[len(nll)-1] != 0 {
					t.Errorf("alphapo: eval_nll_loss %v, want 0 (cpo_alpha 0)", nll)
				}
				return
			}
			m, _, err := checkpoint.Load(cfg.OutputDir, model.LoadOptions{})
			if err != nil {
				t.Fatalf("load CPO output: %v", err)
			}
			defer m.Free()
			if m.Head != model.LMHead {
				t.Errorf("CPO output loads with head %v, want a causal LM", m.Head)
			}
		})
	}
}

// TestBadInput: an empty completion names the file and line; a bad flag
// is refused before anything loads, naming the flag.
func TestBadInput(t *testing.T) {
	base := preftest.BaseModel(t)
	path := filepath.Join(t.TempDir(), "pairs.jsonl")
	body := `{"prompt": "2+2=", "chosen": "4", "rejected": "5"}` + "\n" + `{"prompt": "1+1=", "chosen": "2", "rejected": ""}` + "\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Model, cfg.Dataset, cfg.OutputDir, cfg.MaxSteps = base, path, t.TempDir(), 1
	_, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err == nil || !strings.Contains(err.Error(), "pairs.jsonl:2") || !strings.Contains(err.Error(), "rejected") {
		t.Errorf("error %v, want one naming pairs.jsonl:2 and rejected", err)
	}
	cfg.LossType, cfg.CPOAlpha = "simpo_v2", -1
	_, err = Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err == nil || !strings.Contains(err.Error(), "loss_type") || !strings.Contains(err.Error(), "cpo_alpha") {
		t.Errorf("error %v, want one naming loss_type and cpo_alpha", err)
	}
}

// TestMaxCompletionLength: completions are cut to max_completion_length
// tokens, prompts untouched.
func TestMaxCompletionLength(t *testing.T) {
	base := preftest.BaseModel(t)
	path := filepath.Join(t.TempDir(), "pairs.jsonl")
	if err := os.WriteFile(path, []byte(`{"prompt": "2+2=", "chosen": "4 4 4 4 4 4", "rejected": "5 5 5 5 5 5 5"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Model, cfg.Dataset = base, path
	full, _, err := Preview(cfg, 1, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	n := 2
	cfg.MaxCompletionLength = &n
	cut, _, err := Preview(cfg, 1, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	f, c := full[0], cut[0]
	if len(f.ChosenIDs()) <= n || len(c.ChosenIDs()) != n || len(c.RejectedIDs()) != n || len(c.PromptIDs()) != len(f.PromptIDs()) {
		t.Errorf("completions %d/%d tokens cut to %d/%d (prompt %d -> %d), want %d each", len(f.ChosenIDs()), len(f.RejectedIDs()), len(c.ChosenIDs()), len(c.RejectedIDs()), len(f.PromptIDs()), len(c.PromptIDs()), n)
	}
}
