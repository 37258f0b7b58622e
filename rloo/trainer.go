package rloo

import (
	"context"
	"fmt"
	"math"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/dist"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/rollout"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
	"github.com/rlsuite/rl/shared/train"
)

// sample is one completion of a generation batch, scored.
type sample struct {
	c       *rollout.Completion
	masked  bool      // left out of the loss (mask_truncated_completions)
	adv     float64   // leave-one-out advantage
	oldLogp float64   // the completion's summed log-prob at generation time
	rewards []float64 // per reward function (NaN: none)
}

type microBatch = rollout.MicroBatch[*sample]

// Task computes RLOO's loss over micro-batches of the generations its
// rollout.Online makes and scores (rewards with the KL penalty and
// leave-one-out advantages: Score).
type Task struct {
	*rollout.Online[*sample]
	cfg     *Config
	weights []float64
}

// score computes a generation's rewards with the KL penalty, its
// leave-one-out advantages and its metrics over the whole generation.
// RLOO always keeps the generation-time log-probs: they are the old
// policy's and feed the KL penalty.
func (t *Task) score(gen *rollout.Generation) ([]*sample, map[string]float64, error) {
	cfg := t.cfg
	G := cfg.NumGenerations
	cs, perFunc, old := gen.Cs, gen.PerFunc, gen.Old
	N := len(cs)
	masked := make([]bool, N)
	for i, c := range cs {
		masked[i] = cfg.MaskTruncatedCompletions && !c.Terminated
	}
	oldSum := make([]float64, N)
	for i := range old {
		if !masked[i] {
			for _, v := range old[i] {
				oldSum[i] += v
			}
		}
	}
	var klSum []float64
	var klTok, nTok float64
	if cfg.Beta != 0 {
		ref := gen.Ref
		klSum = make([]float64, N)
		for i := range ref {
			if masked[i] {
				continue
			}
			for j := range ref[i] {
				klSum[i] += old[i][j] - ref[i][j] // k1, per token
			}
			klTok += klSum[i]
			nTok += float64(len(ref[i]))
		}
	}
	R := Rewards(perFunc, t.weights, cfg.RewardClipRange, cfg.Beta, klSum)
	adv, zeroStd := Advantages(R, G, cfg.NormalizeAdvantages)
	ss := make([]*sample, N)
	rewards := make([]float64, N) // logged: the weighted sum, before clipping and KL
	for i, c := range cs {
		ss[i] = &sample{c: c, adv: adv[i], oldLogp: oldSum[i], rewards: perFunc[i], masked: masked[i]}
		rewards[i] = rollout.WeightedSum(perFunc[i], t.weights)
	}
	// metrics of this generation (TRL's names)
	st := rollout.CompletionStats(cs)
	for k, r := range t.Rewards {
		col := make([]float64, N)
		for i := range col {
			col[i] = perFunc[i][k]
		}
		st["rewards/"+r.Name+"/mean"], st["rewards/"+r.Name+"/std"] = nanMeanStd(col)
	}
	st["reward"], st["reward_std"] = nanMeanStd(rewards)
	var z float64
	for _, b := range zeroStd {
		if b {
			z++
		}
	}
	st["frac_reward_zero_std"] = z / float64(len(zeroStd))
	if cfg.Beta != 0 {
		st["kl"] = klTok / math.Max(nTok, 1)
	}
	return ss, st, nil
}

