package grpo

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/checkpoint"
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

// microBatch is per_device_train_batch_size samples of a generation batch.
type microBatch struct {
	ss     []*sample
	tokens int
}

func (b *microBatch) NumTokens() int { return b.tokens }

// Task generates and scores completions at generation boundaries and
// computes GRPO's loss over micro-batches of them.
type Task struct {
	cfg    *Config
	Policy *model.Model
	Ref    *model.Model // nil when beta == 0
	// refIsPolicy: Ref is Policy, run with its LoRA adapters disabled
	refIsPolicy bool
	Rewards     []*rollout.Reward
	Sampler     *rollout.Sampler
	Prompts     []rollout.Prompt
	Log         zerolog.Logger
	outDir      string

	pad      int
	genBatch int
	sched    rollout.Schedule[*sample]
	weights  []float64
	last     []*sample // the last generation (log_completions)

	window    rollout.Window // per-generation metrics of the logging window
	numTokens float64        // prompt + completion tokens generated (TRL's num_input_tokens_seen)
	gens      int            // generations so far
}

// BeginStep queues the micro-batches of optimizer step step, generating
// where a generation is due.
func (t *Task) BeginStep(step int) error {
	if err := t.sched.Begin(step, t.generate); err != nil {
		return fmt.Errorf("grpo: %w", err)
	}
	return nil
}

// ResumableAt implements train.SaveBoundary.
func (t *Task) ResumableAt(step int) error { return t.sched.ResumableAt(step) }

type data struct{ t *Task }

func (d *data) Len() int { return d.t.genBatch }

// Batch serves the queued micro-batches in order (the trainer asks for
// gradient_accumulation_steps of them right after BeginStep).
func (d *data) Batch([]int) (*microBatch, error) {
	ss, err := d.t.sched.Next()
	if err != nil {
		return nil, fmt.Errorf("grpo: %w", err)
	}
	b := &microBatch{ss: ss}
	for _, s := range ss {
		b.tokens += len(s.c.Prompt.IDs) + len(s.c.IDs)
	}
	return b, nil
}

