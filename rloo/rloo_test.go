package rloo

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/sft"
	"github.com/rlsuite/rl/shared/rollout/rollouttest"
)

func init() { rollouttest.Register("rloo") }

// setup trains a tokenizer and a small SFT policy that writes random
// words (rollouttest.Setup).
func setup(t *testing.T) (sftDir, data string) {
	return rollouttest.Setup(t, func(init, tokDir, data, out string) error {
		sc := sft.DefaultConfig()
		sc.Init, sc.Tokenizer, sc.Dataset, sc.OutputDir = init, tokDir, data, out
		sc.MaxSteps, sc.PerDeviceTrainBatchSize, sc.LearningRate, sc.SaveStrategy = 60, 16, 3e-3, "no"
		_, err := sft.Run(context.Background(), sc, zerolog.Nop(), nil)
		return err
	})
}

func rlooConfig(sftDir, data, out string) Config {
	c := DefaultConfig()
	c.Model, c.RewardFuncs, c.Dataset, c.OutputDir = sftDir, []string{"builtin:rloo-test-good", "builtin:length"}, data, out
	c.RewardWeights = []float64{1, 0}
	c.NumGenerations = 4
	c.PerDeviceTrainBatchSize = 8
	c.GradientAccumulationSteps = 2 // generations of 16: 4 prompts x 4 completions
	c.MaxCompletionLength = 6
	c.MaxSteps = 16
	c.LearningRate = 5e-4
	c.Beta = 0.02
	c.LoggingSteps = 1
	c.SaveSteps = 8
	c.WarmupSteps = 0
	c.LRSchedulerType = "constant"
	return c
}

func series(t *testing.T, dir, key string) []float64 { return rollouttest.Series(t, dir, key) }

func mean(x []float64) float64 { return rollouttest.Mean(x) }

// TestRLOORaisesKnownReward: with a programmatic reward (the share of the
// word "good"), RLOO raises the mean reward over the SFT start with the
// KL penalty on; TRL's metrics are logged; a run resumed from a mid-run
// checkpoint logs the same losses and rewards as the uninterrupted one.
func TestRLOORaisesKnownReward(t *testing.T) {
	sftDir, data := setup(t)
	out := t.TempDir()
	res, err := Run(context.Background(), rlooConfig(sftDir, data, out), zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := series(t, out, "reward")
	if len(r) != 16 {
		t.Fatalf("%d reward logs, want 16", len(r))
	}
	first, last := mean(r[:4]), mean(r[len(r)-4:])
	t.Logf("reward per step: %.3f", r)
	if !(last > first+0.15) {
		t.Errorf("mean reward went from %.3f to %.3f; want a rise of at least 0.15", first, last)
	}
	for _, k := range []string{"reward_std", "rewards/rloo-test-good/mean", "rewards/rloo-test-good/std", "rewards/length/mean", "frac_reward_zero_std",
		"kl", "entropy", "clip_ratio/low_mean", "clip_ratio/low_min", "clip_ratio/high_mean", "clip_ratio/high_max", "clip_ratio/region_mean",
		"completions/mean_length", "completions/min_length", "completions/max_length", "completions/clipped_ratio",
		"completions/mean_terminated_length", "completions/min_terminated_length", "completions/max_terminated_length", "num_tokens", "loss"} {
		if _, ok := res.LastMetrics[k]; !ok {
			t.Errorf("metric %s not logged", k)
		}
	}
	if kl := series(t, out, "kl"); !(kl[len(kl)-1] > 0 && kl[len(kl)-1] < 10) {
		t.Errorf("kl per step %v: want > 0 and bounded at the end", kl)
	}

	part := t.TempDir()
	ck := filepath.Join(out, "checkpoint-8")
	if err := os.CopyFS(filepath.Join(part, "checkpoint-8"), os.DirFS(ck)); err != nil {
		t.Fatal(err)
	}
	cfg := rlooConfig(sftDir, data, part)
	cfg.ResumeFromCheckpoint = "last"
	if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"reward", "loss", "kl", "num_tokens", "entropy"} {
		full, got := series(t, out, k), series(t, part, k)
		if len(got) != 8 {
			t.Fatalf("%s: resumed run logged %d steps, want 8", k, len(got))
		}
		for i := range got {
			if !near(got[i], full[8+i], 1e-6) {
				t.Errorf("%s step %d: resumed %.6f, uninterrupted %.6f", k, 9+i, got[i], full[8+i])
			}
		}
	}
}

// TestRLOOIterationsAndOptions: num_iterations 2 reuses each generation
// (the sequence ratio leaves 1 and gets clipped sometimes),
// normalize_advantages and reward_clip_range run, and the reward still
// rises.
func TestRLOOIterationsAndOptions(t *testing.T) {
	sftDir, data := setup(t)
	out := t.TempDir()
	cfg := rlooConfig(sftDir, data, out)
	cfg.NumIterations, cfg.NormalizeAdvantages, cfg.RewardClipRange = 2, true, []float64{0, 0.75}
	cfg.SaveStrategy = "no"
	res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Generations != 8 {
		t.Errorf("%d generations, want 8 (16 steps, each generation used twice)", res.Generations)
	}
	r := series(t, out, "reward")
	t.Logf("reward per generation: %.3f", r)
	if len(r) != 8 || !(mean(r[len(r)-3:]) > mean(r[:3])+0.1) {
		t.Errorf("reward per generation %v: want 8 values, rising by at least 0.1", r)
	}
	if reg := series(t, out, "clip_ratio/region_mean"); mean(reg) == 0 {
		t.Errorf("clip_ratio/region_mean always 0 with num_iterations 2: %v", reg)
	}
}