// Loss implements train.Task: TRL returns the micro-batch mean and the
// HF Trainer divides it by gradient_accumulation_steps, as rl's trainer
// does. Its metrics are reduced across ranks as TRL's (entropy: token
// sums and counts summed over the ranks; clip ratios over every rank's
// sequences).
func (t *Task) Loss(b *microBatch, acc *metrics.Accumulator, training bool) *tensor.Tensor {
	cfg := t.cfg
	dev, dt := t.Policy.Device, t.Policy.DType
	cs := make([]*rollout.Completion, len(b.SS))
	masked := make([]bool, len(b.SS))
	for i, s := range b.SS {
		cs[i], masked[i] = s.c, s.masked
	}
	batch := rollout.LossBatch(cs, masked, t.Pad, dev)
	mask := batch.CompletionMask(dt)                            // (B, T)
	tok := batch.HeadLogps(t.Policy, cfg.Temperature, training) // chunked LM head: no (B, T, V) logits
	logp := tok.Logp                                            // (B, T)
	old := make([]float32, len(b.SS))
	adv := make([]float32, len(b.SS))
	for i, s := range b.SS {
		old[i], adv[i] = float32(s.oldLogp), float32(s.adv)
	}
	B := int64(len(b.SS))
	loss, st := Loss(logp, mask, tensor.FromFloat32s(old, B).To(dt, dev), tensor.FromFloat32s(adv, B).To(dt, dev), cfg.Epsilon, cfg.EpsHigh())
	var tokens, entropy float64
	tensor.NoGrad(func() {
		tokens = mask.Sum().ItemF64()
		entropy = tok.Entropy.Mul(mask).Sum().ItemF64()
	})
	n := float64(B)
	t.AddStats(acc, []rollout.Stat{
		{Key: "entropy", Sum: entropy, N: tokens},
		{Key: "clip_ratio/low_mean", Sum: st.ClipLowMean * n, N: n},
		{Key: "clip_ratio/low_min", Sum: st.ClipLowMin, Op: rollout.StatMin},
		{Key: "clip_ratio/high_mean", Sum: st.ClipHighMean * n, N: n},
		{Key: "clip_ratio/high_max", Sum: st.ClipHighMax, Op: rollout.StatMax},
		{Key: "clip_ratio/region_mean", Sum: st.ClipRegionMean * n, N: n},
	})
	return loss
}

// Result summarises a run.
type Result struct {
	*train.Result
	Generations int
}

// Run trains the policy with RLOO and writes it to cfg.OutputDir.
func Run(ctx context.Context, cfg Config, log zerolog.Logger, rawConfig []byte) (res *Result, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rloo: %w", err)
	}
	if err := train.CheckInputs(cfg.OutputDir, cfg.inputs()); err != nil {
		return nil, err
	}
	env, err := rollout.Load(cfg.options(log))
	if err != nil {
		return nil, err
	}
	defer env.Free()
	genBatch, stepsPerGen, err := cfg.Derived(dist.Current().Size())
	if err != nil {
		return nil, fmt.Errorf("rloo: %w", err)
	}
	sched := rollout.Schedule[*sample]{GAS: cfg.GradientAccumulationSteps, StepsPerGeneration: stepsPerGen, NumIterations: cfg.NumIterations}
	t := &Task{cfg: &cfg, weights: cfg.weights()}
	t.Online = (&rollout.Online[*sample]{Name: "rloo", Seed: cfg.Seed, NumGenerations: cfg.NumGenerations, Shuffle: cfg.ShuffleDataset,
		Temperature: cfg.Temperature, Chunk: cfg.GenerationChunk, GenBatch: genBatch, Sched: sched,
		LogCompletions: cfg.LogCompletions, OutDir: cfg.OutputDir, Log: log}).Attach(env)
	t.WantOld, t.WantRef, t.Score = true, cfg.Beta != 0, t.score
	t.Completion = func(s *sample) *rollout.Completion { return s.c }
	t.Logged = func(step int, s *sample) rollout.Logged {
		return rollout.LogCompletion(step, s.c, t.Rewards, s.rewards, s.adv)
	}
	log.Info().Int("prompts", len(t.Prompts)).Int("generation_batch_size", genBatch).Int("steps_per_generation", stepsPerGen).
		Bool("reference", env.Ref != nil).Msg("rloo")
	out, err := rollout.Train(ctx, t.Online, t, cfg.Args, cfg.NumTrainEpochs, cfg.Model, rawConfig, cfg.inputs(), env.Tok)
	if err != nil {
		return nil, err
	}
	return &Result{Result: out, Generations: t.Generations()}, nil
}

// Preview returns the token ids of the first n training prompts exactly as
// Run encodes them (rl data show), with the tokenizer, without loading
// models.
func Preview(cfg Config, n int) ([][]int, *tokenizer.Tokenizer, error) {
	return rollout.Preview(cfg.options(zerolog.Nop()), n)
}
