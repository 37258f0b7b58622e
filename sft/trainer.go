package sft

import (
	"context"
	"fmt"
	"math"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
	"github.com/rlsuite/rl/shared/train"
)

// Task is the SFT loss: next-token cross-entropy over target tokens.
// It logs TRL's mean_token_accuracy and entropy.
type Task struct {
	M *model.Model
	// Unchunked computes the loss from the whole (B, T, V) logits (TRL's
	// loss_type nll) instead of the chunked LM head (chunked_nll).
	Unchunked bool
	// Gen, when set, generates for the eval set at each evaluation
	// (predict_with_generate).
	Gen *Generator
}

// ExtraEval implements train.EvalExtender: with predict_with_generate, the
// eval set's generation metrics.
func (t *Task) ExtraEval() (map[string]float64, error) {
	if t.Gen == nil {
		return nil, nil
	}
	return t.Gen.ExtraEval()
}

// Loss implements train.Task.
func (t *Task) Loss(b *Batch, acc *metrics.Accumulator, training bool) *tensor.Tensor {
	dev := t.M.Device
	B, T := int64(b.B), int64(b.T)
	// training mode applies the config's dropout: SFTConfig has no
	// disable_dropout, so TRL's SFTTrainer trains with it
	in := &model.Input{IDs: tensor.Int64sOn(b.IDs, dev, B, T), Train: training}
	if b.Segments != nil {
		in.SegmentIDs = tensor.Int64sOn(b.Segments, dev, B, T)
		in.PositionIDs = tensor.Int64sOn(b.Positions, dev, B, T)
	}
	// Right padding needs no attention mask: causal attention never lets a
	// real token see the pads after it, and pads carry no loss.
	h := t.M.Hidden(in) // (B, T, H)
	var tok model.TokenLogps
	var targets *tensor.Tensor
	if t.Unchunked {
		targets = tensor.Int64sOn(b.Targets, dev, B*T)
		logits := t.M.Logits(h) // (B, T, V)
		tok = model.LogitsTokenLogps(logits.Reshape(-1, logits.Size(-1)), targets)
	} else {
		// TRL's chunked_nll: the head runs on the target tokens only
		var rows, ys []int64
		for i, y := range b.Targets {
			if y != IgnoreIndex {
				rows, ys = append(rows, int64(i)), append(ys, y)
			}
		}
		if len(rows) == 0 { // no target: the mean over no tokens, NaN as nll's
			return h.Sum().MulScalar(0).DivScalar(0)
		}
		n := int64(len(rows))
		targets = tensor.Int64sOn(ys, dev, n)
		hv := h.Reshape(-1, h.Size(-1)).IndexSelect(0, tensor.Int64sOn(rows, dev, n))
		tok = t.M.TokenLogps(hv, targets, 1)
	}
	valid := targets.NeScalar(IgnoreIndex)
	count := valid.Sum()
	// mean over target tokens of -log p (cross_entropy with ignore_index)
	loss := tok.Logp.Sum().Neg().Div(count.ToDType(tok.Logp.DType()))
	tensor.NoGrad(func() {
		n := count.ItemF64()
		if n == 0 {
			return
		}
		correct := tok.Argmax.Eq(targets).LogicalAnd(valid).Sum().ItemF64()
		acc.Add("mean_token_accuracy", correct/n)
		ent := tok.Entropy
		acc.Add("entropy", ent.Mul(valid.ToDType(ent.DType())).Sum().ItemF64()/n)
	})
	return loss
}

// NumItems implements train.ItemCounter: the batch's target tokens, so
// that under gradient accumulation the loss is the token mean of the
// whole step (transformers' num_items_in_batch).
func (t *Task) NumItems(b *Batch) int {
	n := 0
	for _, y := range b.Targets {
		if y != IgnoreIndex {
			n++
		}
	}
	return n
}

// PostEval adds eval_perplexity = exp(eval_loss).
func (t *Task) PostEval(m map[string]float64) {
	if l, ok := m["eval_loss"]; ok {
		m["eval_perplexity"] = math.Exp(l)
	}
}

