package ppo

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/dist"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/rollout"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
	"github.com/rlsuite/rl/shared/train"
)

// microBatch is a set of rollout samples.
type microBatch struct {
	ss     []*sample
	tokens int
}

func (b *microBatch) NumTokens() int { return b.tokens }

// rolloutData serves the current rollout to the trainer: one trainer epoch
// over it is one PPO epoch.
type rolloutData struct{ r *Rollout }

func (d *rolloutData) Len() int { return d.r.cfg.BatchSize() * d.r.Dist.Size() } // the world's rollout

func (d *rolloutData) Batch(idx []int) (*microBatch, error) {
	b := &microBatch{}
	for _, i := range idx {
		if i < 0 || i >= len(d.r.buf) {
			return nil, fmt.Errorf("ppo: sample %d of a rollout of %d: no rollout was collected for this update", i, len(d.r.buf))
		}
		s := d.r.buf[i]
		b.ss = append(b.ss, s)
		b.tokens += len(s.query) + s.seqLen + 1
	}
	return b, nil
}

// Task is the PPO loss over micro-batches of the rollout, and the rollout
// driver: it collects a new rollout at each update boundary.
type Task struct {
	R              *Rollout
	stepsPerUpdate int
	sampleEvery    int // updates between sample generations
	updates        int
	ratios         []float64 // per micro-batch mean ratios of the current logging window
	lastSamples    float64
	updateStart    time.Time // when the current update's rollout began
}

// BeginStep collects a rollout when an update starts.
func (t *Task) BeginStep(step int) error {
	if step%t.stepsPerUpdate != 0 {
		if len(t.R.buf) == 0 {
			return fmt.Errorf("ppo: step %d: %w", step+1, t.ResumableAt(step))
		}
		return nil
	}
	u := step / t.stepsPerUpdate
	t.updateStart = time.Now()
	if err := t.R.Collect(u); err != nil { // under the trainer's autocast with bf16
		return err
	}
	if t.R.cfg.NumSampleGenerations > 0 && u%t.sampleEvery == 0 {
		m, err := t.R.WriteSamples(u)
		if err != nil {
			return err
		}
		t.lastSamples = m
	}
	return nil
}

// ResumableAt implements train.SaveBoundary: a checkpoint resumes only at
// an update boundary, where the next rollout is collected (the rollout in
// progress is not saved).
func (t *Task) ResumableAt(step int) error {
	if step%t.stepsPerUpdate != 0 {
		return fmt.Errorf("step %d is inside PPO update %d (each update is %d optimizer steps); resume from a checkpoint at a multiple of %d", step, step/t.stepsPerUpdate+1, t.stepsPerUpdate, t.stepsPerUpdate)
	}
	return nil
}

// taskState is the part of the logging window the Task keeps (the
// trainer checkpoints the rest).
type taskState struct {
	Ratios      []float64 `json:"ratios"`
	LastSamples float64   `json:"last_samples"`
}

// State implements train.Stateful: the ratios of the logging window in
// progress and the last sample score, so that a resumed run logs what an
// uninterrupted one does.
func (t *Task) State() ([]byte, error) {
	return json.Marshal(taskState{Ratios: t.ratios, LastSamples: t.lastSamples})
}

// SetState implements train.Stateful.
func (t *Task) SetState(b []byte) error {
	var s taskState
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("ppo: task_state.json: %w", err)
	}
	t.ratios, t.lastSamples = s.Ratios, s.LastSamples
	return nil
}

