package classify

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/fsutil"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
	"github.com/rlsuite/rl/shared/train"
)

// Task is the sequence-classification loss: cross-entropy of the score
// head's logits at each row's last token against the label.
//
// The trainer's Evaluate averages per-batch metrics weighted by batch size,
// which is right for the loss and accuracy but wrong for F1 and MCC (they
// are not means over examples). So in evaluation (train false) the Task
// records every (prediction, label) pair, and PostEval computes
// eval_accuracy, eval_f1, eval_f1_macro and eval_matthews_correlation from
// the whole set, then forgets the pairs for the next evaluation.
//
// With ProblemType regression or multi_label_classification the loss is
// MSE or BCE with logits against the batch's float Targets
// (model.ClassificationLoss), and PostEval reports RegressionMetrics or
// MultiLabelMetrics.
type Task struct {
	M         *model.Model
	NumLabels int
	// ProblemType is model.SingleLabel (also when empty), model.MultiLabel
	// or model.Regression.
	ProblemType string

	preds, labels []int
	// outs, targets are the eval logits and float labels (rows of NumLabels).
	outs, targets []float32
}

// valued reports a regression or multi-label task (float targets).
func (t *Task) valued() bool {
	return t.ProblemType == model.Regression || t.ProblemType == model.MultiLabel
}

// Logits returns the score head's logits at the last real token of each
// row, (B, num_labels) float32. Rows are right-padded and a decoder's
// attention is causal, so no mask is needed: a real token never sees the
// pads after it (an encoder gets the padding mask). The token read is
// transformers' (model.Config.ScoreIndex: the last one that is not
// pad_token_id; an encoder's first token).
func (t *Task) Logits(b *Batch) *tensor.Tensor { return t.logits(b, false) }

// logits is Logits, with the model's dropout when train is set (the
// transformers Trainer trains in model.train() mode).
func (t *Task) logits(b *Batch, train bool) *tensor.Tensor {
	dev := t.M.Device
	B, T := int64(b.B), int64(b.T)
	in := &model.Input{IDs: tensor.Int64sOn(b.IDs, dev, B, T), Train: train}
	if t.M.Config.Encoder() {
		// bidirectional: the pads must be masked, and BERT reads the
		// token type ids of a pair
		in.AttentionMask = tensor.Int64sOn(b.Mask(), dev, B, T)
		if b.TypeIDs != nil {
			in.TokenTypeIDs = tensor.Int64sOn(b.TypeIDs, dev, B, T)
		}
	}
	h := t.M.Hidden(in) // (B, T, H)
	last := make([]int64, b.B)
	for i, l := range b.Lens {
		row := b.IDs[int64(i)*T : int64(i+1)*T]
		last[i] = int64(i)*T + int64(t.M.Config.ScoreIndex(l-1, func(j int) int64 { return row[j] }))
	}
	pooled := h.Reshape(B*T, -1).IndexSelect(0, tensor.Int64sOn(last, dev, B)) // (B, H)
	return t.M.ScoresFor(in, pooled)                                           // (B, K), float32
}

// Loss implements train.Task: mean cross-entropy over the batch. In
// training it logs the batch accuracy; in evaluation it records the
// predictions for PostEval.
func (t *Task) Loss(b *Batch, acc *metrics.Accumulator, training bool) *tensor.Tensor {
	logits := t.logits(b, training) // (B, K)
	if t.valued() {
		y := tensor.Float32sOn(b.Targets, tensor.Float32, logits.Device(), int64(b.B), int64(b.K))
		loss, err := model.ClassificationLoss(t.ProblemType, logits, y)
		if err != nil {
			panic(err)
		}
		if !training {
			tensor.NoGrad(func() { t.outs = append(t.outs, logits.ToDType(tensor.Float32).Float32s()...) })
			t.targets = append(t.targets, b.Targets...)
		}
		return loss
	}
	labels := tensor.Int64sOn(b.Labels, logits.Device(), int64(b.B))
	loss, err := model.ClassificationLoss(model.SingleLabel, logits, labels)
	if err != nil {
		panic(err)
	}
	var preds []int64
	tensor.NoGrad(func() { preds = logits.Argmax(-1, false).Int64s() })
	correct := 0
	for i, p := range preds {
		if p == b.Labels[i] {
			correct++
		}
		if !training {
			t.preds = append(t.preds, int(p))
			t.labels = append(t.labels, int(b.Labels[i]))
		}
	}
	if training {
		acc.Add("accuracy", float64(correct)/float64(b.B))
	}
	return loss
}

