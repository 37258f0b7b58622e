package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/grpo"
	"github.com/rlsuite/rl/shared/generate"
	"github.com/rlsuite/rl/shared/tensor"
)

// GRPO's rollout shape: grpoPrompts prompts of genPrompt tokens, each
// sampled grpoGenerations times (num_generations), genNew new tokens.
const (
	grpoPrompts     = 8
	grpoGenerations = 8
)

// rlGRPORollout times GRPO's rollout engine (generate.Generate, as
// rollout.Sampler calls it): 8 prompts x 8 generations x 64 new tokens
// at temperature 1, every prompt's copies next to each other (TRL's
// order), so the prefill is shared and the sampling runs in libtorch. Its
// peer is torch_ref.py's KV-cache sampler (multinomial, T = 1) generating
// the same 64 sequences as one batch of 64 rows (--gen-batch 64), in the
// same bench run. No row stops early (no eos), as in torch_ref.
func rlGRPORollout(e *env, config string, p measureParams) (res []*Result, err error) {
	defer tensor.Recover(&err, "grpo rollout "+config)
	s := shapes[config]
	m, err := newModel(s, 0)
	if err != nil {
		return nil, err
	}
	defer m.Free()
	rng := rand.New(rand.NewPCG(0, 7))
	var prompts [][]int
	for range grpoPrompts {
		var pr []int
		for i := 0; i < genPrompt; i++ {
			pr = append(pr, rng.IntN(s.Vocab))
		}
		for range grpoGenerations {
			prompts = append(prompts, pr)
		}
	}
	rows := len(prompts)
	cfg := generate.Config{DoSample: true, Temperature: 1, TopP: 1, MaxNewTokens: genNew, Seed: 1}
	var genErr error
	gen := func(c generate.Config) []generate.Result {
		out, err := generate.Generate(m, prompts, c)
		if err != nil && genErr == nil {
			genErr = err
		}
		return out
	}
	out := gen(cfg)
	if genErr != nil {
		return nil, genErr
	}
	for b, r := range out {
		if len(r.Tokens) != genNew {
			return nil, fmt.Errorf("grpo_rollout: row %d generated %d tokens, want %d", b, len(r.Tokens), genNew)
		}
	}
	st := measure(func() { gen(cfg) }, float64(rows*genNew), p)
	if genErr != nil {
		return nil, genErr
	}
	key := "sample-64/" + config
	torchValue := func(*torchRun) (float64, torchRecord, error) {
		if e.torch.skipped != "" {
			return 0, nil, fmt.Errorf("skipped: %s", e.torch.skipped)
		}
		run, ok := e.torchRuns[key]
		if !ok {
			run = e.torch.run("sample_kv", config, p, "--gen-batch", fmt.Sprint(rows))
			e.torchRuns[key] = run
			e.rep.TorchRuns = append(e.rep.TorchRuns, run)
		}
		rec, err := run.find("sample_kvcache", config)
		if err != nil {
			return 0, nil, err
		}
		v, _ := rec.num("value")
		return v, rec, nil
	}
	return []*Result{{Name: "grpo_rollout", Config: config, Unit: "new_tokens/s", Better: higher, RL: st.Value, RLStats: &st,
		Target: ">= 3.0x PyTorch", minRatio: 3, torchValue: torchValue, Extra: map[string]any{
			"prompts": grpoPrompts, "num_generations": grpoGenerations, "rows": rows, "prompt_len": genPrompt, "new_tokens": genNew,
			"sampling": "multinomial T=1.0 (rl: libtorch ops, shared prefill, compaction; PyTorch: torch_ref.py generate(), --gen-batch 64)",
			"note":     "value = rows*new_tokens / wall s per Generate call (prefill included)",
		}}}, nil
}

// rlGRPOStep times whole optimizer steps of rl grpo (grpo.Run, the code
// users run) on the rollout shape: each step samples a generation of 64
// (8 prompts x 8, 64 new tokens at temperature 1), scores it
// (builtin:length), and trains on it (8 micro-batches of 8, one AdamW
// step). One run of 1 + p.Runs steps; a step's time is the time between
// the console lines of consecutive logged steps (so loading and the first
// step's warm-up are left out), the median reported.
func rlGRPOStep(e *env, config string, p measureParams) (res []*Result, err error) {
	defer tensor.Recover(&err, "grpo step "+config)
	s := shapes[config]
	dir, err := os.MkdirTemp("", "rl-bench-grpo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	policy, _, data, err := rolloutFixture(s, dir)
	if err != nil {
		return nil, err
	}
	policy.Free()
	n := max(p.Runs, 1)
	cfg := grpo.DefaultConfig()
	cfg.Model, cfg.Dataset, cfg.RewardFuncs = filepath.Join(dir, "sft"), data, []string{"builtin:length"}
	cfg.OutputDir = filepath.Join(dir, "out")
	cfg.NumGenerations = grpoGenerations
	cfg.PerDeviceTrainBatchSize, cfg.GradientAccumulationSteps = grpoPrompts, grpoGenerations // one generation of 64 per step
	cfg.MaxCompletionLength, cfg.Temperature = genNew, 1
	cfg.MaxSteps, cfg.LoggingSteps, cfg.SaveStrategy = 1+n, 1, "no"
	var at []time.Time // when each step's first console line was logged
	log := zerolog.New(io.Discard).Hook(zerolog.HookFunc(func(_ *zerolog.Event, _ zerolog.Level, msg string) {
		var k int
		if _, err := fmt.Sscanf(msg, "step %d/", &k); err == nil && k == len(at)+1 {
			at = append(at, time.Now())
		}
	}))
	if _, err := grpo.Run(context.Background(), cfg, log, nil); err != nil {
		return nil, err
	}
	if len(at) != 1+n {
		return nil, fmt.Errorf("grpo_step: %d step lines logged, want %d", len(at), 1+n)
	}
	var steps []float64
	for i := 1; i < len(at); i++ {
		steps = append(steps, round3(at[i].Sub(at[i-1]).Seconds()))
	}
	v := round3(median(steps))
	return []*Result{{Name: "grpo_step", Config: config, Unit: "s/step", Better: lower, RL: v, RLStats: &Stats{Value: v, Runs: steps}, Extra: map[string]any{
		"generation": grpoPrompts * grpoGenerations, "new_tokens": genNew, "micro_batches": grpoGenerations, "steps_timed": n,
		"note": "one whole rl grpo optimizer step: rollout (generation, reward) + 8 micro-batches forward/backward + AdamW, between consecutive step logs; torch_ref.py has no GRPO peer",
	}}}, nil
}
