package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/ppo"
	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// rlPPO times rl ppo itself (ppo.Run, the code users run) on torch_ref's
// sampling shape: a tiny policy, reference, value and reward model, 8
// prompts of 32 tokens, 64-token responses sampled at temperature 1 with the
// KV cache, then TRL's default 4 PPO epochs over the batch. It reports the
// rollout's generation throughput next to torch_ref.py's KV-cache sampling
// figure (same model shape, batch, prompt and length), and the wall time of
// one whole PPO update (rollout + scoring + 4 optimizer steps; rl only:
// torch_ref.py has no PPO peer).
func rlPPO(e *env, config string, p measureParams) (res []*Result, err error) {
	defer tensor.Recover(&err, "ppo "+config)
	s := shapes[config]
	dir, err := os.MkdirTemp("", "rl-bench-ppo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	policy, tok, data, err := rolloutFixture(s, dir)
	if err != nil {
		return nil, err
	}
	defer policy.Free()
	rcfg := policy.Config
	rcfg.NumLabels = 1
	tensor.ManualSeed(1)
	rm, err := model.New(rcfg, model.ScoreHead, tensor.Float32, tensor.CPU)
	if err != nil {
		return nil, err
	}
	err = checkpoint.Save(filepath.Join(dir, "reward"), rm, tok)
	rm.Free()
	if err != nil {
		return nil, err
	}

	updates := p.Warmup + p.Runs
	cfg := ppo.DefaultConfig()
	cfg.SFTModel, cfg.Reward, cfg.Dataset = filepath.Join(dir, "sft"), filepath.Join(dir, "reward"), data
	cfg.OutputDir = filepath.Join(dir, "out")
	cfg.PerDeviceTrainBatchSize = genBatch
	cfg.ResponseLength = genNew
	cfg.Temperature = 1.0 // torch_ref samples at T=1
	cfg.TotalEpisodes = genBatch * updates
	cfg.LoggingSteps = 1
	cfg.SaveStrategy = "no"
	cfg.NumSampleGenerations = 0
	if _, err := ppo.Run(context.Background(), cfg, zerolog.Nop(), nil); err != nil {
		return nil, err
	}
	entries, err := metrics.ReadFile(filepath.Join(cfg.OutputDir, "metrics.jsonl"))
	if err != nil {
		return nil, err
	}
	var gen, upd, roll []float64
	for _, en := range entries {
		if v, ok := en.Values["gen_tokens_per_s"]; ok {
			gen = append(gen, v)
			upd = append(upd, en.Values["time/update_s"])
			roll = append(roll, en.Values["time/rollout_s"])
		}
	}
	if len(gen) != updates {
		return nil, fmt.Errorf("ppo logged %d updates, want %d", len(gen), updates)
	}
	w := p.Warmup
	genSt := Stats{Value: round2(median(gen[w:])), Runs: gen[w:]}
	updSt := Stats{Value: round3(median(upd[w:])), Runs: upd[w:]}
	extra := map[string]any{"batch": genBatch, "prompt_len": genPrompt, "response_length": genNew,
		"num_ppo_epochs": cfg.NumPPOEpochs, "num_mini_batches": cfg.NumMiniBatches, "warmup_updates": w,
		"rollout_s_median": round3(median(roll[w:]))}
	return []*Result{
		{Name: "ppo_rollout_generation", Config: config, Unit: "new_tokens/s", Better: higher, RL: genSt.Value, RLStats: &genSt,
			Target: ">= 1.0x PyTorch", Extra: extra,
			torchValue: e.cachedTorchValue("sample", config, "sample_kvcache", e.opts.params(refParams("sample")(config), "sample"))},
		{Name: "ppo_update", Config: config, Unit: "s/update", Better: lower, RL: updSt.Value, RLStats: &updSt, Extra: map[string]any{
			"episodes_per_s": round2(float64(genBatch) / updSt.Value),
			"note":           "one whole update of rl ppo: rollout (generation, policy/reference/value/reward forwards, GAE) + num_ppo_epochs optimizer steps; torch_ref.py has no PPO peer",
		}},
	}, nil
}

// rolloutFixture writes, into dir, a byte-level tokenizer that learned
// merges of letters only (so that a prompt of 32 digits and punctuation is
// exactly 32 tokens), genBatch such prompts (prompts.jsonl) and a tiny
// policy of shape s saved with the tokenizer (dir/sft). The model keeps
// torch_ref's 8,192-row vocabulary: ids past the tokenizer's decode to
// nothing. The caller frees policy.
func rolloutFixture(s shape, dir string) (policy *model.Model, tok *tokenizer.Tokenizer, data string, err error) {
	rng := rand.New(rand.NewPCG(0, 5))
	var corpus []string
	for i := 0; i < 200; i++ {
		var b strings.Builder
		for j := 0; j < 40; j++ {
			b.WriteByte(byte('a' + rng.IntN(26)))
		}
		corpus = append(corpus, b.String())
	}
	if tok, err = tokenizer.Train(slices.Values(corpus), tokenizer.TrainOptions{VocabSize: 300}); err != nil {
		return nil, nil, "", err
	}
	const symbols = "0123456789.,;:!?#%&*+-=<>"
	var rows []string
	for i := 0; i < genBatch; i++ {
		b := make([]byte, genPrompt)
		for j := range b {
			b[j] = symbols[rng.IntN(len(symbols))]
		}
		if ids, err := tok.Encode(string(b), true); err != nil || len(ids) != genPrompt {
			return nil, nil, "", fmt.Errorf("bench prompt is %d tokens, want %d (%v)", len(ids), genPrompt, err)
		}
		row, _ := json.Marshal(map[string]string{"prompt": string(b)})
		rows = append(rows, string(row))
	}
	data = filepath.Join(dir, "prompts.jsonl")
	if err := os.WriteFile(data, []byte(strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		return nil, nil, "", err
	}
	if policy, err = newModel(s, 0); err != nil {
		return nil, nil, "", err
	}
	if err = checkpoint.Save(filepath.Join(dir, "sft"), policy, tok); err != nil {
		policy.Free()
		return nil, nil, "", err
	}
	return policy, tok, data, nil
}
