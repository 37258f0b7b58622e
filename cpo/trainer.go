package cpo

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/preference"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/train"
)

// Task is the CPO loss of a batch: one forward over chosen and rejected
// rows together. It logs TRL's rewards/*, logps/*, logits/* and nll_loss.
type Task struct {
	M      *model.Model
	Params Params
}

// Loss implements train.Task.
func (t *Task) Loss(b *preference.Batch, acc *metrics.Accumulator, training bool) *tensor.Tensor {
	in := b.Inputs(t.M.Device)
	in.Train = training
	lp := preference.HeadCompletionLogps(t.M, t.M.Hidden(in), b) // (2B), chunked LM head
	B := int64(b.B)
	terms, err := Loss(&Logps{
		Chosen: lp.Sum.Narrow(0, 0, B), Rejected: lp.Sum.Narrow(0, B, B),
		ChosenLen: lp.Count.Narrow(0, 0, B), RejectedLen: lp.Count.Narrow(0, B, B),
	}, &t.Params)
	if err != nil {
		panic(err) // recovered by the trainer, as dpo's
	}
	tensor.NoGrad(func() { logMetrics(acc, terms, lp, t.Params.Beta, b.B) })
	return terms.Loss
}

// logMetrics adds TRL's CPO metrics: rewards are beta times r (the
// log-probs or AlphaPO's reward), logps the log-probs the loss read.
func logMetrics(acc *metrics.Accumulator, t Terms, lp preference.Logps, beta float64, B int) {
	rc, rr := t.ChosenReward.Float64s(), t.RejectedReward.Float64s()
	var chosen, rejected, correct float64
	for i := range B {
		c, r := beta*rc[i], beta*rr[i]
		chosen += c
		rejected += r
		if c > r {
			correct++
		}
	}
	nb := float64(B)
	acc.Add("rewards/chosen", chosen/nb)
	acc.Add("rewards/rejected", rejected/nb)
	acc.Add("rewards/accuracies", correct/nb)
	acc.Add("rewards/margins", (chosen-rejected)/nb)
	acc.Add("logps/chosen", t.Chosen.Mean().ItemF64())
	acc.Add("logps/rejected", t.Rejected.Mean().ItemF64())
	acc.Add("nll_loss", t.NLL.ItemF64())
	ml, n := lp.MeanLogits.Float64s(), lp.Count.Float64s()
	for side, name := range []string{"logits/chosen", "logits/rejected"} {
		var s, w float64
		for i := side * B; i < (side+1)*B; i++ {
			s += ml[i] * n[i]
			w += n[i]
		}
		if w > 0 {
			acc.Add(name, s/w) // mean completion logit, token-weighted
		}
	}
}

// Result is what Run returns.
type Result struct {
	*train.Result
	TrainPairs, EvalPairs int
}

// Run trains according to cfg and writes the model to cfg.OutputDir.
func Run(ctx context.Context, cfg Config, log zerolog.Logger, rawConfig []byte) (res *Result, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cpo: %w", err)
	}
	if cfg.LossType == "alphapo" {
		log.Info().Float64("alpha", cfg.Alpha).Msg("loss_type alphapo: simpo with cpo_alpha 0 (as TRL's CPOConfig)")
	}
	cfg.resolve()
	if (cfg.LossType == "hinge" || cfg.LossType == "ipo") && cfg.LabelSmoothing > 0 {
		log.Warn().Str("loss_type", cfg.LossType).Float64("label_smoothing", cfg.LabelSmoothing).Msg("this loss does not use label_smoothing: it is ignored (as TRL does); set it to 0 to remove this warning")
	}
	if err := train.CheckInputs(cfg.OutputDir, cfg.inputs()); err != nil {
		return nil, err
	}
	dt, err := model.ParseDType(cfg.DType)
	if err != nil {
		return nil, fmt.Errorf("cpo: %w", err)
	}
	m, tok, err := checkpoint.Load(cfg.Model, cfg.ModelLoadOptions(model.LoadOptions{DType: dt}))
	if err != nil {
		return nil, err
	}
	defer m.Free()
	if err := cfg.ModelConfig.PreparePEFT(m, cfg.Seed); err != nil {
		return nil, fmt.Errorf("cpo: %w", err)
	}
	m.NoDropout = cfg.DisableDropout
	if cfg.Tokenizer != "" {
		if tok, err = checkpoint.LoadTokenizerFor(m, cfg.Model, cfg.Tokenizer); err != nil {
			return nil, err
		}
	}
	log.Info().Str("model_type", m.Config.ModelType).Int64("parameters", m.NumParams()).Int64("trainable", m.NumTrainable()).Msg("model")
	if cfg.MaxLength > m.Config.MaxPositions {
		log.Warn().Int("max_length", cfg.MaxLength).Int("max_positions", m.Config.MaxPositions).Msg("max_length exceeds the model's positions; using the latter")
		cfg.MaxLength = m.Config.MaxPositions
	}

	trainSet, evalSet, err := cfg.ScriptArguments.Load(cfg.Seed)
	if err != nil {
		return nil, err
	}
	datasets.WarnLoaded(log, trainSet, evalSet)
	enc := newEncoder(&cfg, tok)
	pad := max(tok.PAD(), 0)
	prefs, err := trainSet.Preferences()
	if err != nil {
		return nil, fmt.Errorf("cpo: %w", err)
	}
	datasets.WarnSkipped(log, trainSet, false)
	pairs, err := encodePairs(&cfg, enc, prefs, log, "train")
	if err != nil {
		return nil, err
	}
	res = &Result{TrainPairs: len(pairs)}
	tr := &train.Trainer[*preference.Batch]{
		Args:   cfg.Args,
		Models: &train.Single{M: m, Extra: checkpoint.TokenizerSaver(tok)},
		Task:   &Task{M: m, Params: cfg.params()},
		Train:  &preference.Data{Pairs: pairs, Pad: pad},
		Log:    log,
		Config: rawConfig,
		Name:   "cpo",
		Model:  cfg.Model,
		Inputs: cfg.inputs(),
	}
	if evalSet != nil && cfg.EvalStrategy != "no" {
		prefs, err := evalSet.Preferences()
		if err != nil {
			return nil, fmt.Errorf("cpo: %w", err)
		}
		datasets.WarnSkipped(log, evalSet, false)
		pairs, err := encodePairs(&cfg, enc, prefs, log, "eval")
		if err != nil {
			return nil, err
		}
		tr.Eval = &preference.Data{Pairs: pairs, Pad: pad}
		res.EvalPairs = len(pairs)
	} else if cfg.EvalStrategy != "no" {
		log.Warn().Msg("eval_strategy is set but there is no eval data (no test split and eval_ratio 0): not evaluating")
		tr.Args.EvalStrategy = "no"
		if cfg.LoadBestModelAtEnd {
			return nil, fmt.Errorf("cpo: load_best_model_at_end needs eval data")
		}
	}
	log.Info().Int("train_pairs", res.TrainPairs).Int("eval_pairs", res.EvalPairs).Msg("data")
	r, err := tr.Run(ctx)
	if err != nil {
		return nil, err
	}
	res.Result = r
	return res, nil
}