// Loss implements train.Task: clipped policy loss + vf_coef * clipped value loss.
func (t *Task) Loss(b *microBatch, acc *metrics.Accumulator, training bool) *tensor.Tensor {
	r := t.R
	cfg := r.cfg
	R := cfg.ResponseLength
	dev := r.Policy.Device
	in, C := r.seqInput(b.ss, dev)
	n := len(b.ss)
	flat := func(get func(s *sample) []float64) *tensor.Tensor {
		v := make([]float32, 0, n*R)
		for _, s := range b.ss {
			for _, x := range get(s) {
				v = append(v, float32(x))
			}
		}
		return tensor.FromFloat32s(v, int64(n), int64(R)).To(r.Policy.DType, dev)
	}
	mask := make([]float32, 0, n*R)
	maskP1 := make([]float32, 0, n*R)
	for _, s := range b.ss {
		for t := 0; t < R; t++ {
			mask = append(mask, b2f(t <= s.seqLen))
			maskP1 = append(maskP1, b2f(t <= s.seqLen+1))
		}
	}
	valid := tensor.FromFloat32s(mask, int64(n), int64(R)).To(r.Policy.DType, dev)
	validP1 := tensor.FromFloat32s(maskP1, int64(n), int64(R)).To(r.Policy.DType, dev)

	tok := r.respLogps(r.Policy, in, C, respTokens(b.ss, R, dev)) // chunked LM head: no (n, R, V) logits
	newLogp := tok.Logp
	newLogp = newLogp.Mul(valid).Add(valid.Neg().AddScalar(1).MulScalar(InvalidLogprob)) // masked_fill(padding, INVALID)
	vpred := r.valuesOf(in, C).Mul(validP1)
	pg, clipfrac, approxKL, ratio := PolicyLoss(newLogp, flat(func(s *sample) []float64 { return s.logp }), flat(func(s *sample) []float64 { return s.adv }), valid, cfg.ClipRange)
	vf, vclip := ValueLoss(vpred, flat(func(s *sample) []float64 { return s.values }), flat(func(s *sample) []float64 { return s.ret }), validP1, cfg.ClipRangeValue)
	loss := pg.Add(vf.MulScalar(cfg.VFCoef))
	tensor.NoGrad(func() {
		// entropy = -sum p log p of the policy at each response position
		acc.Add("policy/entropy_avg", tok.Entropy.Mean().ItemF64()) // over every position, padding too, as TRL
		acc.Add("policy/approxkl_avg", approxKL)
		acc.Add("policy/clipfrac_avg", clipfrac)
		acc.Add("loss/policy_avg", pg.ItemF64())
		acc.Add("loss/value_avg", vf.ItemF64())
		acc.Add("val/clipfrac_avg", vclip)
		acc.Add("val/ratio", ratio)
	})
	t.ratios = append(t.ratios, ratio)
	return loss
}

// DecorateLog adds the rollout metrics and TRL's episode, eps, lr and epoch.
func (t *Task) DecorateLog(step int, vals map[string]float64) {
	r := t.R
	for k, v := range r.stats {
		vals[k] = v
	}
	if len(t.ratios) > 1 {
		var m, s float64
		for _, x := range t.ratios {
			m += x
		}
		m /= float64(len(t.ratios))
		for _, x := range t.ratios {
			s += (x - m) * (x - m)
		}
		vals["val/ratio_var"] = s / float64(len(t.ratios)-1)
	}
	t.ratios = t.ratios[:0]
	vals["episode"] = float64(r.episodes)
	vals["epoch"] = float64(r.episodes) / float64(len(r.Prompts))
	// TRL's lr is lr_scheduler.get_last_lr() read before the scheduler
	// steps: the rate of the update just done (learning_rate, as HF logs
	// it elsewhere, is the next one's).
	if u := step / t.stepsPerUpdate; u >= 1 && t.updates > 0 {
		vals["lr"] = r.cfg.LR(u-1, t.updates)
	} else {
		vals["lr"] = vals["learning_rate"]
	}
	// Wall time of the update just finished: rollout plus every PPO epoch
	// (rl's addition to TRL's metrics; logs fall on update boundaries).
	if !t.updateStart.IsZero() {
		vals["time/update_s"] = time.Since(t.updateStart).Seconds()
	}
	if el := time.Since(r.started).Seconds(); el > 0 {
		vals["eps"] = math.Floor(float64(r.episodes) / el)
	}
	if t.R.cfg.NumSampleGenerations > 0 {
		vals["samples/score"] = t.lastSamples
	}
}

func b2f(b bool) float32 {
	if b {
		return 1
	}
	return 0
}

// models trains the policy and the value model together.
type models struct {
	r *Rollout
}

func (m *models) Params() []model.Param {
	var ps []model.Param
	for _, p := range m.r.Policy.Trainable() { // its adapters with use_peft
		ps = append(ps, model.Param{Name: "policy." + p.Name, T: p.T})
	}
	for _, p := range m.r.Value.Params() {
		ps = append(ps, model.Param{Name: "value." + p.Name, T: p.T})
	}
	return ps
}

func (m *models) SaveModels() []*model.Model { return []*model.Model{m.r.Policy, m.r.Value} }

// Save writes the policy in dir and the value model in dir/value_model.
func (m *models) Save(dir string) error {
	if err := checkpoint.Save(dir, m.r.Policy, m.r.Tok); err != nil {
		return err
	}
	return checkpoint.Save(filepath.Join(dir, "value_model"), m.r.Value, m.r.Tok)
}

func (m *models) Load(dir string) error {
	if err := train.LoadWeights(m.r.Policy, dir); err != nil {
		return err
	}
	return train.LoadWeights(m.r.Value, filepath.Join(dir, "value_model"))
}

// Result summarises a run.
type Result struct {
	*train.Result
	Updates int
}