// PostEval implements train.PostEvaler: the metrics over every prediction
// of the evaluation that just ended.
func (t *Task) PostEval(m map[string]float64) {
	if t.valued() {
		if len(t.outs) == 0 {
			return
		}
		for k, v := range t.valuedMetrics("eval_") {
			m[k] = v
		}
		m["eval_samples"] = float64(len(t.outs) / t.NumLabels)
		t.outs, t.targets = t.outs[:0], t.targets[:0]
		return
	}
	if len(t.preds) == 0 {
		return
	}
	for k, v := range Evaluate(t.preds, t.labels, t.NumLabels).Metrics("eval_") {
		m[k] = v
	}
	m["eval_samples"] = float64(len(t.preds))
	t.preds, t.labels = t.preds[:0], t.labels[:0]
}

// valuedMetrics are the regression or multi-label metrics of the recorded
// eval logits: the scores themselves, or sigmoid(logit) > 0.5 (logit > 0).
func (t *Task) valuedMetrics(prefix string) map[string]float64 {
	if t.ProblemType == model.Regression {
		pred, label := make([]float64, len(t.outs)), make([]float64, len(t.outs))
		for i := range t.outs {
			pred[i], label[i] = float64(t.outs[i]), float64(t.targets[i])
		}
		return RegressionMetrics(pred, label, prefix)
	}
	pred, label := make([]bool, len(t.outs)), make([]bool, len(t.outs))
	for i := range t.outs {
		pred[i], label[i] = t.outs[i] > 0, t.targets[i] > 0.5
	}
	return MultiLabelMetrics(pred, label, t.NumLabels, prefix)
}

// Result is what Run returns.
type Result struct {
	*train.Result
	TrainExamples, EvalExamples int
	NumLabels                   int
	ID2Label                    map[int]string
	// Eval are the final model's scores on the eval set (zero without one);
	// Baseline are the majority-class baseline's: the most frequent
	// training label predicted for every eval example.
	Eval, Baseline Scores
	EvalLoss       float64
	// ProblemType is the loss trained with; EvalMetrics are the final
	// eval metrics as written to eval_results.json (every problem type).
	ProblemType string
	EvalMetrics map[string]float64
}

