package dpo

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/preference"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
	"github.com/rlsuite/rl/shared/train"
)

// Task is the DPO loss of a batch: one forward of the policy over chosen
// and rejected rows together, the reference's log-probs from a frozen
// model or precomputed, and the configured losses. It logs TRL's
// rewards/*, logps/* and logits/* metrics.
type Task struct {
	Policy *model.Model
	// Ref is the reference model; nil when batches carry precomputed
	// reference log-probs.
	Ref *model.Model
	// RefIsPolicy: the reference is the policy with its LoRA adapters
	// disabled (use_peft without ref_model, as TRL does): no second copy.
	RefIsPolicy bool
	Types       []string
	Weights     []float64
	Params      Params
	// LdAlpha, when set, weighs the completion tokens past the shorter
	// completion (LD-DPO); UseWeighting turns on WPO's pair weights.
	LdAlpha      *float64
	UseWeighting bool
}

// NewTask builds the task for cfg (loss types, weights, beta, ...).
func NewTask(cfg *Config, policy, ref *model.Model) *Task {
	return &Task{Policy: policy, Ref: ref, Types: cfg.LossType, Weights: cfg.weights(), Params: cfg.params(),
		LdAlpha: cfg.LdAlpha, UseWeighting: cfg.UseWeighting}
}

// Loss implements train.Task.
func (t *Task) Loss(b *Batch, acc *metrics.Accumulator, training bool) *tensor.Tensor {
	dev := t.Policy.Device
	refRows := b.Ref
	if refRows == nil {
		if t.Ref == nil {
			panic(fmt.Errorf("dpo: no reference model and no precomputed reference log-probs"))
		}
		refRows = sequenceLogps(t.Ref, b.Batch, t.RefIsPolicy, t.LdAlpha)
	}
	B := int64(b.B)
	in := b.Inputs(t.Policy.Device)
	in.Train = training
	h := t.Policy.Hidden(in) // (2B, T, H)
	var logits *tensor.Tensor
	var lp preference.Logps // Sum, Count (2B)
	if t.UseWeighting {     // WPO reads the whole logits
		logits = t.Policy.Logits(h)
		lp = preference.CompletionLogps(logits, b.Batch)
	} else { // the chunked LM head: no (2B, T, V) logits
		lp = preference.HeadCompletionLogps(t.Policy, h, b.Batch)
	}
	sum := ldSum(lp, b.Batch, t.LdAlpha)                        // (2B)
	ref := tensor.Float32sOn(refRows, lp.Sum.DType(), dev, 2*B) // (2B)
	x := &Logps{
		Chosen: sum.Narrow(0, 0, B), Rejected: sum.Narrow(0, B, B),
		RefChosen: ref.Narrow(0, 0, B), RefRejected: ref.Narrow(0, B, B),
		ChosenLen: lp.Count.Narrow(0, 0, B), RejectedLen: lp.Count.Narrow(0, B, B),
	}
	if t.LdAlpha != nil {
		x.ChosenTokens = lp.Sum.Narrow(0, 0, B)
	}
	if t.UseWeighting {
		w := WPOWeights(logits, lp.PerToken, b.Batch) // (2B)
		x.Weights = w.Narrow(0, 0, B).Mul(w.Narrow(0, B, B))
	}
	loss, err := Loss(t.Types, t.Weights, x, &t.Params)
	if err != nil {
		panic(err)
	}
	tensor.NoGrad(func() { logMetrics(acc, x, lp, t.Params.Beta, b.B) })
	return loss
}

// logMetrics adds TRL's DPO metrics: implicit rewards beta*(log pi - log
// ref), their accuracy (chosen > rejected) and margin, the summed log-probs
// and the mean completion logits.
func logMetrics(acc *metrics.Accumulator, x *Logps, lp preference.Logps, beta float64, B int) {
	pc, pr := x.Chosen.Float64s(), x.Rejected.Float64s()
	rc, rr := x.RefChosen.Float64s(), x.RefRejected.Float64s()
	ml, n := lp.MeanLogits.Float64s(), lp.Count.Float64s()
	var chosen, rejected, correct, margin, lc, lr float64
	for i := range B {
		c, r := beta*(pc[i]-rc[i]), beta*(pr[i]-rr[i])
		chosen += c
		rejected += r
		margin += c - r
		if c > r {
			correct++
		}
		lc += pc[i]
		lr += pr[i]
	}
	nb := float64(B)
	acc.Add("rewards/chosen", chosen/nb)
	acc.Add("rewards/rejected", rejected/nb)
	acc.Add("rewards/accuracies", correct/nb)
	acc.Add("rewards/margins", margin/nb)
	acc.Add("logps/chosen", lc/nb)
	acc.Add("logps/rejected", lr/nb)
	// TRL's entropy (over the completion tokens of both rows) and
	// mean_token_accuracy (argmax == label over the chosen completion
	// tokens), token-weighted (trl/trainer/dpo_trainer.py, _compute_loss).
	ent, ok := lp.EntropySum.Float64s(), lp.Correct.Float64s()
	var es, en, cs, cn float64
	for i := range 2 * B {
		es += ent[i]
		en += n[i]
		if i < B {
			cs += ok[i]
			cn += n[i]
		}
	}
	if en > 0 {
		acc.Add("entropy", es/en)
	}
	if cn > 0 {
		acc.Add("mean_token_accuracy", cs/cn)
	}
	// Mean logit over completion tokens (and the vocabulary), token-weighted.
	for side, name := range []string{"logits/chosen", "logits/rejected"} {
		var s, w float64
		for i := side * B; i < (side+1)*B; i++ {
			s += ml[i] * n[i]
			w += n[i]
		}
		if w > 0 {
			acc.Add(name, s/w)
		}
	}
}