// Run trains the policy with PPO and writes it (and the value model) to cfg.OutputDir.
func Run(ctx context.Context, cfg Config, log zerolog.Logger, rawConfig []byte) (res *Result, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ppo: %w", err)
	}
	if err := train.CheckInputs(cfg.OutputDir, cfg.inputs()); err != nil {
		return nil, err
	}
	dt, err := model.ParseDType(cfg.DType)
	if err != nil {
		return nil, fmt.Errorf("ppo: %w", err)
	}
	opts := model.LoadOptions{DType: dt, Device: train.Device}
	r := &Rollout{cfg: &cfg, OutputDir: cfg.OutputDir, Log: log, stats: map[string]float64{}, Dist: dist.Current()}
	defer func() {
		for _, m := range []*model.Model{r.Policy, r.Ref, r.Value} {
			if m != nil {
				m.Free()
			}
		}
		rollout.FreeRewards(r.Rewards) // and stops cmd: programs
	}()
	if r.Policy, r.Tok, err = checkpoint.Load(cfg.SFTModel, opts); err != nil {
		return nil, err
	}
	if err := cfg.PEFTConfig.Prepare(r.Policy, cfg.SFTModel, cfg.Seed); err != nil {
		return nil, fmt.Errorf("ppo: %w", err)
	}
	if cfg.UsePEFT { // TRL: the reference is the policy with its adapter disabled
		r.refIsPolicy = true
		log.Info().Int64("trainable", r.Policy.NumTrainable()).Msg("reference: the policy with its LoRA adapters disabled (no second copy of the weights)")
	} else if r.Ref, err = model.Load(cfg.SFTModel, opts.Merged()); err != nil { // an adapter folder: merged, as the policy's is
		return nil, err
	}
	rc, flag := cfg.rewards()
	if r.Rewards, err = rollout.LoadRewards(rc.RewardFuncs, "ppo: "+flag, r.Policy, r.Tok, cfg.SFTModel, opts); err != nil {
		return nil, err
	}
	for _, rw := range r.Rewards {
		rw.Timeout = rc.Timeout()
	}
	r.weights = rc.Weights()
	valueFrom := cfg.ValueModel
	if valueFrom == "" {
		valueFrom = defaultValueModel(rc.RewardFuncs, r.Rewards, cfg.SFTModel)
	}
	if vc, err := model.ReadConfig(filepath.Join(valueFrom, "config.json")); err == nil && vc.Encoder() {
		return nil, fmt.Errorf("ppo: value_model_path %s is a %s encoder: the value model reads each response token with causal attention; use a decoder (default: the reward model when it is a decoder, else the SFT model)", valueFrom, vc.ModelType)
	}
	vopts := opts
	vopts.Head, vopts.NumLabels = model.ScoreHead, 1
	if err := checkpoint.CheckSaved(valueFrom, r.Tok, filepath.Join(cfg.SFTModel, "tokenizer.json")); err != nil {
		return nil, fmt.Errorf("ppo: value model: the policy and the value model must share a tokenizer: %w", err)
	}
	// A value model from the SFT checkpoint gets a new score head, drawn
	// from libtorch's generator: seeded, so that a run (and the
	// uninterrupted run a resumed one is compared with) is reproducible.
	tensor.ManualSeed(int64(cfg.Seed))
	if r.Value, err = model.Load(valueFrom, vopts.Merged()); err != nil { // from an adapter folder: trained in full
		return nil, fmt.Errorf("ppo: value model: %w", err)
	}
	// TRL's PPOTrainer disables dropout in all four models
	// (disable_dropout_in_model on policy, ref, value and reward)
	r.Policy.NoDropout, r.Value.NoDropout = true, true
	if r.Ref != nil {
		r.Ref.NoDropout = true
		r.Ref.SetRequiresGrad(false)
	}
	r.pad, r.eos = max(r.Tok.PAD(), 0), r.Tok.EOS()
	// TRL: stop_token "eos" stops generation at the eos (and truncates
	// after it), stop_token_id at that id, neither at nothing: responses
	// are response_length tokens. With "eos", rl stops at every eos id of
	// the policy's generation_config (Llama-3.1: <|end_of_text|>,
	// <|eom_id|>, <|eot_id|>) and the tokenizer's, where TRL's PPO sets
	// generation_config.eos_token_id to the tokenizer's alone.
	if cfg.StopToken == "eos" {
		r.stopIDs = r.Policy.StopIDs(r.eos)
	}
	if cfg.StopTokenID != nil {
		r.stopIDs = append(r.stopIDs, *cfg.StopTokenID)
	}

	// Prompts.
	trainSet, evalSet, err := cfg.ScriptArguments.Load(cfg.Seed)
	if err != nil {
		return nil, err
	}
	if r.Prompts, err = encodePrompts(r, trainSet); err != nil {
		return nil, err
	}
	r.Eval = r.Prompts
	if evalSet != nil {
		if r.Eval, err = encodePrompts(r, evalSet); err != nil {
			return nil, err
		}
	}
	if len(r.Prompts) == 0 {
		return nil, fmt.Errorf("ppo: %s: no prompts", cfg.Dataset)
	}
	for _, p := range append(r.Prompts, r.Eval...) {
		if len(p.IDs)+cfg.ResponseLength > r.Policy.Config.MaxPositions {
			return nil, fmt.Errorf("ppo: a prompt of %d tokens + response_length %d exceeds the model's %d positions (lower max_prompt_length)", len(p.IDs), cfg.ResponseLength, r.Policy.Config.MaxPositions)
		}
	}

	B := cfg.BatchSize() * r.Dist.Size() // TRL's batch_size: local_batch_size x world_size
	episodes := cfg.TotalEpisodes
	if episodes <= 0 {
		episodes = int(math.Ceil(cfg.NumTrainEpochs * float64(len(r.Prompts))))
	}
	updates := max(1, (episodes+B-1)/B)
	stepsPerUpdate := cfg.NumPPOEpochs // one optimizer step per PPO epoch (see BatchSize)
	args := cfg.Args
	args.MaxSteps = updates * stepsPerUpdate
	args.LoggingSteps = stepsPerUpdate // TRL logs every update
	args.SaveSteps = max(1, cfg.SaveSteps) * stepsPerUpdate
	args.EvalStrategy = "no"
	task := &Task{R: r, stepsPerUpdate: stepsPerUpdate, updates: updates, sampleEvery: max(1, updates/max(1, cfg.NumSampleGenerations))}
	log.Info().Int("prompts", len(r.Prompts)).Int("updates", updates).Int("batch_size", B).Int("episodes", updates*B).
		Int("optimizer_steps", args.MaxSteps).Strs("reward_funcs", rc.RewardFuncs).Msg("ppo")
	if err := os.MkdirAll(cfg.OutputDir, 0o755); err != nil {
		return nil, err
	}
	tr := &train.Trainer[*microBatch]{
		Args:             args,
		Models:           &models{r: r},
		Task:             task,
		Train:            &rolloutData{r: r},
		Log:              log,
		Config:           rawConfig,
		Name:             "ppo",
		Model:            cfg.SFTModel,
		Inputs:           cfg.inputs(),
		StepsPerSchedule: stepsPerUpdate,
		StepsPerUnit:     stepsPerUpdate, // global_step, logs and checkpoint-N count updates, as TRL
		Dist:             r.Dist,
	}
	out, err := tr.Run(ctx)
	if err != nil {
		return nil, err
	}
	return &Result{Result: out, Updates: updates}, nil
}