// Run trains according to cfg and writes the classifier (a Hugging Face
// …ForSequenceClassification with id2label, plus the tokenizer) and, with
// eval data, eval_results.json to cfg.OutputDir.
func Run(ctx context.Context, cfg Config, log zerolog.Logger, rawConfig []byte) (res *Result, err error) {
	defer tensor.Recover(&err, "classify")
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("classify: %w", err)
	}
	if err := train.CheckInputs(cfg.OutputDir, cfg.inputs()); err != nil {
		return nil, err
	}
	dt, err := model.ParseDType(cfg.DType)
	if err != nil {
		return nil, fmt.Errorf("classify: %w", err)
	}
	trainSet, evalSet, err := LoadSplits(&cfg)
	if err != nil {
		return nil, err
	}
	if evalSet == nil && cfg.EvalStrategy != "no" {
		if cfg.LoadBestModelAtEnd {
			return nil, fmt.Errorf("classify: load_best_model_at_end needs eval data (an eval split, eval_dataset_name or eval_ratio)")
		}
		log.Warn().Msg("eval_strategy is set but there is no eval data (no validation/test split, eval_dataset_name or eval_ratio): not evaluating")
		cfg.EvalStrategy = "no"
	}
	problem, trL, evL, err := cfg.labelSplits(trainSet, evalSet)
	if err != nil {
		return nil, err
	}
	datasets.WarnLoaded(log, trainSet, evalSet)
	datasets.WarnSkipped(log, trainSet, false)
	if evalSet != nil {
		datasets.WarnSkipped(log, evalSet, false)
	}
	if len(cfg.LabelNames) > 0 && problem != model.SingleLabel {
		return nil, fmt.Errorf("classify: label_names is for integer class labels (single_label_classification), not %s", problem)
	}
	if len(cfg.LabelNames) > 0 {
		if err := nameLabels(trL, evL, cfg.LabelNames); err != nil {
			return nil, err
		}
	}
	if cfg.MaxSamples > 0 && len(trL.Examples) > cfg.MaxSamples {
		trL.Examples = trL.Examples[:cfg.MaxSamples]
		if trL.Targets != nil {
			trL.Targets = trL.Targets[:cfg.MaxSamples]
		}
	}
	if evL != nil && cfg.MaxEvalSamples > 0 && len(evL.Examples) > cfg.MaxEvalSamples {
		evL.Examples = evL.Examples[:cfg.MaxEvalSamples]
		if evL.Targets != nil {
			evL.Targets = evL.Targets[:cfg.MaxEvalSamples]
		}
	}

	m, tok, err := newModel(&cfg, trL.NumLabels, dt)
	if err != nil {
		return nil, err
	}
	defer m.Free()
	if err := setLabels(m, trL); err != nil {
		return nil, err
	}
	if m.Config.NumLabels != trL.NumLabels && problem != model.SingleLabel {
		return nil, fmt.Errorf("classify: %s has %d labels but %s data has %d", modelID(cfg.Model, cfg.Init), m.Config.NumLabels, problem, trL.NumLabels)
	}
	// transformers' …ForSequenceClassification records the problem type
	// it trained with in config.json
	m.Config.ProblemType = problem
	k := m.Config.NumLabels
	log.Info().Str("model_type", m.Config.ModelType).Int64("parameters", m.NumParams()).Int64("trainable", m.NumTrainable()).Int("num_labels", k).
		Str("labels", labelList(m.Config.ID2Label, k)).Msg("model")
	if cfg.MaxLength > m.Config.MaxTokens() {
		log.Warn().Int("max_length", cfg.MaxLength).Int("max_positions", m.Config.MaxTokens()).Msg("max_length exceeds the model's positions; using the latter")
		cfg.MaxLength = m.Config.MaxTokens()
	}

	enc, err := NewEncoderFor(tok, cfg.MaxLength, m.Config)
	if err != nil {
		return nil, err
	}
	trainData, err := enc.EncodeAll(trL.Examples, trL.Targets...)
	if err != nil {
		return nil, err
	}
	trainData.Pad = *m.Config.PadTokenID
	res = &Result{TrainExamples: trainData.Len(), NumLabels: k, ID2Label: m.Config.ID2Label, ProblemType: problem}
	var evalData *Data
	if evL != nil {
		if evalData, err = enc.EncodeAll(evL.Examples, evL.Targets...); err != nil {
			return nil, err
		}
		evalData.Pad = trainData.Pad
		res.EvalExamples = evalData.Len()
	}
	if evalData != nil && problem == model.SingleLabel {
		maj := Majority(trainData.Labels)
		res.Baseline = Evaluate(Constant(maj, evalData.Len()), evalData.Labels, k)
		log.Info().Str("class", labelName(m.Config.ID2Label, maj)).Float64("accuracy", res.Baseline.Accuracy).
			Float64("f1", res.Baseline.F1).Float64("matthews_correlation", res.Baseline.MCC).Msg("majority-class baseline on the eval set")
	}
	dlog := log.Info().Int("train_examples", res.TrainExamples).Int("eval_examples", res.EvalExamples).Str("problem_type", problem)
	if problem == model.SingleLabel {
		dlog = dlog.Str("train_labels", countLabels(trainData.Labels, m.Config.ID2Label, k))
	}
	dlog.Msg("data")

	task := &Task{M: m, NumLabels: k, ProblemType: problem}
	tr := &train.Trainer[*Batch]{
		Args:   cfg.Args,
		Models: &train.Single{M: m, Extra: checkpoint.TokenizerSaver(tok)},
		Task:   task,
		Train:  trainData,
		Log:    log,
		Config: rawConfig,
		Name:   "classify",
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
	if evalData == nil {
		return res, nil
	}
	ev := r.LastMetrics
	if cfg.LoadBestModelAtEnd || cfg.EvalStrategy == "no" {
		// The final model is not the one last evaluated (or none was).
		if ev, err = tr.Evaluate(); err != nil {
			return nil, err
		}
	}
	if problem != model.SingleLabel {
		res.EvalMetrics = map[string]float64{}
		for k, v := range ev {
			if strings.HasPrefix(k, "eval_") {
				res.EvalMetrics[k] = v
			}
		}
		res.EvalLoss = ev["eval_loss"]
		b, _ := json.MarshalIndent(res.EvalMetrics, "", "  ")
		if err := fsutil.WriteFile(filepath.Join(cfg.OutputDir, "eval_results.json"), append(b, '\n'), 0o644); err != nil {
			return nil, fmt.Errorf("classify: %w", err)
		}
		log.Info().Fields(res.EvalMetrics).Msg("final evaluation")
		return res, nil
	}
	res.Eval = Scores{Accuracy: ev["eval_accuracy"], F1: ev["eval_f1"], F1Macro: ev["eval_f1_macro"], MCC: ev["eval_matthews_correlation"]}
	res.EvalLoss = ev["eval_loss"]
	out := res.Eval.Metrics("eval_")
	out["eval_loss"] = res.EvalLoss
	out["eval_samples"] = float64(res.EvalExamples)
	for k, v := range res.Baseline.Metrics("baseline_") {
		out[k] = v
	}
	res.EvalMetrics = out
	b, _ := json.MarshalIndent(out, "", "  ")
	if err := fsutil.WriteFile(filepath.Join(cfg.OutputDir, "eval_results.json"), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("classify: %w", err)
	}
	log.Info().Float64("eval_accuracy", res.Eval.Accuracy).Float64("eval_f1", res.Eval.F1).
		Float64("eval_matthews_correlation", res.Eval.MCC).Float64("baseline_accuracy", res.Baseline.Accuracy).Msg("final evaluation")
	return res, nil
}

