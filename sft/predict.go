package sft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/fsutil"
	"github.com/rlsuite/rl/shared/generate"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/textmetrics"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// PredictionsFile and PredictResultsFile are what do_predict writes into
// output_dir, as LLaMA-Factory's SFT workflow (CustomSeq2SeqTrainer.
// save_predictions) and transformers' save_metrics("predict") name them.
const (
	PredictionsFile    = "generated_predictions.jsonl"
	PredictResultsFile = "predict_results.json"
)

// GenExample is one evaluation example for generation: the prompt to
// continue and the reference completion, as token ids.
type GenExample struct {
	Prompt, Label []int
}

// GenExamples splits tokenised examples whose targets are the completion
// (completion_only_loss) or the assistant turns (assistant_only_loss) into
// prompt and reference: the reference is the last run of target tokens
// (the completion, or the last assistant turn with its end-of-turn
// tokens), the prompt everything before it. An example with no prompt
// before its targets (language-modelling text) is an error.
func GenExamples(xs []Example, split string) ([]GenExample, error) {
	out := make([]GenExample, 0, len(xs))
	for i, x := range xs {
		end := len(x.Loss)
		for end > 0 && !x.Loss[end-1] {
			end--
		}
		start := end
		for start > 0 && x.Loss[start-1] {
			start--
		}
		if start == 0 || start == end {
			return nil, fmt.Errorf("sft: predict_with_generate: %s example %d has no prompt before its completion: it needs prompt-completion or conversational data (not language-modelling text)", split, i+1)
		}
		g := GenExample{Prompt: make([]int, start), Label: make([]int, end-start)}
		for j := range start {
			g.Prompt[j] = int(x.IDs[j])
		}
		for j := start; j < end; j++ {
			g.Label[j-start] = int(x.IDs[j])
		}
		out = append(out, g)
	}
	return out, nil
}

// Prediction is one line of generated_predictions.jsonl (LLaMA-Factory's
// fields): the prompt decoded with its special tokens, the generated and
// the reference completions without them.
type Prediction struct {
	Prompt  string `json:"prompt"`
	Predict string `json:"predict"`
	Label   string `json:"label"`
}

// Generator continues evaluation prompts with the generation settings and
// scores the completions (predict_with_generate).
type Generator struct {
	M         *model.Model
	Tok       *tokenizer.Tokenizer
	Gen       generate.Config
	BatchSize int
	Examples  []GenExample
	Log       zerolog.Logger

	truncated int // prompts cut to fit max_new_tokens into the positions
}

// Run generates a completion for every example (batches of BatchSize; the
// first batch samples with Gen.Seed, batch k with its own stream) and
// returns the predictions and their mean scores.
func (g *Generator) Run() ([]Prediction, textmetrics.Scores, error) {
	keep := g.M.Config.MaxPositions - g.Gen.MaxNewTokens
	if keep < 1 {
		return nil, textmetrics.Scores{}, fmt.Errorf("sft: max_new_tokens %d leaves no room for a prompt in the model's %d positions", g.Gen.MaxNewTokens, g.M.Config.MaxPositions)
	}
	cfg := g.Gen
	bs := max(g.BatchSize, 1)
	preds := make([]Prediction, 0, len(g.Examples))
	scores := make([]textmetrics.Scores, 0, len(g.Examples))
	g.truncated = 0
	for lo := 0; lo < len(g.Examples); lo += bs {
		batch := g.Examples[lo:min(lo+bs, len(g.Examples))]
		prompts := make([][]int, len(batch))
		for i, x := range batch {
			p := x.Prompt
			if len(p) > keep { // keep the end: generation continues from it
				p = p[len(p)-keep:]
				g.truncated++
			}
			prompts[i] = p
		}
		cfg.Seed = g.Gen.Seed + uint64(lo/bs)*0x9e3779b97f4a7c15
		res, err := generate.Generate(g.M, prompts, cfg)
		if err != nil {
			return nil, textmetrics.Scores{}, fmt.Errorf("sft: predict_with_generate: %w", err)
		}
		for i, r := range res {
			p := Prediction{}
			if p.Prompt, err = g.Tok.Decode(batch[i].Prompt, false); err == nil {
				if p.Predict, err = g.Tok.Decode(r.Tokens, true); err == nil {
					p.Label, err = g.Tok.Decode(batch[i].Label, true)
				}
			}
			if err != nil {
				return nil, textmetrics.Scores{}, fmt.Errorf("sft: predict_with_generate: decode: %w", err)
			}
			s, err := textmetrics.Similarity(p.Predict, p.Label)
			if err != nil {
				return nil, textmetrics.Scores{}, err
			}
			preds = append(preds, p)
			scores = append(scores, s)
		}
	}
	if g.truncated > 0 {
		g.Log.Warn().Int("prompts", g.truncated).Int("kept_tokens", keep).Msg("predict_with_generate: prompts longer than the positions left by max_new_tokens keep their last tokens")
	}
	return preds, textmetrics.Mean(scores), nil
}

// ExtraEval implements train.EvalExtender: the generation metrics of the
// eval set (logged as eval_rouge-1, eval_rouge-2, eval_rouge-l,
// eval_bleu-4).
func (g *Generator) ExtraEval() (map[string]float64, error) {
	_, s, err := g.Run()
	if err != nil {
		return nil, err
	}
	return scoreMap(s, ""), nil
}

// scoreMap names the scores with LLaMA-Factory's keys and a prefix.
func scoreMap(s textmetrics.Scores, prefix string) map[string]float64 {
	m := map[string]float64{}
	for i, k := range textmetrics.Keys {
		m[prefix+k] = s.Values()[i]
	}
	return m
}

// Predict runs g on the prediction set and writes generated_predictions.jsonl
// and predict_results.json (predict_rouge-1, ..., predict_bleu-4,
// predict_runtime, predict_samples_per_second) into dir.
func (g *Generator) Predict(dir string) (map[string]float64, error) {
	began := time.Now()
	preds, s, err := g.Run()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // ensure_ascii=False: text as it is
	for _, p := range preds {
		if err := enc.Encode(p); err != nil {
			return nil, err
		}
	}
	path := filepath.Join(dir, PredictionsFile)
	if err := fsutil.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("sft: %w", err)
	}
	m := scoreMap(s, "predict_")
	el := time.Since(began).Seconds()
	m["predict_runtime"] = el
	m["predict_samples_per_second"] = float64(len(preds)) / el
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := fsutil.WriteFile(filepath.Join(dir, PredictResultsFile), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("sft: %w", err)
	}
	ev := g.Log.Info().Str("predictions", path).Int("examples", len(preds))
	for _, k := range textmetrics.Keys {
		ev = ev.Float64("predict_"+k, m["predict_"+k])
	}
	ev.Msg("predict")
	return m, nil
}