// SyncRef is TR-DPO's reference update (Gorbatovski et al. 2024,
// arXiv:2404.09656, the soft update): ref = alpha*policy + (1-alpha)*ref,
// parameter by parameter.
func SyncRef(ref, policy *model.Model, alpha float64) (err error) {
	defer tensor.Recover(&err, "dpo: sync reference model")
	tensor.NoGrad(func() {
		for _, p := range ref.Params() {
			src := policy.Param(p.Name)
			if src == nil {
				err = fmt.Errorf("dpo: sync reference model: the policy has no %s", p.Name)
				return
			}
			p.T.Lerp_(src, alpha) // ref += alpha*(policy - ref)
		}
	})
	return err
}

// syncHook returns the trainer's StepHook for TR-DPO: a sync every
// ref_model_sync_steps optimizer steps.
func (t *Task) syncHook(every int, alpha float64) func(step int) error {
	return func(step int) error {
		if step%every != 0 {
			return nil
		}
		return SyncRef(t.Ref, t.Policy, alpha)
	}
}

// models is what the trainer saves: the policy with its tokenizer, and the
// reference under ref_model/ when TR-DPO changes it (so a resumed run
// continues from the mixed reference).
type models struct {
	policy, ref *model.Model
	tok         *tokenizer.Tokenizer
	saveRef     bool
}

func (m *models) Params() []model.Param { return m.policy.Trainable() }

func (m *models) SaveModels() []*model.Model {
	if m.ref == m.policy {
		return []*model.Model{m.policy}
	}
	return []*model.Model{m.policy, m.ref}
}

func (m *models) Save(dir string) error {
	if err := checkpoint.Save(dir, m.policy, m.tok); err != nil {
		return err
	}
	if m.saveRef {
		return checkpoint.Save(filepath.Join(dir, "ref_model"), m.ref, m.tok)
	}
	return nil
}

func (m *models) Load(dir string) error {
	if err := train.LoadWeights(m.policy, dir); err != nil {
		return err
	}
	if m.saveRef {
		return train.LoadWeights(m.ref, filepath.Join(dir, "ref_model"))
	}
	return nil
}

// Result is what Run returns.
type Result struct {
	*train.Result
	TrainPairs, EvalPairs int
}