// newModel loads cfg.Model with a score head of numLabels classes (kept
// from the checkpoint when it is already a classifier), or builds a
// randomly initialised one from cfg.Init and cfg.Tokenizer.
func newModel(cfg *Config, numLabels int, dt tensor.DType) (*model.Model, *tokenizer.Tokenizer, error) {
	tensor.ManualSeed(cfg.Seed) // a new score head is drawn from the global generator
	var m *model.Model
	var tok *tokenizer.Tokenizer
	var err error
	if cfg.Model != "" {
		m, tok, err = checkpoint.Load(cfg.Model, cfg.ModelLoadOptions(model.LoadOptions{Head: model.ScoreHead, NumLabels: numLabels, DType: dt}))
		if err == nil && cfg.Tokenizer != "" {
			tok, err = checkpoint.LoadTokenizerFor(m, cfg.Model, cfg.Tokenizer)
		}
		if err != nil {
			if m != nil {
				m.Free()
			}
			return nil, nil, err
		}
		if m.Config.NumLabels < numLabels {
			m.Free()
			return nil, nil, fmt.Errorf("classify: %s is a classifier with %d labels but the data has %d classes", cfg.Model, m.Config.NumLabels, numLabels)
		}
	} else {
		if m, tok, err = fromScratch(cfg.Init, cfg.Tokenizer, numLabels, dt); err != nil {
			return nil, nil, err
		}
	}
	if err := cfg.ModelConfig.PreparePEFT(m, cfg.Seed); err != nil {
		m.Free()
		return nil, nil, fmt.Errorf("classify: %w", err)
	}
	if m.Config.PadTokenID == nil {
		// transformers' …ForSequenceClassification needs pad_token_id to
		// find the last token of padded rows.
		pad := max(tok.PAD(), 0)
		m.Config.PadTokenID = &pad
	}
	return m, tok, nil
}

