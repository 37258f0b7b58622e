package classify

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
)

// Classifier is a trained sequence classifier ready to predict.
type Classifier struct {
	M   *model.Model
	Enc *Encoder
	// Labels are the class names by id (id2label, LABEL_i where unnamed).
	Labels []string
	// ProblemType is the checkpoint's (model.Config.ResolveProblemType):
	// regression predicts a score, multi-label a set of labels.
	ProblemType string
	pad         int
}

// DefaultMaxLength is the truncation length Load uses when the model
// directory has no rl_config.yaml saying what it was trained with.
const DefaultMaxLength = 128

// Load reads a …ForSequenceClassification checkpoint and its tokenizer from
// dir onto dev. maxLength 0 means the max_length the model was trained with
// (from dir/rl_config.yaml), else DefaultMaxLength.
func Load(dir string, dev tensor.Device, maxLength int) (*Classifier, error) {
	cfg, err := model.ReadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(cfg.Architectures, func(a string) bool { return strings.HasSuffix(a, "ForSequenceClassification") }) {
		return nil, fmt.Errorf("classify: %s is not a sequence classifier (architectures %v); train one with `rl classify`", dir, cfg.Architectures)
	}
	m, tok, err := checkpoint.Load(dir, model.LoadOptions{Head: model.ScoreHead, Device: dev})
	if err != nil {
		return nil, err
	}
	problem := m.Config.ResolveProblemType(true)
	if m.Config.NumLabels < 2 && m.Config.ProblemType != model.Regression {
		m.Free()
		return nil, fmt.Errorf("classify: %s has a single score (num_labels 1: a reward or value model), so every class probability would be 1; score it with `rl score --model %s`", dir, dir)
	}
	if maxLength <= 0 {
		maxLength = trainedMaxLength(dir)
	}
	enc, err := NewEncoderFor(tok, maxLength, m.Config)
	if err != nil {
		m.Free()
		return nil, err
	}
	c := &Classifier{M: m, Enc: enc, pad: max(tok.PAD(), 0), ProblemType: problem}
	if p := m.Config.PadTokenID; p != nil {
		c.pad = *p
	}
	for i := 0; i < m.Config.NumLabels; i++ {
		c.Labels = append(c.Labels, labelName(m.Config.ID2Label, i))
	}
	return c, nil
}

// trainedMaxLength reads max_length from the rl_config.yaml that training
// wrote into dir, or returns DefaultMaxLength.
func trainedMaxLength(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "rl_config.yaml"))
	if err != nil {
		return DefaultMaxLength
	}
	var c struct {
		MaxLength int `yaml:"max_length"`
	}
	if yaml.Unmarshal(b, &c) != nil || c.MaxLength <= 0 {
		return DefaultMaxLength
	}
	return c.MaxLength
}

// Free releases the model.
func (c *Classifier) Free() { c.M.Free() }

// Input is a text to classify, or a sentence pair.
type Input struct {
	Text     string `json:"text"`
	TextPair string `json:"text_pair,omitempty"`
	// Src is where the input was read ("file:line"), for errors.
	Src string `json:"-"`
}

// Prediction is one output line of `rl predict`.
type Prediction struct {
	Text     string `json:"text"`
	TextPair string `json:"text_pair,omitempty"`
	// Label is the most probable class's name.
	Label string `json:"label"`
	// ID is its class id.
	ID int `json:"-"`
	// Probabilities are softmax(logits) by class name; for
	// multi_label_classification each label's sigmoid(logit).
	Probabilities map[string]float64 `json:"probabilities,omitempty"`
	// Labels are the labels whose probability exceeds 0.5
	// (multi_label_classification; Label is then empty).
	Labels []string `json:"-"`
	// Score is the regression output (problem_type regression; Label and
	// Probabilities are then empty).
	Score *float64 `json:"score,omitempty"`
}

// MarshalJSON writes a prediction as rl predict prints it: text (and
// text_pair), then label and probabilities (single-label), labels (always
// present, possibly empty) and probabilities (multi-label) or score
// (regression).
func (p Prediction) MarshalJSON() ([]byte, error) {
	out := struct {
		Text          string             `json:"text"`
		TextPair      string             `json:"text_pair,omitempty"`
		Label         *string            `json:"label,omitempty"`
		Labels        *[]string          `json:"labels,omitempty"`
		Probabilities map[string]float64 `json:"probabilities,omitempty"`
		Score         *float64           `json:"score,omitempty"`
	}{Text: p.Text, TextPair: p.TextPair, Probabilities: p.Probabilities, Score: p.Score}
	switch {
	case p.Score != nil:
	case p.Labels != nil:
		out.Labels = &p.Labels
	default:
		out.Label = &p.Label
	}
	return json.Marshal(out)
}