// Run trains according to cfg and writes the policy to cfg.OutputDir.
func Run(ctx context.Context, cfg Config, log zerolog.Logger, rawConfig []byte) (res *Result, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dpo: %w", err)
	}
	if err := train.CheckInputs(cfg.OutputDir, cfg.inputs()); err != nil {
		return nil, err
	}
	dt, err := model.ParseDType(cfg.DType)
	if err != nil {
		return nil, fmt.Errorf("dpo: %w", err)
	}
	opts := model.LoadOptions{DType: dt}
	policy, tok, err := checkpoint.Load(cfg.Model, cfg.ModelLoadOptions(opts))
	if err != nil {
		return nil, err
	}
	defer policy.Free()
	if err := cfg.ModelConfig.PreparePEFT(policy, cfg.Seed); err != nil {
		return nil, fmt.Errorf("dpo: %w", err)
	}
	policy.NoDropout = cfg.DisableDropout
	if cfg.Tokenizer != "" {
		if tok, err = checkpoint.LoadTokenizerFor(policy, cfg.Model, cfg.Tokenizer); err != nil {
			return nil, err
		}
	}
	log.Info().Str("model_type", policy.Config.ModelType).Int64("parameters", policy.NumParams()).Int64("trainable", policy.NumTrainable()).Msg("policy")
	if cfg.MaxLength > policy.Config.MaxPositions {
		log.Warn().Int("max_length", cfg.MaxLength).Int("max_positions", policy.Config.MaxPositions).Msg("max_length exceeds the model's positions; using the latter")
		cfg.MaxLength = policy.Config.MaxPositions
	}

	// Data.
	trainSet, evalSet, err := cfg.ScriptArguments.Load(cfg.Seed)
	if err != nil {
		return nil, err
	}
	datasets.WarnLoaded(log, trainSet, evalSet)
	enc := newEncoder(&cfg, tok)
	trainPrefs, err := trainSet.Preferences()
	if err != nil {
		return nil, fmt.Errorf("dpo: %w", err)
	}
	datasets.WarnSkipped(log, trainSet, false)
	pad := max(tok.PAD(), 0)
	trainPairs, err := EncodePairs(enc, trainPrefs, log, "train")
	if err != nil {
		return nil, err
	}
	trainData := &Data{Pairs: trainPairs, Pad: pad}
	var evalData *Data
	if evalSet != nil && cfg.EvalStrategy != "no" {
		evalPrefs, err := evalSet.Preferences()
		if err != nil {
			return nil, fmt.Errorf("dpo: %w", err)
		}
		datasets.WarnSkipped(log, evalSet, false)
		evalPairs, err := EncodePairs(enc, evalPrefs, log, "eval")
		if err != nil {
			return nil, err
		}
		evalData = &Data{Pairs: evalPairs, Pad: pad}
	} else if cfg.EvalStrategy != "no" {
		log.Warn().Msg("eval_strategy is set but there is no eval data (no test split and eval_ratio 0): not evaluating")
		cfg.EvalStrategy = "no"
		if cfg.LoadBestModelAtEnd {
			return nil, fmt.Errorf("dpo: load_best_model_at_end needs eval data")
		}
	}
	res = &Result{TrainPairs: len(trainPairs)}
	if evalData != nil {
		res.EvalPairs = len(evalData.Pairs)
	}
	log.Info().Int("train_pairs", res.TrainPairs).Int("eval_pairs", res.EvalPairs).Strs("loss_type", cfg.LossType).Msg("data")

	// Reference: a second load of the starting policy (or ref_model), frozen.
	refDir := cfg.Model
	if cfg.RefModel != "" {
		refDir = cfg.RefModel
	}
	if err := checkpoint.CheckSaved(refDir, tok, filepath.Join(cfg.TokenizerPath(), "tokenizer.json")); err != nil {
		return nil, fmt.Errorf("dpo: ref_model: %w", err)
	}
	refIsPolicy := cfg.UsePEFT && cfg.RefModel == "" // TRL: the adapter disabled, no copy
	var ref *model.Model
	if refIsPolicy {
		ref = policy
		log.Info().Msg("reference: the policy with its LoRA adapters disabled (no second copy of the weights)")
	} else if ref, err = model.Load(refDir, cfg.ModelLoadOptions(opts).Merged()); err != nil {
		return nil, fmt.Errorf("dpo: reference model: %w", err)
	}
	defer func() {
		if ref != nil && !refIsPolicy {
			ref.Free()
		}
	}()
	if ref.Config.VocabSize != policy.Config.VocabSize {
		return nil, fmt.Errorf("dpo: the reference model's vocab_size %d differs from the policy's %d: they must share a tokenizer", ref.Config.VocabSize, policy.Config.VocabSize)
	}
	if !refIsPolicy {
		ref.SetRequiresGrad(false)
	}
	if cfg.PrecomputeRefLogProbs {
		bs := cfg.PrecomputeRefBatchSize
		if bs <= 0 {
			bs = cfg.PerDeviceTrainBatchSize
		}
		if trainData.Ref, err = PrecomputeRef(ref, trainData.Pairs, pad, bs, cfg.LdAlpha, log, "train"); err != nil {
			return nil, err
		}
		if evalData != nil {
			if cfg.PrecomputeRefBatchSize <= 0 {
				bs = cfg.PerDeviceEvalBatchSize
			}
			if evalData.Ref, err = PrecomputeRef(ref, evalData.Pairs, pad, bs, cfg.LdAlpha, log, "eval"); err != nil {
				return nil, err
			}
		}
		if !refIsPolicy {
			ref.Free() // no reference model in memory while training
		}
		ref, refIsPolicy = nil, false
	}

	task := NewTask(&cfg, policy, ref)
	task.RefIsPolicy = refIsPolicy
	tr := &train.Trainer[*Batch]{
		Args:   cfg.Args,
		Models: &models{policy: policy, ref: ref, tok: tok, saveRef: cfg.SyncRefModel},
		Task:   task,
		Train:  trainData,
		Log:    log,
		Config: rawConfig,
		Name:   "dpo",
		Model:  cfg.Model,
		Inputs: cfg.inputs(),
	}
	if evalData != nil {
		tr.Eval = evalData
	}
	if cfg.SyncRefModel {
		tr.StepHook = task.syncHook(cfg.RefModelSyncSteps, cfg.RefModelMixupAlpha)
	}
	r, err := tr.Run(ctx)
	if err != nil {
		return nil, err
	}
	res.Result = r
	return res, nil
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