// Result is what Run returns.
type Result struct {
	*train.Result
	TrainExamples, EvalExamples int
	// Predict holds do_predict's metrics (predict_rouge-1, ...), nil without it.
	Predict map[string]float64
}

// Run trains according to cfg and writes the model to cfg.OutputDir.
func Run(ctx context.Context, cfg Config, log zerolog.Logger, rawConfig []byte) (res *Result, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sft: %w", err)
	}
	if err := train.CheckInputs(cfg.OutputDir, cfg.inputs()); err != nil {
		return nil, err
	}
	dt, err := model.ParseDType(cfg.DType)
	if err != nil {
		return nil, fmt.Errorf("sft: %w", err)
	}
	var m *model.Model
	var tok *tokenizer.Tokenizer
	if cfg.Model != "" {
		m, tok, err = checkpoint.Load(cfg.Model, cfg.ModelLoadOptions(model.LoadOptions{DType: dt}))
		if err == nil && cfg.Tokenizer != "" {
			if tok, err = checkpoint.LoadTokenizerFor(m, cfg.Model, cfg.Tokenizer); err != nil {
				m.Free()
			}
		}
	} else {
		m, tok, err = checkpoint.New(cfg.Init, cfg.Tokenizer, model.LMHead, dt, train.Device, cfg.Seed)
	}
	if err != nil {
		return nil, err
	}
	defer m.Free()
	if err := cfg.ModelConfig.PreparePEFT(m, cfg.Seed); err != nil {
		return nil, fmt.Errorf("sft: %w", err)
	}
	log.Info().Str("model_type", m.Config.ModelType).Int64("parameters", m.NumParams()).Int64("trainable", m.NumTrainable()).Int("vocab", m.Config.VocabSize).Msg("model")
	if cfg.MaxLength > m.Config.MaxPositions {
		log.Warn().Int("max_length", cfg.MaxLength).Int("max_positions", m.Config.MaxPositions).Msg("max_length exceeds the model's positions; using the latter")
		cfg.MaxLength = m.Config.MaxPositions
	}

	trainSet, evalSet, err := cfg.ScriptArguments.Load(cfg.Seed)
	if err != nil {
		return nil, err
	}
	datasets.WarnLoaded(log, trainSet, evalSet)
	enc, err := newEncoder(&cfg, tok)
	if err != nil {
		return nil, err
	}
	trainXs, err := enc.EncodeCached(trainSet, log, cfg.NoCache)
	if err != nil {
		return nil, err
	}
	pad := tok.PAD()
	if pad < 0 {
		pad = 0
	}
	trainData := &Data{Rows: Rows(trainXs, cfg.Packing, cfg.MaxLength), Pad: pad}
	res = &Result{TrainExamples: len(trainXs)}
	var evalData *Data
	if evalSet != nil && cfg.EvalStrategy != "no" {
		evalXs, err := enc.EncodeCached(evalSet, log, cfg.NoCache)
		if err != nil {
			return nil, err
		}
		evalData = &Data{Rows: Rows(evalXs, false, cfg.MaxLength), Pad: pad}
		res.EvalExamples = len(evalXs)
	}
	var gen *Generator
	if cfg.PredictWithGenerate && evalSet != nil {
		if gen, err = newGenerator(&cfg, enc, evalSet, m, tok, log); err != nil {
			return nil, err
		}
	} else if cfg.DoPredict {
		return nil, fmt.Errorf("sft: do_predict needs a test split (dataset_test_split %q is not in the data) or eval_ratio > 0", cfg.TestSplit)
	}
	if evalData == nil && cfg.EvalStrategy != "no" {
		log.Warn().Msg("eval_strategy is set but there is no eval data (no test split and eval_ratio 0): not evaluating")
		cfg.EvalStrategy = "no"
		if cfg.LoadBestModelAtEnd {
			return nil, fmt.Errorf("sft: load_best_model_at_end needs eval data")
		}
	}
	log.Info().Int("train_examples", len(trainXs)).Int("train_rows", len(trainData.Rows)).Int("eval_examples", res.EvalExamples).Bool("packing", cfg.Packing).Msg("data")

	task := &Task{M: m, Unchunked: cfg.LossType == "nll"}
	if evalData != nil {
		task.Gen = gen // generation metrics at each evaluation
	}
	tr := &train.Trainer[*Batch]{
		Args:   cfg.Args,
		Models: &train.Single{M: m, Extra: checkpoint.TokenizerSaver(tok)},
		Task:   task,
		Train:  trainData,
		Log:    log,
		Config: rawConfig,
		Name:   "sft",
		Model:  modelID(cfg.Model, cfg.Init),
		Inputs: cfg.inputs(),
	}
	if evalData != nil {
		tr.Eval = evalData
	}
	r, err := tr.Run(ctx)
	if err != nil {
		return nil, err
	}
	res.Result = r
	if cfg.DoPredict {
		if res.Predict, err = gen.Predict(cfg.OutputDir); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// newGenerator prepares predict_with_generate on the eval split: its
// examples tokenised as for training but with the loss on the completion
// (or the assistant turns) only, so that the last run of targets is the
// reference and what precedes it the prompt.
func newGenerator(cfg *Config, enc *Encoder, evalSet *datasets.Dataset, m *model.Model, tok *tokenizer.Tokenizer, log zerolog.Logger) (*Generator, error) {
	if m.Head != model.LMHead {
		return nil, fmt.Errorf("sft: predict_with_generate needs a causal LM (the model has no LM head)")
	}
	genc := *enc
	genc.CompletionOnly, genc.AssistantOnlyLoss = true, true
	xs, err := genc.EncodeCached(evalSet, log, cfg.NoCache)
	if err != nil {
		return nil, err
	}
	exs, err := GenExamples(xs, evalSet.Name)
	if err != nil {
		return nil, err
	}
	g := cfg.genConfig()
	g.PadTokenID = max(tok.PAD(), 0)
	g.EOSTokenIDs = m.StopIDs(tok.EOS())
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("sft: %w", err)
	}
	log.Info().Int("examples", len(exs)).Int("max_new_tokens", g.MaxNewTokens).Bool("do_sample", g.DoSample).Msg("predict_with_generate")
	return &Generator{M: m, Tok: tok, Gen: g, BatchSize: cfg.PerDeviceEvalBatchSize, Examples: exs, Log: log}, nil
}