// Predict classifies inputs in batches of batchSize without gradients.
func (c *Classifier) Predict(inputs []Input, batchSize int) (out []Prediction, err error) {
	defer tensor.Recover(&err, "classify: predict")
	batchSize = max(batchSize, 1)
	d := &Data{Pad: c.pad}
	for i, in := range inputs {
		ids, types, err := c.Enc.EncodeTypes(in.Text, in.TextPair)
		if err != nil {
			src := in.Src
			if src == "" {
				src = fmt.Sprintf("input %d", i+1)
			}
			return nil, fmt.Errorf("classify: %s: %w", src, err)
		}
		d.X = append(d.X, ids)
		d.Labels = append(d.Labels, 0)
		if c.Enc.Templates {
			d.Types = append(d.Types, types)
		}
	}
	k := len(c.Labels)
	task := &Task{M: c.M, NumLabels: k}
	tensor.NoGrad(func() {
		for lo := 0; lo < d.Len(); lo += batchSize {
			idx := make([]int, 0, batchSize)
			for i := lo; i < min(lo+batchSize, d.Len()); i++ {
				idx = append(idx, i)
			}
			b, _ := d.Batch(idx)
			var probs []float32
			tensor.Tidy(func() {
				l := task.Logits(b)
				switch c.ProblemType {
				case model.Regression:
					probs = l.Float32s()
				case model.MultiLabel:
					probs = l.Sigmoid().Float32s()
				default:
					probs = l.Softmax(-1).Float32s() // (B, K)
				}
			})
			for r, i := range idx {
				if c.ProblemType == model.Regression {
					s := float64(probs[r*k])
					out = append(out, Prediction{Text: inputs[i].Text, TextPair: inputs[i].TextPair, Score: &s})
					continue
				}
				if c.ProblemType == model.MultiLabel {
					p := Prediction{Text: inputs[i].Text, TextPair: inputs[i].TextPair, Probabilities: map[string]float64{}, Labels: []string{}}
					for j := 0; j < k; j++ {
						v := float64(probs[r*k+j])
						p.Probabilities[c.Labels[j]] = v
						if v > 0.5 {
							p.Labels = append(p.Labels, c.Labels[j])
						}
					}
					out = append(out, p)
					continue
				}
				p := Prediction{Text: inputs[i].Text, TextPair: inputs[i].TextPair, Probabilities: map[string]float64{}}
				for j := 0; j < k; j++ {
					v := float64(probs[r*k+j])
					p.Probabilities[c.Labels[j]] = v
					if j == 0 || v > float64(probs[r*k+p.ID]) {
						p.ID = j
					}
				}
				p.Label = c.Labels[p.ID]
				out = append(out, p)
			}
		}
	})
	return out, nil
}

// ReadInputs reads texts to classify: one text a line, or JSON Lines with a
// "text" (or "sentence") field and an optional "text_pair" field. Blank
// lines are skipped; an empty text or invalid JSON is an error naming
// name:line.
func ReadInputs(r io.Reader, name string) ([]Input, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	var out []Input
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(s) == "" {
			continue
		}
		src := fmt.Sprintf("%s:%d", name, line)
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("classify: %s: invalid UTF-8", src)
		}
		in := Input{Text: s, Src: src}
		if strings.HasPrefix(strings.TrimSpace(s), "{") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(s), &rec); err != nil {
				return nil, fmt.Errorf("classify: %s: not valid JSON: %v", src, err)
			}
			t, ok := rec["text"].(string)
			if !ok {
				t, ok = rec["sentence"].(string)
			}
			if !ok {
				return nil, fmt.Errorf("classify: %s: no string \"text\" field", src)
			}
			if strings.TrimSpace(t) == "" {
				return nil, fmt.Errorf("classify: %s: empty \"text\"", src)
			}
			in.Text = t
			if v, ok := rec["text_pair"]; ok {
				if in.TextPair, ok = v.(string); !ok {
					return nil, fmt.Errorf("classify: %s: \"text_pair\" is not a string", src)
				}
			}
		}
		out = append(out, in)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("classify: %s: %w", name, err)
	}
	return out, nil
}
