package grpo

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/sft"
	"github.com/rlsuite/rl/shared/rollout/rollouttest"
)

func init() { rollouttest.Register("grpo") }

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

func grpoConfig(sftDir, data, out string) Config {
	c := DefaultConfig()
	c.Model, c.RewardFuncs, c.Dataset, c.OutputDir = sftDir, []string{"builtin:grpo-test-good", "builtin:length"}, data, out
	c.RewardWeights = []float64{1, 0}
	c.NumGenerations = 4
	c.PerDeviceTrainBatchSize = 8
	c.GradientAccumulationSteps = 2 // generations of 16: 4 prompts x 4 completions
	c.MaxCompletionLength = 6
	c.MaxSteps = 16
	c.LearningRate = 5e-4
	c.LoggingSteps = 1
	c.SaveSteps = 8
	c.WarmupSteps = 0
	c.LRSchedulerType = "constant"
	return c
}

func series(t *testing.T, dir, key string) []float64 { return rollouttest.Series(t, dir, key) }

func mean(x []float64) float64 { return rollouttest.Mean(x) }

// TestGRPORaisesKnownReward: with a programmatic reward (the share of the
// word "good"), GRPO raises the mean reward over the SFT start; TRL's
// metrics are logged; a run resumed from a mid-run checkpoint logs the
// same losses and rewards as the uninterrupted one.
func TestGRPORaisesKnownReward(t *testing.T) {
	sftDir, data := setup(t)
	out := t.TempDir()
	res, err := Run(context.Background(), grpoConfig(sftDir, data, out), zerolog.Nop(), nil)
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
	for _, k := range []string{"reward_std", "rewards/grpo-test-good/mean", "rewards/grpo-test-good/std", "rewards/length/mean", "frac_reward_zero_std",
		"entropy", "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean", "completions/mean_length", "completions/min_length",
		"completions/max_length", "completions/clipped_ratio", "completions/mean_terminated_length", "completions/min_terminated_length",
		"completions/max_terminated_length", "num_tokens", "loss", "grad_norm"} {
		if _, ok := res.LastMetrics[k]; !ok {
			t.Errorf("metric %s not logged", k)
		}
	}
	if _, ok := res.LastMetrics["kl"]; ok {
		t.Errorf("kl logged with beta 0")
	}

	// resume from checkpoint-8 (a generation boundary: one generation per step)
	part := t.TempDir()
	ck := filepath.Join(out, "checkpoint-8")
	if err := os.CopyFS(filepath.Join(part, "checkpoint-8"), os.DirFS(ck)); err != nil {
		t.Fatal(err)
	}
	cfg := grpoConfig(sftDir, data, part)
	cfg.ResumeFromCheckpoint = "last"
	if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"reward", "loss", "num_tokens", "entropy"} {
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

// TestGRPOOldLogpsAndKL: num_iterations 2 and steps_per_generation 4
// (each generation serves 4 optimizer steps of 2 micro-batches) keep the
// generation's log-probs as the old policy's; beta > 0 loads the
// reference and logs kl; the grpo loss with batch scaling trains; the reward still rises; checkpoints fall on generation
// boundaries only.
func TestGRPOOldLogpsAndKL(t *testing.T) {
	sftDir, data := setup(t)
	out := t.TempDir()
	cfg := grpoConfig(sftDir, data, out)
	cfg.NumIterations, cfg.StepsPerGeneration = 2, ptr(4) // generations of 32
	cfg.Beta, cfg.LossType, cfg.ImportanceSamplingLevel, cfg.ScaleRewards = 0.02, "grpo", "token", "batch"
	cfg.MaxSteps, cfg.SaveSteps = 16, 2
	res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := series(t, out, "reward")
	t.Logf("reward per step: %.3f", r)
	if res.Generations != 4 {
		t.Errorf("%d generations, want 4 (16 steps x 2 micro-batches / (4 x 2))", res.Generations)
	}
	// reward is logged at the steps that generate, as TRL's metric lists
	if len(r) != 4 || !(r[3] > r[0]+0.1) {
		t.Errorf("reward per generation %v: want 4 values rising by at least 0.1", r)
	}
	kl := series(t, out, "kl")
	if len(kl) != 16 || !(kl[len(kl)-1] > 0) || kl[0] != 0 && kl[0] > 1e-6 {
		t.Errorf("kl per step %v: want 16 values, 0 at the start (policy = reference), > 0 at the end", kl)
	}
	// the ratio moves away from 1 within a generation: some clipping happens
	if reg := series(t, out, "clip_ratio/region_mean"); mean(reg) == 0 {
		t.Errorf("clip_ratio/region_mean always 0 with num_iterations 2: %v", reg)
	}
	for _, ck := range []string{"checkpoint-4", "checkpoint-8", "checkpoint-12"} {
		if _, err := os.Stat(filepath.Join(out, ck)); err != nil {
			t.Errorf("no %s", ck)
		}
	}
	for _, ck := range []string{"checkpoint-2", "checkpoint-6"} {
		if _, err := os.Stat(filepath.Join(out, ck)); err == nil {
			t.Errorf("%s is inside a generation, yet saved", ck)
		}
	}
}

// TestGRPOBF16: generation and updates under bfloat16 autocast with the
// KL on and mask_truncated_completions: the metrics stay finite.
func TestGRPOBF16(t *testing.T) {
	sftDir, data := setup(t)
	out := t.TempDir()
	cfg := grpoConfig(sftDir, data, out)
	cfg.BF16, cfg.SaveStrategy, cfg.MaxSteps, cfg.Beta, cfg.MaskTruncatedCompletions = true, "no", 4, 0.04, true
	res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"loss", "kl", "entropy", "reward"} {
		v, ok := res.LastMetrics[k]
		if !ok || v != v || v > 1e9 || v < -1e9 {
			t.Errorf("%s = %v (logged %v)", k, v, ok)
		}
	}
}

// TestGRPOTwoGenerationsPerStep: steps_per_generation 2 with
// gradient_accumulation_steps 4 generates twice per optimizer step (TRL
// generates again after every 2 micro-batches); every step can resume.
// (dapo's normaliser is then each micro-batch's own generation's token
// count, carried by its samples.)
func TestGRPOTwoGenerationsPerStep(t *testing.T) {
	sftDir, data := setup(t)
	out := t.TempDir()
	cfg := grpoConfig(sftDir, data, out)
	cfg.PerDeviceTrainBatchSize, cfg.GradientAccumulationSteps, cfg.StepsPerGeneration = 4, 4, ptr(2) // generations of 8
	cfg.MaxSteps, cfg.SaveSteps = 3, 1
	res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Generations != 6 {
		t.Errorf("%d generations, want 6", res.Generations)
	}
	if r := series(t, out, "reward"); len(r) != 3 {
		t.Errorf("reward logged %d times, want at each of the 3 steps", len(r))
	}
	for _, ck := range []string{"checkpoint-1", "checkpoint-2"} {
		if _, err := os.Stat(filepath.Join(out, ck)); err != nil {
			t.Errorf("no %s", ck)
		}
	}
}