// Preview returns the token ids of the first n training prompts exactly as
// Run encodes them (rl data show), with the tokenizer, without loading
// models.
func Preview(cfg Config, n int) ([][]int, *tokenizer.Tokenizer, error) {
	tok, err := tokenizer.Load(cfg.SFTModel)
	if err != nil {
		return nil, nil, err
	}
	opts, err := cfg.LoadOptions()
	if err != nil {
		return nil, nil, err
	}
	opts.Limit = n
	d, err := datasets.LoadSplit(cfg.Dataset, cfg.TrainSplit, opts)
	if err != nil {
		return nil, nil, err
	}
	ps, err := encodePrompts(&Rollout{Tok: tok, cfg: &cfg}, d)
	if err != nil {
		return nil, nil, err
	}
	out := make([][]int, len(ps))
	for i, p := range ps {
		out[i] = p.IDs
	}
	return out, tok, nil
}

func encodePrompts(r *Rollout, d *datasets.Dataset) ([]prompt, error) {
	ps, err := rollout.LoadPrompts(d, r.Tok, r.cfg.MaxPromptLength, r.Log)
	if err != nil {
		return nil, fmt.Errorf("ppo: %w", err)
	}
	return ps, nil
}

// defaultValueModel is where the value model starts when value_model_path
// is unset: the first reward model that reads the policy's token ids (a
// decoder sharing its tokenizer, specs[i] for rs[i]), as TRL's default is
// the reward model; else (built-ins, programs, encoders, which read text
// bidirectionally, or reward models with their own tokenizer) the SFT
// model with a new score head.
func defaultValueModel(specs []string, rs []*rollout.Reward, sftModel string) string {
	for i, rw := range rs {
		if rw.Model != nil && rw.Tok == nil && !rw.Model.Config.Encoder() {
			return specs[i]
		}
	}
	return sftModel
}