// newEncoder is the Encoder of cfg's settings.
func newEncoder(cfg *Config, tok *tokenizer.Tokenizer) (*Encoder, error) {
	enc := &Encoder{Tok: tok, MaxLength: cfg.MaxLength, TruncationMode: cfg.TruncationMode, CompletionOnly: cfg.completionOnly(), AssistantOnlyLoss: cfg.AssistantOnlyLoss, TextField: cfg.DatasetTextField, EOS: tok.EOS()}
	if cfg.EOSToken != "" {
		id, ok := tok.TokenToID(cfg.EOSToken)
		if !ok {
			return nil, fmt.Errorf("sft: eos_token %q is not in the tokenizer", cfg.EOSToken)
		}
		enc.EOS = id
	}
	return enc, nil
}

// Preview returns the first n training examples exactly as Run tokenises
// them (rl data show), with the tokenizer, without loading the model.
func Preview(cfg Config, n int, log zerolog.Logger) ([]Example, *tokenizer.Tokenizer, error) {
	tok, err := tokenizer.Load(cfg.TokenizerPath())
	if err != nil {
		return nil, nil, err
	}
	lopts, err := cfg.LoadOptions()
	if err != nil {
		return nil, nil, err
	}
	d, _, err := datasets.LoadTrainEval(cfg.Dataset, cfg.TrainSplit, cfg.TestSplit, 0, cfg.Seed, lopts)
	if err != nil {
		return nil, nil, err
	}
	if d.Len() > n {
		d = d.Select(seq(n))
	}
	enc, err := newEncoder(&cfg, tok)
	if err != nil {
		return nil, nil, err
	}
	xs, err := enc.EncodeDataset(d, log)
	return xs, tok, err
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
