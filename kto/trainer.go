package kto

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
	"github.com/rlsuite/rl/shared/train"
)

// Task is the KTO loss of a batch: a forward of the policy over the rows
// (with gradients) and over the KL rows (without), the reference's
// log-probs from a frozen model or precomputed, and the loss. It logs
// TRL's kl, rewards/*, logps/*, logits/* and entropy.
type Task struct {
	Policy *model.Model
	// Ref is the reference model; nil when batches carry precomputed
	// reference log-probs.
	Ref *model.Model
	// RefIsPolicy: the reference is the policy with its LoRA adapters
	// disabled (use_peft without ref_model, as TRL does): no second copy.
	RefIsPolicy bool
	LossType    string
	Params      Params
}

// NewTask builds the task for cfg.
func NewTask(cfg *Config, policy, ref *model.Model) *Task {
	return &Task{Policy: policy, Ref: ref, LossType: cfg.LossType,
		Params: Params{Beta: cfg.Beta, DesirableWeight: cfg.DesirableWeight, UndesirableWeight: cfg.UndesirableWeight}}
}

// Loss implements train.Task.
func (t *Task) Loss(b *Batch, acc *metrics.Accumulator, training bool) *tensor.Tensor {
	dev := t.Policy.Device
	needKL := losses[t.LossType].kl
	if needKL && b.TK == 0 {
		panic(fmt.Errorf("kto: loss_type %s needs KL rows and the batch has none", t.LossType))
	}
	refRows, refKL := b.Ref, b.RefKL
	if refRows == nil {
		if t.Ref == nil {
			panic(fmt.Errorf("kto: no reference model and no precomputed reference log-probs"))
		}
		refRows, refKL = SequenceLogps(t.Ref, b, t.RefIsPolicy)
	}
	in := rowsInput(b.IDs, b.B, b.T, dev)
	in.Train = training
	lp := completionLogps(t.Policy, in, b.IDs, b.Completion, b.B, b.T) // (B)
	B := int64(b.B)
	x := &Logps{Policy: lp.Sum, Ref: tensor.Float32sOn(refRows, lp.Sum.DType(), dev, B), Desirable: b.Labels}
	if needKL {
		// The policy's KL log-probs without gradients, as TRL's
		// _compute_kl_logps (torch.no_grad); z is a constant.
		var kl []float32
		tensor.NoGrad(func() {
			in := rowsInput(b.KLIDs, b.B, b.TK, dev)
			in.Train = training
			kl = completionLogps(t.Policy, in, b.KLIDs, b.KLMask, b.B, b.TK).Sum.ToDType(tensor.Float32).Float32s()
		})
		x.KL = tensor.Float32sOn(kl, lp.Sum.DType(), dev, B)
		x.RefKL = tensor.Float32sOn(refKL, lp.Sum.DType(), dev, B)
	}
	loss, z, err := Loss(t.LossType, x, &t.Params)
	if err != nil {
		panic(err)
	}
	tensor.NoGrad(func() { logMetrics(acc, x, lp, z.ItemF64(), t.Params.Beta) })
	return loss
}

// logMetrics adds TRL's KTO metrics (kto_trainer.py, _compute_loss): kl
// (z), entropy over the completion tokens, and per class the mean implied
// reward beta*(log pi - log ref), the mean summed log-prob, and the mean
// completion logit (token-weighted); a class absent from the batch logs
// nothing for it, and rewards/margins (chosen - rejected of this batch)
// only when both are present.
func logMetrics(acc *metrics.Accumulator, x *Logps, lp seqLogps, z, beta float64) {
	acc.Add("kl", z)
	pol, ref := x.Policy.Float64s(), x.Ref.Float64s()
	n, ls, es := lp.Count.Float64s(), lp.LogitSum.Float64s(), lp.EntropySum.Float64s()
	var ent, tok float64
	var cnt, rew, logp, logit, ltok [2]float64 // [0] chosen (desirable), [1] rejected
	for i, d := range x.Desirable {
		ent += es[i]
		tok += n[i]
		k := 1
		if d {
			k = 0
		}
		cnt[k]++
		rew[k] += beta * (pol[i] - ref[i])
		logp[k] += pol[i]
		logit[k] += ls[i]
		ltok[k] += n[i]
	}
	if tok > 0 {
		acc.Add("entropy", ent/tok)
	} else {
		acc.Add("entropy", 0)
	}
	for k, side := range []string{"chosen", "rejected"} {
		if ltok[k] > 0 {
			acc.Add("logits/"+side, logit[k]/ltok[k])
		}
		if cnt[k] > 0 {
			acc.Add("rewards/"+side, rew[k]/cnt[k])
			acc.Add("logps/"+side, logp[k]/cnt[k])
		}
	}
	if cnt[0] > 0 && cnt[1] > 0 {
		acc.Add("rewards/margins", rew[0]/cnt[0]-rew[1]/cnt[1])
	}
}