// fromScratch is checkpoint.New with a score head of numLabels classes.
func fromScratch(init, tokDir string, numLabels int, dt tensor.DType) (*model.Model, *tokenizer.Tokenizer, error) {
	if tokDir == "" {
		return nil, nil, fmt.Errorf("classify: --init %s needs --tokenizer (a directory with tokenizer.json; train one with `rl tokenizer train`)", init)
	}
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		return nil, nil, err
	}
	var c *model.Config
	if strings.HasSuffix(init, ".json") {
		c, err = model.ReadConfig(init)
	} else {
		if c, err = model.Preset(init, (tok.VocabSize()+63)/64*64); err == nil {
			c.FitTokenizer(tok.PAD())
		}
	}
	if err != nil {
		return nil, nil, err
	}
	c.NumLabels = numLabels
	for _, s := range []struct {
		p  **int
		id int
	}{{&c.BOSTokenID, tok.BOS()}, {&c.EOSTokenID, tok.EOS()}} {
		if *s.p == nil && s.id >= 0 {
			v := s.id
			*s.p = &v
		}
	}
	m, err := model.New(c, model.ScoreHead, dt, train.Device)
	if err != nil {
		return nil, nil, err
	}
	if err := checkpoint.Check(m, tok, filepath.Join(tokDir, "tokenizer.json")); err != nil {
		m.Free()
		return nil, nil, err
	}
	return m, tok, nil
}

// setLabels sets id2label from the data's class names; integer labels keep
// a classifier checkpoint's names, else transformers' LABEL_i.
func setLabels(m *model.Model, l *Labeled) error {
	k := m.Config.NumLabels
	if l.Names == nil {
		if len(m.Config.ID2Label) != k {
			m.Config.ID2Label = nil
		}
		return nil
	}
	if len(l.Names) != k {
		return fmt.Errorf("classify: the data has %d classes %q but the model's score head has %d", len(l.Names), l.Names, k)
	}
	m.Config.ID2Label = map[int]string{}
	for i, n := range l.Names {
		m.Config.ID2Label[i] = n
	}
	return nil
}

// nameLabels gives integer labels the names of label_names.
func nameLabels(tr, ev *Labeled, names []string) error {
	if tr.Names != nil {
		return fmt.Errorf("classify: label_names is for integer labels, but the data names its classes %q", tr.Names)
	}
	if len(names) < tr.NumLabels {
		return fmt.Errorf("classify: label_names has %d names but the labels go up to %d", len(names), tr.NumLabels-1)
	}
	tr.Names, tr.NumLabels = names, len(names)
	if ev != nil {
		ev.Names, ev.NumLabels = names, len(names)
	}
	return nil
}

// labelName is id2label[id], or transformers' default LABEL_id.
func labelName(id2label map[int]string, id int) string {
	if n, ok := id2label[id]; ok {
		return n
	}
	return fmt.Sprintf("LABEL_%d", id)
}

func labelList(id2label map[int]string, k int) string {
	names := make([]string, k)
	for i := range names {
		names[i] = labelName(id2label, i)
	}
	return strings.Join(names, ",")
}

func countLabels(labels []int, id2label map[int]string, k int) string {
	n := make([]int, k)
	for _, l := range labels {
		n[l]++
	}
	parts := make([]string, k)
	for i := range n {
		parts[i] = fmt.Sprintf("%s=%d", labelName(id2label, i), n[i])
	}
	return strings.Join(parts, " ")
}
