package grpo

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/dist"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/rollout"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
	"github.com/rlsuite/rl/shared/train"
)

// sample is one completion of a generation batch, scored.
type sample struct {
	c        *rollout.Completion
	masked   bool      // left out of the loss (mask_truncated_completions)
	adv      float64   // group-relative advantage
	old, ref []float64 // per-token log-probs at generation time (nil when not needed)
	rewards  []float64 // per reward function (NaN: none)
	// numItems is num_items_in_batch: the completion tokens in the loss
	// of the sample's whole generation batch (dapo's normaliser).
	numItems float64
}

type microBatch = rollout.MicroBatch[*sample]

// Task computes GRPO's loss over micro-batches of the generations its
// rollout.Online makes and scores (advantages: Score).
type Task struct {
	*rollout.Online[*sample]
	cfg    *Config
	Policy *model.Model
	world  int // data-parallel ranks (1: one process)

	weights []float64
}

// score computes a generation's group-relative advantages and metrics
// (TRL's _generate_and_score_completions) over the whole generation.
func (t *Task) score(gen *rollout.Generation) ([]*sample, map[string]float64, error) {
	cfg := t.cfg
	G := cfg.NumGenerations
	cs, perFunc := gen.Cs, gen.PerFunc
	N := len(cs)
	adv, rewards, zeroStd := Advantages(perFunc, t.weights, G, cfg.ScaleRewards)
	ss := make([]*sample, N)
	var numItems float64
	for i, c := range cs {
		ss[i] = &sample{c: c, adv: adv[i], rewards: perFunc[i], masked: cfg.MaskTruncatedCompletions && !c.Terminated}
		if gen.Old != nil {
			ss[i].old = gen.Old[i]
		}
		if gen.Ref != nil {
			ss[i].ref = gen.Ref[i]
		}
		if !ss[i].masked {
			numItems += float64(len(c.IDs))
		}
	}
	for _, s := range ss {
		s.numItems = numItems
	}
	// metrics of this generation (TRL's names)
	st := rollout.CompletionStats(cs)
	for k, r := range t.Rewards {
		col := make([]float64, N)
		for i := range col {
			col[i] = perFunc[i][k]
		}
		st["rewards/"+r.Name+"/mean"], st["rewards/"+r.Name+"/std"] = NanMeanStd(col)
	}
	st["reward"], st["reward_std"] = NanMeanStd(rewards)
	var z float64
	for _, b := range zeroStd {
		if b {
			z++
		}
	}
	st["frac_reward_zero_std"] = z / float64(N)
	return ss, st, nil
}

// padded lays out per-sample per-token values as (B, T), zeros after each end.
func padded(ss []*sample, T int, get func(*sample) []float64, dt tensor.DType, dev tensor.Device) *tensor.Tensor {
	v := make([]float32, len(ss)*T)
	for i, s := range ss {
		for j, x := range get(s) {
			v[i*T+j] = float32(x)
		}
	}
	return tensor.FromFloat32s(v, int64(len(ss)), int64(T)).To(dt, dev)
}