// SyncRef is TR-DPO's reference update (Gorbatovski et al. 2024,
// arXiv:2404.09656, the soft update), which TRL's KTOTrainer applies
// through SyncRefModelCallback: ref = alpha*policy + (1-alpha)*ref,
// parameter by parameter.
func SyncRef(ref, policy *model.Model, alpha float64) (err error) {
	defer tensor.Recover(&err, "kto: sync reference model")
	tensor.NoGrad(func() {
		for _, p := range ref.Params() {
			src := policy.Param(p.Name)
			if src == nil {
				err = fmt.Errorf("kto: sync reference model: the policy has no %s", p.Name)
				return
			}
			p.T.Lerp_(src, alpha) // ref += alpha*(policy - ref)
		}
	})
	return err
}

// models is what the trainer saves: the policy with its tokenizer, and the
// reference under ref_model/ when TR-DPO changes it.
type models struct {
	policy, ref *model.Model
	tok         *tokenizer.Tokenizer
	saveRef     bool
}

func (m *models) Params() []model.Param { return m.policy.Trainable() }

func (m *models) SaveModels() []*model.Model {
	if m.saveRef && m.ref != m.policy {
		return []*model.Model{m.policy, m.ref}
	}
	return []*model.Model{m.policy}
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
	TrainRows, EvalRows    int
	Desirable, Undesirable int // training rows per class
	Dropped                int // training rows dropped: their prompt fills max_length
}