// generate samples generation g, scores it, computes advantages (and the
// old and reference log-probs when needed) and returns it shuffled.
func (t *Task) generate(g int) (out []*sample, err error) {
	defer tensor.Recover(&err, "grpo generation")
	cfg := t.cfg
	G := cfg.NumGenerations
	prompts := rollout.PromptsFor(t.Prompts, cfg.Seed, g, t.genBatch/G, cfg.ShuffleDataset)
	cs, _, err := t.Sampler.Sample(prompts, G, rollout.Seed(cfg.Seed, g))
	if err != nil {
		return nil, err
	}
	N := len(cs)
	K := len(t.Rewards)
	perFunc := make([][]float64, N)
	for i := range perFunc {
		perFunc[i] = make([]float64, K)
	}
	for k, r := range t.Rewards {
		v, err := r.Score(cs, t.pad)
		if err != nil {
			return nil, err
		}
		for i := range v {
			perFunc[i][k] = v[i]
		}
	}
	adv, rewards, zeroStd := Advantages(perFunc, t.weights, G, cfg.ScaleRewards)
	ss := make([]*sample, N)
	var numItems, promptTokens, compTokens float64
	for i, c := range cs {
		ss[i] = &sample{c: c, adv: adv[i], rewards: perFunc[i], masked: cfg.MaskTruncatedCompletions && !c.Terminated}
		if !ss[i].masked {
			numItems += float64(len(c.IDs))
		}
		promptTokens += float64(len(c.Prompt.IDs))
		compTokens += float64(len(c.IDs))
	}
	for _, s := range ss {
		s.numItems = numItems
	}
	chunk := cfg.GenerationChunk
	if t.sched.NeedOld() {
		old, err := rollout.LogpsOf(t.Policy, cs, t.pad, chunk, cfg.Temperature)
		if err != nil {
			return nil, err
		}
		for i := range ss {
			ss[i].old = old[i]
		}
	}
	if cfg.Beta != 0 {
		ref, err := rollout.RefLogpsOf(t.Ref, t.refIsPolicy, cs, t.pad, chunk, cfg.Temperature)
		if err != nil {
			return nil, err
		}
		for i := range ss {
			ss[i].ref = ref[i]
		}
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
	t.window.Add(st)
	t.numTokens += promptTokens + compTokens
	t.gens = g + 1
	t.last = ss

	// TRL shuffles the generation batch (shuffle_sequence_dict) before
	// splitting it into steps_per_generation micro-batches.
	perm := rand.New(rand.NewPCG(rollout.Seed(cfg.Seed, g, -1), 0x51a3)).Perm(N)
	out = make([]*sample, N)
	for i, j := range perm {
		out[i] = ss[j]
	}
	return out, nil
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
// TRL's (whose loss types scale themselves).
func (t *Task) Loss(b *microBatch, acc *metrics.Accumulator, training bool) *tensor.Tensor {
	cfg := t.cfg
	dev, dt := t.Policy.Device, t.Policy.DType
	cs := make([]*rollout.Completion, len(b.ss))
	for i, s := range b.ss {
		cs[i] = s.c
	}
	batch := rollout.NewBatch(cs, t.pad, dev)
	for i, s := range b.ss {
		if s.masked {
			for j := 0; j < batch.T; j++ {
				batch.CompMask[i*batch.T+j] = 0
			}
		}
	}
	mask := batch.CompletionMask(dt)                            // (B, T)
	tok := batch.HeadLogps(t.Policy, cfg.Temperature, training) // chunked LM head: no (B, T, V) logits
	logp := tok.Logp                                            // (B, T)
	var old, ref *tensor.Tensor
	if t.sched.NeedOld() {
		old = padded(b.ss, batch.T, func(s *sample) []float64 { return s.old }, dt, dev)
	}
	if cfg.Beta != 0 {
		ref = padded(b.ss, batch.T, func(s *sample) []float64 { return s.ref }, dt, dev)
	}
	adv := make([]float32, len(b.ss))
	for i, s := range b.ss {
		adv[i] = float32(s.adv)
	}
	advT := tensor.FromFloat32s(adv, int64(len(adv)), 1).To(dt, dev)
	loss, st := Loss(logp, old, ref, advT, mask, LossParams{
		LossType: cfg.LossType, Level: cfg.ImportanceSamplingLevel, EpsLow: cfg.Epsilon, EpsHigh: cfg.EpsHigh(),
		Delta: cfg.Delta, Beta: cfg.Beta, MaxCompletionLength: cfg.MaxCompletionLength, NumItems: b.ss[0].numItems, // one generation per micro-batch
		GAS: cfg.GradientAccumulationSteps,
	})
	tensor.NoGrad(func() {
		acc.Add("entropy", globalMaskedMean(tok.Entropy, mask))
	})
	if cfg.Beta != 0 {
		acc.Add("kl", st.KL)
	}
	acc.Add("clip_ratio/low_mean", st.ClipLowMean)
	acc.Add("clip_ratio/high_mean", st.ClipHighMean)
	acc.Add("clip_ratio/region_mean", st.ClipRegionMean)
	if !math.IsNaN(st.ClipLowMin) {
		acc.Add("clip_ratio/low_min", st.ClipLowMin)
	}
	if !math.IsNaN(st.ClipHighMax) {
		acc.Add("clip_ratio/high_max", st.ClipHighMax)
	}
	return loss.MulScalar(float64(cfg.GradientAccumulationSteps))
}

// DecorateLog adds the generation metrics of the logging window (each a
// mean over its generations, as TRL averages its metric lists), TRL's
// num_tokens and the epoch over the prompts.
func (t *Task) DecorateLog(step int, vals map[string]float64) {
	t.window.Flush(vals)
	vals["num_tokens"] = t.numTokens
	vals["epoch"] = float64(t.gens*t.genBatch/t.cfg.NumGenerations) / float64(len(t.Prompts))
	if t.cfg.LogCompletions {
		t.logCompletions(step)
	}
}

// logCompletions writes the last generation's prompts, completions,
// rewards and advantages to completions/step-N.jsonl and logs three.
func (t *Task) logCompletions(step int) {
	rows := make([]rollout.Logged, len(t.last))
	for i, s := range t.last {
		rows[i] = rollout.LogCompletion(step, s.c, t.Rewards, s.rewards, s.adv)
	}
	rollout.WriteCompletions(t.outDir, step, rows, t.Log)
}

type taskState struct {
	Window    *rollout.Window `json:"window"`
	NumTokens float64         `json:"num_tokens"`
	Gens      int             `json:"generations"`
}

// State implements train.Stateful: the logging window's generation
// metrics and the token count, so that a resumed run logs what an
// uninterrupted one does.
func (t *Task) State() ([]byte, error) {
	return json.Marshal(taskState{Window: &t.window, NumTokens: t.numTokens, Gens: t.gens})
}

// SetState implements train.Stateful.
func (t *Task) SetState(b []byte) error {
	s := taskState{Window: &t.window}
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("grpo: task_state.json: %w", err)
	}
	t.numTokens, t.gens = s.NumTokens, s.Gens
	return nil
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
	tok := env.Tok
	t := &Task{cfg: &cfg, Log: log, outDir: cfg.OutputDir, weights: cfg.weights(), Policy: env.Policy, Ref: env.Ref, refIsPolicy: env.RefIsPolicy,
		Rewards: env.Rewards, Sampler: env.Sampler, Prompts: env.Prompts, pad: env.Pad}
	genBatch, stepsPerGen, err := cfg.Derived()
	if err != nil {
		return nil, fmt.Errorf("grpo: %w", err)
	}
	gas := cfg.GradientAccumulationSteps
	t.genBatch = genBatch
	// TRL keeps the old log-probs only when generation and optimizer steps
	// are misaligned (Schedule.NeedOld); otherwise the old policy is the
	// current one and the loss uses per_token_logps.detach().
	t.sched = rollout.Schedule[*sample]{GAS: gas, StepsPerGeneration: stepsPerGen, NumIterations: cfg.NumIterations}

	args := cfg.Args
	if args.MaxSteps <= 0 {
		args.MaxSteps = rollout.MaxSteps(cfg.NumTrainEpochs, len(t.Prompts), t.genBatch/cfg.NumGenerations, t.sched.Every(), gas)
	}
	args.EvalStrategy = "no"
	log.Info().Int("prompts", len(t.Prompts)).Int("generation_batch_size", t.genBatch).Int("steps_per_generation", stepsPerGen).
		Int("optimizer_steps", args.MaxSteps).Bool("old_logps", t.sched.NeedOld()).Bool("reference", t.Ref != nil).Msg("grpo")
	if err := os.MkdirAll(cfg.OutputDir, 0o755); err != nil {
		return nil, err
	}
	tr := &train.Trainer[*microBatch]{
		Args:   args,
		Models: &train.Single{M: t.Policy, Extra: checkpoint.TokenizerSaver(tok)},
		Task:   t,
		Train:  &data{t: t},
		Log:    log,
		Config: rawConfig,
		Name:   "grpo",
		Model:  cfg.Model,
		Inputs: cfg.inputs(),
	}
	out, err := tr.Run(ctx)
	if err != nil {
		return nil, err
	}
	return &Result{Result: out, Generations: t.gens}, nil
}

// Preview returns the token ids of the first n training prompts exactly as
// Run encodes them (rl data show), with the tokenizer, without loading
// models.
func Preview(cfg Config, n int) ([][]int, *tokenizer.Tokenizer, error) {
	return rollout.Preview(cfg.options(zerolog.Nop()), n)
}
