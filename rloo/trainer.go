package rloo

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
	c       *rollout.Completion
	masked  bool      // left out of the loss (mask_truncated_completions)
	adv     float64   // leave-one-out advantage
	oldLogp float64   // the completion's summed log-prob at generation time
	rewards []float64 // per reward function (NaN: none)
}

// microBatch is per_device_train_batch_size samples of a generation batch.
type microBatch struct {
	ss     []*sample
	tokens int
}

func (b *microBatch) NumTokens() int { return b.tokens }

// Task generates and scores completions at generation boundaries and
// computes RLOO's loss over micro-batches of them.
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
		return fmt.Errorf("rloo: %w", err)
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
		return nil, fmt.Errorf("rloo: %w", err)
	}
	b := &microBatch{ss: ss}
	for _, s := range ss {
		b.tokens += len(s.c.Prompt.IDs) + len(s.c.IDs)
	}
	return b, nil
}

// generate samples generation g, computes its old (and, with beta, its
// reference) log-probs, rewards with the KL penalty and leave-one-out
// advantages, and returns it shuffled.
func (t *Task) generate(g int) (out []*sample, err error) {
	defer tensor.Recover(&err, "rloo generation")
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
	masked := make([]bool, N)
	for i, c := range cs {
		masked[i] = cfg.MaskTruncatedCompletions && !c.Terminated
	}
	// RLOO always keeps the generation-time log-probs: they are the old
	// policy's and feed the KL penalty.
	chunk := cfg.GenerationChunk
	old, err := rollout.LogpsOf(t.Policy, cs, t.pad, chunk, cfg.Temperature)
	if err != nil {
		return nil, err
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
		ref, err := rollout.RefLogpsOf(t.Ref, t.refIsPolicy, cs, t.pad, chunk, cfg.Temperature)
		if err != nil {
			return nil, err
		}
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
	var promptTokens, compTokens float64
	rewards := make([]float64, N) // logged: the weighted sum, before clipping and KL
	for i, c := range cs {
		ss[i] = &sample{c: c, adv: adv[i], oldLogp: oldSum[i], rewards: perFunc[i], masked: masked[i]}
		rewards[i] = rollout.WeightedSum(perFunc[i], t.weights)
		promptTokens += float64(len(c.Prompt.IDs))
		compTokens += float64(len(c.IDs))
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

// Loss implements train.Task: TRL returns the micro-batch mean and the
// HF Trainer divides it by gradient_accumulation_steps, as rl's trainer does.
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
	old := make([]float32, len(b.ss))
	adv := make([]float32, len(b.ss))
	for i, s := range b.ss {
		old[i], adv[i] = float32(s.oldLogp), float32(s.adv)
	}
	B := int64(len(b.ss))
	loss, st := Loss(logp, mask, tensor.FromFloat32s(old, B).To(dt, dev), tensor.FromFloat32s(adv, B).To(dt, dev), cfg.Epsilon, cfg.EpsHigh())
	tensor.NoGrad(func() {
		acc.Add("entropy", tok.Entropy.Mul(mask).Sum().Div(mask.Sum().ClampMin(1)).ItemF64())
	})
	acc.Add("clip_ratio/low_mean", st.ClipLowMean)
	acc.Add("clip_ratio/low_min", st.ClipLowMin)
	acc.Add("clip_ratio/high_mean", st.ClipHighMean)
	acc.Add("clip_ratio/high_max", st.ClipHighMax)
	acc.Add("clip_ratio/region_mean", st.ClipRegionMean)
	return loss
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
		return fmt.Errorf("rloo: task_state.json: %w", err)
	}
	t.numTokens, t.gens = s.NumTokens, s.Gens
	return nil
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
	tok := env.Tok
	t := &Task{cfg: &cfg, Log: log, outDir: cfg.OutputDir, weights: cfg.weights(), Policy: env.Policy, Ref: env.Ref, refIsPolicy: env.RefIsPolicy,
		Rewards: env.Rewards, Sampler: env.Sampler, Prompts: env.Prompts, pad: env.Pad}
	genBatch, stepsPerGen, err := cfg.Derived()
	if err != nil {
		return nil, fmt.Errorf("rloo: %w", err)
	}
	gas := cfg.GradientAccumulationSteps
	t.genBatch = genBatch
	t.sched = rollout.Schedule[*sample]{GAS: gas, StepsPerGeneration: stepsPerGen, NumIterations: cfg.NumIterations}

	args := cfg.Args
	if args.MaxSteps <= 0 {
		args.MaxSteps = rollout.MaxSteps(cfg.NumTrainEpochs, len(t.Prompts), t.genBatch/cfg.NumGenerations, t.sched.Every(), gas)
	}
	args.EvalStrategy = "no"
	log.Info().Int("prompts", len(t.Prompts)).Int("generation_batch_size", t.genBatch).Int("steps_per_generation", stepsPerGen).
		Int("optimizer_steps", args.MaxSteps).Bool("reference", t.Ref != nil).Msg("rloo")
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
		Name:   "rloo",
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