// Loss implements train.Task. The trainer scales each micro-batch by
// 1/gradient_accumulation_steps; Loss undoes that, so the gradient is
// TRL's (whose loss types scale themselves). Its metrics are reduced
// across ranks as TRL's (global_masked_mean: token sums and counts
// summed over the ranks; low_min and high_max over every rank's
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
	var old, ref *tensor.Tensor
	if t.Sched.NeedOld() {
		old = padded(b.SS, batch.T, func(s *sample) []float64 { return s.old }, dt, dev)
	}
	if cfg.Beta != 0 {
		ref = padded(b.SS, batch.T, func(s *sample) []float64 { return s.ref }, dt, dev)
	}
	adv := make([]float32, len(b.SS))
	for i, s := range b.SS {
		adv[i] = float32(s.adv)
	}
	advT := tensor.FromFloat32s(adv, int64(len(adv)), 1).To(dt, dev)
	// dapo: TRL divides num_items_in_batch (the generation's, gathered) by
	// num_processes, so that DDP's average of the ranks' gradients is one
	// process's
	loss, st := Loss(logp, old, ref, advT, mask, LossParams{
		LossType: cfg.LossType, Level: cfg.ImportanceSamplingLevel, EpsLow: cfg.Epsilon, EpsHigh: cfg.EpsHigh(),
		Delta: cfg.Delta, Beta: cfg.Beta, MaxCompletionLength: cfg.MaxCompletionLength, NumItems: b.SS[0].numItems / float64(t.world), // one generation per micro-batch
		GAS: cfg.GradientAccumulationSteps,
	})
	var tokens, entropy float64
	tensor.NoGrad(func() {
		tokens = mask.Sum().ItemF64()
		entropy = tok.Entropy.Mul(mask).Sum().ItemF64()
	})
	stats := []rollout.Stat{{Key: "entropy", Sum: entropy, N: tokens}}
	if cfg.Beta != 0 {
		stats = append(stats, rollout.Stat{Key: "kl", Sum: st.KL * tokens, N: tokens})
	}
	n := st.ClipCount
	stats = append(stats,
		rollout.Stat{Key: "clip_ratio/low_mean", Sum: st.ClipLowMean * n, N: n},
		rollout.Stat{Key: "clip_ratio/high_mean", Sum: st.ClipHighMean * n, N: n},
		rollout.Stat{Key: "clip_ratio/region_mean", Sum: st.ClipRegionMean * n, N: n},
		rollout.Stat{Key: "clip_ratio/low_min", Sum: st.ClipLowMin, Op: rollout.StatMin},
		rollout.Stat{Key: "clip_ratio/high_max", Sum: st.ClipHighMax, Op: rollout.StatMax})
	t.AddStats(acc, stats)
	return loss.MulScalar(float64(cfg.GradientAccumulationSteps))
}

// Result summarises a run.
type Result struct {
	*train.Result
	Generations int
}

// Run trains the policy with GRPO and writes it to cfg.OutputDir.
func Run(ctx context.Context, cfg Config, log zerolog.Logger, rawConfig []byte) (res *Result, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("grpo: %w", err)
	}
	if err := train.CheckInputs(cfg.OutputDir, cfg.inputs()); err != nil {
		return nil, err
	}
	env, err := rollout.Load(cfg.options(log))
	if err != nil {
		return nil, err
	}
	defer env.Free()
	world := dist.Current().Size()
	genBatch, stepsPerGen, err := cfg.Derived(world)
	if err != nil {
		return nil, fmt.Errorf("grpo: %w", err)
	}
	gas := cfg.GradientAccumulationSteps
	// TRL keeps the old log-probs only when generation and optimizer steps
	// are misaligned (Schedule.NeedOld); otherwise the old policy is the
	// current one and the loss uses per_token_logps.detach().
	sched := rollout.Schedule[*sample]{GAS: gas, StepsPerGeneration: stepsPerGen, NumIterations: cfg.NumIterations}
	t := &Task{cfg: &cfg, Policy: env.Policy, weights: cfg.weights(), world: world}
	t.Online = (&rollout.Online[*sample]{Name: "grpo", Seed: cfg.Seed, NumGenerations: cfg.NumGenerations, Shuffle: cfg.ShuffleDataset,
		Temperature: cfg.Temperature, Chunk: cfg.GenerationChunk, GenBatch: genBatch, Sched: sched,
		LogCompletions: cfg.LogCompletions, OutDir: cfg.OutputDir, Log: log}).Attach(env)
	t.WantOld, t.WantRef, t.Score = sched.NeedOld(), cfg.Beta != 0, t.score
	t.Completion = func(s *sample) *rollout.Completion { return s.c }
	t.Logged = func(step int, s *sample) rollout.Logged {
		return rollout.LogCompletion(step, s.c, t.Rewards, s.rewards, s.adv)
	}
	log.Info().Int("prompts", len(t.Prompts)).Int("generation_batch_size", genBatch).Int("steps_per_generation", stepsPerGen).
		Bool("old_logps", sched.NeedOld()).Bool("reference", env.Ref != nil).Msg("grpo")
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