// Run trains according to cfg and writes the policy to cfg.OutputDir.
func Run(ctx context.Context, cfg Config, log zerolog.Logger, rawConfig []byte) (res *Result, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kto: %w", err)
	}
	if err := train.CheckInputs(cfg.OutputDir, cfg.inputs()); err != nil {
		return nil, err
	}
	dt, err := model.ParseDType(cfg.DType)
	if err != nil {
		return nil, fmt.Errorf("kto: %w", err)
	}
	opts := model.LoadOptions{DType: dt}
	policy, tok, err := checkpoint.Load(cfg.Model, cfg.ModelLoadOptions(opts))
	if err != nil {
		return nil, err
	}
	defer policy.Free()
	if err := cfg.ModelConfig.PreparePEFT(policy, cfg.Seed); err != nil {
		return nil, fmt.Errorf("kto: %w", err)
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
	enc := newEncoder(tok)
	trainEx, dropped, err := prepare(&cfg, enc, trainSet, log, "train")
	if err != nil {
		return nil, err
	}
	nd, nu := Counts(trainEx)
	if nd == 0 || nu == 0 {
		class, missing := "desirable (label true)", "undesirable (label false)"
		if nd == 0 {
			class, missing = missing, class
		}
		return nil, fmt.Errorf("kto: %s: all %d training rows are %s and none %s: KTO learns from both classes (check the label column, or add rows of the other class)", cfg.Dataset, len(trainEx), class, missing)
	}
	if msg := WeightAdvice(nd, nu, cfg.DesirableWeight, cfg.UndesirableWeight); msg != "" {
		log.Warn().Int("desirable", nd).Int("undesirable", nu).Float64("desirable_weight", cfg.DesirableWeight).Float64("undesirable_weight", cfg.UndesirableWeight).Msg(msg)
	}
	pad := max(tok.PAD(), 0)
	trainData := &Data{Examples: trainEx, MaxLength: cfg.MaxLength, Pad: pad}
	var evalData *Data
	if evalSet != nil && cfg.EvalStrategy != "no" {
		evalEx, _, err := prepare(&cfg, enc, evalSet, log, "eval")
		if err != nil {
			return nil, err
		}
		evalData = &Data{Examples: evalEx, MaxLength: cfg.MaxLength, Pad: pad}
	} else if cfg.EvalStrategy != "no" {
		log.Warn().Msg("eval_strategy is set but there is no eval data (no test split and eval_ratio 0): not evaluating")
		cfg.EvalStrategy = "no"
		if cfg.LoadBestModelAtEnd {
			return nil, fmt.Errorf("kto: load_best_model_at_end needs eval data")
		}
	}
	res = &Result{TrainRows: len(trainEx), Desirable: nd, Undesirable: nu, Dropped: dropped}
	if evalData != nil {
		res.EvalRows = evalData.Len()
	}
	log.Info().Int("train_rows", res.TrainRows).Int("desirable", nd).Int("undesirable", nu).Int("eval_rows", res.EvalRows).Str("loss_type", cfg.LossType).Msg("data")

	// Reference: a second load of the starting policy (or ref_model), frozen.
	refDir := cfg.Model
	if cfg.RefModel != "" {
		refDir = cfg.RefModel
	}
	if err := checkpoint.CheckSaved(refDir, tok, filepath.Join(cfg.TokenizerPath(), "tokenizer.json")); err != nil {
		return nil, fmt.Errorf("kto: ref_model: %w", err)
	}
	refIsPolicy := cfg.UsePEFT && cfg.RefModel == "" // TRL: the adapter disabled, no copy
	var ref *model.Model
	if refIsPolicy {
		ref = policy
		log.Info().Msg("reference: the policy with its LoRA adapters disabled (no second copy of the weights)")
	} else if ref, err = model.Load(refDir, cfg.ModelLoadOptions(opts).Merged()); err != nil {
		return nil, fmt.Errorf("kto: reference model: %w", err)
	}
	defer func() {
		if ref != nil && !refIsPolicy {
			ref.Free()
		}
	}()
	if ref.Config.VocabSize != policy.Config.VocabSize {
		return nil, fmt.Errorf("kto: the reference model's vocab_size %d differs from the policy's %d: they must share a tokenizer", ref.Config.VocabSize, policy.Config.VocabSize)
	}
	if !refIsPolicy {
		ref.SetRequiresGrad(false)
	}
	if cfg.PrecomputeRefLogProbs {
		bs := cfg.PrecomputeRefBatchSize
		if bs <= 0 {
			bs = cfg.PerDeviceTrainBatchSize
		}
		if trainData.Ref, err = PrecomputeRef(ref, refIsPolicy, trainData, bs, log, "train"); err != nil {
			return nil, err
		}
		if evalData != nil {
			if cfg.PrecomputeRefBatchSize <= 0 {
				bs = cfg.PerDeviceEvalBatchSize
			}
			if evalData.Ref, err = PrecomputeRef(ref, refIsPolicy, evalData, bs, log, "eval"); err != nil {
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
		Args:       cfg.Args,
		Models:     &models{policy: policy, ref: ref, tok: tok, saveRef: cfg.SyncRefModel},
		Task:       task,
		Train:      trainData,
		Log:        log,
		Config:     rawConfig,
		Name:       "kto",
		Model:      cfg.Model,
		Inputs:     cfg.inputs(),
		Sequential: cfg.TrainSamplingStrategy == Sequential,
	}
	if evalData != nil {
		tr.Eval = evalData
	}
	if cfg.SyncRefModel {
		every, alpha := cfg.RefModelSyncSteps, cfg.RefModelMixupAlpha
		tr.StepHook = func(step int) error {
			if step%every != 0 {
				return nil
			}
			return SyncRef(ref, policy, alpha)
		}
	}
	r, err := tr.Run(ctx)
	if err != nil {
		return nil, err
	}
	res.Result = r
	return res, nil
}
